"""Named public places for QR codes and deep links (e.g. a code printed in lift 3-A), from config/places.toml."""
from __future__ import annotations

import re
import tomllib
from functools import lru_cache

from config import CONFIG_DIR

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@lru_cache
def places() -> dict[str, dict]:
    with open(CONFIG_DIR / "places.toml", "rb") as fh:
        return tomllib.load(fh).get("places", {})


def find_place(code: str) -> dict | None:
    code = (code or "").strip()
    if not _CODE.match(code):
        return None
    return places().get(code)
