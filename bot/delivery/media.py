"""Photos by reference, whichever channel took them, as bytes for whichever channel shows them.

A ticket keeps a photo as its channel's reference: "tg:<file_id>" (Telegram), "wx:<media_id>" (WeChat),
"web:<name>" (propdesk's own pages, under the upload folder). A channel registers how to fetch its own kind; a
fetched photo is kept under the upload folder, so each is fetched once and outlives the platform's copy (WeChat
deletes temporary media after three days).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Awaitable, Callable

log = logging.getLogger("propdesk.media")
Fetch = Callable[[str], Awaitable[bytes]]
MAX_BYTES = 20 * 1024 * 1024


def image_type(body: bytes) -> str | None:
    """The image's content type by its first bytes; None when it is no image propdesk shows."""
    if body.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if body.startswith(b"GIF8"):
        return "image/gif"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    return None


class MediaStore:
    def __init__(self, upload_dir: Path | str):
        self.folder = Path(upload_dir)
        self.fetchers: dict[str, Fetch] = {}

    def register(self, kind: str, fetch: Fetch) -> None:
        """`fetch(value)` returns the bytes of a "<kind>:<value>" reference, or raises."""
        self.fetchers[kind] = fetch

    def _cached(self, ref: str) -> Path:
        return self.folder / "media" / hashlib.sha256(ref.encode()).hexdigest()[:40]

    async def fetch(self, ref: str) -> bytes | None:
        """The photo's bytes; None when the reference is unknown or its channel cannot give it (logged)."""
        kind, _, value = ref.partition(":")
        if kind == "web":
            path = self.folder / value
            try:
                ok = value and "/" not in value and "\\" not in value and "\x00" not in value and path.is_file()
                return path.read_bytes() if ok else None
            except (OSError, ValueError):  # a name too long for the file system, or otherwise unusable
                return None
        cached = self._cached(ref)
        if cached.is_file():
            return cached.read_bytes()
        fetch = self.fetchers.get(kind)
        if fetch is None or not value:
            return None
        try:
            body = await fetch(value)
        except Exception as exc:  # noqa: BLE001 - any channel's failure: the photo is missing, nothing else
            log.warning("photo %s could not be fetched: %s", ref, exc)
            return None
        if not body or len(body) > MAX_BYTES or image_type(body) is None:
            log.warning("photo %s: the channel gave no image (%d bytes)", ref, len(body or b""))
            return None
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".part")
            partial.write_bytes(body)
            partial.replace(cached)  # whole or not at all, should two fetches race
        except OSError as exc:  # the photo is here all the same; it will be fetched again next time
            log.error("photo %s not kept: the upload folder cannot be written: %s", ref, exc)
        return body
