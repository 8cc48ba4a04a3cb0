"""Notices to owners (a water or power cut) and the managers' daily digest."""
from __future__ import annotations

from typing import Any

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from config.i18n import t
from models import Binding, Building, Estate, Identity, OutboxMessage, Unit

from bot.clock import Clock
from bot.desk.routing import Dispatch


def after_quiet_hours(settings: Settings, clock: Clock) -> datetime | None:
    """When a message to owners may go: None for now, else the end of the quiet hours (naive UTC)."""
    start, end = (time.fromisoformat(x) for x in settings.quiet_hours.split("-"))
    local = clock.local()
    now = local.time()
    inside = (start <= now or now < end) if start > end else (start <= now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, local.tzinfo).astimezone(timezone.utc).replace(tzinfo=None)


class NoticeError(LookupError):
    """The notice names an estate or building that does not exist: nothing was queued."""


async def send_notice(session: AsyncSession, settings: Settings, clock: Clock, *, estate: str,
                      buildings: list[str], text: str) -> int:
    """Queue `text` to every chat account of everyone bound to a unit in the buildings; how many accounts.
    NoticeError for an unknown estate code or building (a typo must not look like a notice sent to nobody)."""
    estate_id = await session.scalar(select(Estate.id).where(Estate.code == estate))
    if estate_id is None:
        codes = ", ".join((await session.scalars(select(Estate.code).order_by(Estate.code))).all()) or "none"
        raise NoticeError(f"no estate with code {estate!r} (estates: {codes})")
    names = set((await session.scalars(select(Building.name).where(Building.estate_id == estate_id))).all())
    unknown = [b for b in buildings if b not in names]
    if unknown:
        raise NoticeError(f"estate {estate} has no building {', '.join(map(repr, unknown))} "
                          f"(buildings: {', '.join(sorted(names, key=_natural)) or 'none'})")
    q = (select(Identity).join(Binding, Binding.person_id == Identity.person_id)
         .join(Unit, Unit.id == Binding.unit_id).join(Building, Building.id == Unit.building_id)
         .join(Estate, Estate.id == Building.estate_id)
         .where(Estate.code == estate, Binding.status == "active", Identity.active.is_(True)).distinct())
    if buildings:
        q = q.where(Building.name.in_(buildings))
    accounts = (await session.scalars(q)).all()
    not_before = after_quiet_hours(settings, clock)
    for account in accounts:
        session.add(OutboxMessage.new(account.channel, account.chat_id, {"text": f"📢 {text}", "template": "notice"},
                                      at=clock.now(), not_before=not_before))
    return len(accounts)


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


async def daily_digest(session: AsyncSession, settings: Settings, clock: Clock, dispatch: Dispatch,
                       group: str = "managers") -> str | None:
    """The last 24 hours in numbers, to the managers' group (the service report's figures): received, closed,
    open past their resolve deadline, the oldest open ticket, the average rating, the on-time rates."""
    from bot.desk.report_export import pct
    from bot.desk.reports import Period, service_report

    target = dispatch.groups.get(group)
    if target is None:
        return None
    now, lang = clock.now(), settings.staff_lang
    report = await service_report(session, Period(now - timedelta(days=1), now, settings.timezone), now=now)
    f = report.as_dict()["total"]
    text = t(lang, "digest.daily", date=clock.local().date().isoformat(), new=f["received"], closed=f["closed"],
             overdue=f["overdue_at_end"], rating=f"{f['avg_rating']:.1f}" if f["avg_rating"] is not None else "-",
             oldest=f"{f['oldest_open']} {int(f['open_age_max_h'])}h" if f["oldest_open"] else "-")
    text += "\n" + t(lang, "digest.daily_rates", claim=pct(f["on_time_claim_rate"]),
                     arrive=pct(f["on_time_arrive_rate"]), resolve=pct(f["on_time_resolve_rate"]))
    session.add(OutboxMessage.new(target.channel, target.chat_id, {"text": text}, at=now))
    return text


async def report_summary(session: AsyncSession, settings: Settings, clock: Clock, dispatch: Dispatch, period: Any,
                         which: str, group: str = "managers") -> str | None:
    """The weekly or monthly service report of `period` (a reports.Period) to the managers' group: the headline
    figures and the three worst breaches, through the outbox."""
    from bot.desk.report_export import summary_text
    from bot.desk.reports import service_report

    target = dispatch.groups.get(group)
    if target is None:
        return None
    lang = settings.staff_lang
    report = await service_report(session, period, now=clock.now())
    title = (t(lang, "report.weekly_title", first=period.first.isoformat(), last=period.last.isoformat())
             if which == "weekly" else t(lang, "report.monthly_title", month=f"{period.first:%Y-%m}"))
    text = summary_text(report, lang, title)
    session.add(OutboxMessage.new(target.channel, target.chat_id, {"text": text}, at=clock.now()))
    return text
