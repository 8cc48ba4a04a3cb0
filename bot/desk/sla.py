"""The SLA clock: deadlines per urgency in business or calendar time, from config/sla.toml."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from config import CONFIG_DIR


@dataclass(frozen=True)
class Policy:
    claim: int
    resolve: int
    arrive: int | None = None
    around_the_clock: bool = True
    remind_every: int = 60


class Calendar:
    """Business hours and holidays in the estate's time zone; adds minutes of working time."""

    def __init__(self, tz: str, start: str, end: str, weekdays: list[int], holidays: list[str]):
        self.tz = ZoneInfo(tz)
        self.start, self.end = time.fromisoformat(start), time.fromisoformat(end)
        self.weekdays = set(weekdays)
        self.holidays = {date.fromisoformat(d) for d in holidays}

    def working(self, day: date) -> bool:
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def open_at(self, utc_naive: datetime) -> bool:
        """Within business hours at that moment."""
        at = utc_naive.replace(tzinfo=timezone.utc).astimezone(self.tz)
        return self.working(at.date()) and self.start <= at.time() < self.end

    def add(self, utc_naive: datetime, minutes: int) -> datetime:
        """The moment `minutes` of business time after `utc_naive` (both naive UTC)."""
        at = utc_naive.replace(tzinfo=timezone.utc).astimezone(self.tz)
        left = timedelta(minutes=minutes)
        for _ in range(3660):  # ten years of days: a calendar with no working day must not loop forever
            day = at.date()
            open_, close = (datetime.combine(day, t, self.tz) for t in (self.start, self.end))
            if self.working(day) and at < close:
                at = max(at, open_)
                if at + left <= close:
                    return (at + left).astimezone(timezone.utc).replace(tzinfo=None)
                left -= close - at
            at = datetime.combine(day + timedelta(days=1), self.start, self.tz)
        raise ValueError("the calendar has no working time")


class SLA:
    def __init__(self, config: dict, tz: str):
        self.policies = {u: Policy(**p) for u, p in config["urgency"].items()}
        self.overrides = {(c, u): Policy(**p) for c, by_u in config.get("category", {}).items()
                          for u, p in by_u.items()}
        cal = config["calendar"]
        self.calendar = Calendar(tz, cal["start"], cal["end"], cal["weekdays"], cal.get("holidays", []))
        self.ladder = [(lvl["group"], int(lvl["after"])) for lvl in config.get("escalation", [])]
        self.close_after = timedelta(hours=config.get("return_visit", {}).get("close_after_hours", 48))
        self.reopen_to = config.get("return_visit", {}).get("reopen_to", "supervisors")
        self.duplicate_window = timedelta(hours=config.get("duplicates", {}).get("window_hours", 24))

    def policy(self, urgency: str, category: str = "") -> Policy:
        return self.overrides.get((category, urgency)) or self.policies.get(urgency) or self.policies["normal"]

    def due(self, start: datetime, minutes: int | None, policy: Policy) -> datetime | None:
        if minutes is None:
            return None
        if policy.around_the_clock:
            return start + timedelta(minutes=minutes)
        return self.calendar.add(start, minutes)


@lru_cache
def load_sla(tz: str = "Asia/Shanghai", path: str | None = None) -> SLA:
    with open(path or CONFIG_DIR / "sla.toml", "rb") as fh:
        return SLA(tomllib.load(fh), tz)
