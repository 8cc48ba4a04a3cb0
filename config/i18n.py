"""Message catalogs (config/messages/<lang>.toml): Simplified Chinese first, English too."""
from __future__ import annotations

import tomllib
from functools import lru_cache

from config import CONFIG_DIR

LANGS = ("zh", "en")


@lru_cache
def catalog(lang: str) -> dict[str, str]:
    with open(CONFIG_DIR / "messages" / f"{lang}.toml", "rb") as fh:
        return tomllib.load(fh)


def t(lang: str, key: str, **kw: object) -> str:
    """The text for `key` in `lang`, falling back to Chinese; placeholders filled from kw."""
    lang = lang if lang in LANGS else "zh"
    text = catalog(lang).get(key) or catalog("zh").get(key)
    if text is None:
        raise KeyError(f"no message {key!r}")
    return text.format(**kw) if kw else text


def has(lang: str, key: str) -> bool:
    """Whether the catalogs hold `key` (in `lang`, or in Chinese to fall back on)."""
    return key in catalog(lang if lang in LANGS else "zh") or key in catalog("zh")


def label(lang: str, group: str, value: str) -> str:
    """A display name for a category, urgency, status or kind, e.g. label('zh', 'urgency', 'high')."""
    try:
        return t(lang, f"{group}.{value}")
    except KeyError:
        return value
