"""Staff trades (工种) and the trade each ticket category calls for, from config/trades.toml."""
from __future__ import annotations

import tomllib
from functools import cache

from config import CONFIG_DIR


@cache
def _table() -> dict[str, dict[str, str]]:
    with open(CONFIG_DIR / "trades.toml", "rb") as fh:
        return tomllib.load(fh)


def known_trades() -> dict[str, str]:
    """Trade code -> its display name."""
    return dict(_table()["trades"])


def trade_for(category: str) -> str | None:
    """The trade a ticket of this category calls for, if one does."""
    trade: str | None = _table()["category_trade"].get(category)
    return trade


def check_trade(trade: str | None) -> str | None:
    """`trade` when it is known (or empty: None); ValueError naming the known ones otherwise."""
    if not trade:
        return None
    if trade not in known_trades():
        raise ValueError(f"unknown trade {trade!r}; known trades: {', '.join(known_trades())}")
    return trade
