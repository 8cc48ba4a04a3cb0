"""Photos uploaded through propdesk's own pages, kept under the upload folder and referred to as "web:<name>"."""
from __future__ import annotations

import secrets
from pathlib import Path


def save_upload(folder: Path | str, body: bytes, ext: str) -> str:
    """Store an already checked image under a random name; its reference for tickets and messages."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = secrets.token_hex(12) + ext
    (folder / name).write_bytes(body)
    return f"web:{name}"
