"""The clock, injectable so tests can move time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


class Clock:
    def __init__(self, tz: str = "Asia/Shanghai"):
        self.tz: tzinfo = ZoneInfo(tz)

    def now(self) -> datetime:
        """Naive UTC, as stored."""
        return datetime.now(timezone.utc).replace(tzinfo=None)

    def local(self, utc_naive: datetime | None = None) -> datetime:
        at = (utc_naive or self.now()).replace(tzinfo=timezone.utc)
        return at.astimezone(self.tz)


class FrozenClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, at: datetime, tz: str = "Asia/Shanghai"):
        super().__init__(tz)
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)
