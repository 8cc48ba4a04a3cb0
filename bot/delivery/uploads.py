"""Photos uploaded through propdesk's own pages, kept under the upload folder and referred to as "web:<name>"."""
from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from aiohttp import web

log = logging.getLogger("propdesk.media")


def save_upload(folder: Path | str, body: bytes, ext: str) -> str:
    """Store an already checked image under a random name; its reference for tickets and messages. An upload
    folder that cannot be written is a 503 that says so (and is logged), not an internal error."""
    folder = Path(folder)
    name = secrets.token_hex(12) + ext
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    except OSError as exc:
        log.error("upload folder %s cannot be written: %s", folder, exc)
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "the upload folder cannot be written; photos cannot be kept now"}),
            content_type="application/json") from exc
    return f"web:{name}"
