"""How fast tickets may be created: per chat account (a few a minute, with a burst), and per channel (a cap, with an
alert to staff). Emergencies are never refused: over the limit, one goes into the owner's open emergency."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.i18n import t
from models import JobRun, OutboxMessage, Ticket
from models.db import insert_for
from models.lifecycle import OPEN_STATUSES

if TYPE_CHECKING:
    from config.settings import Settings, StaffGroup

log = logging.getLogger("propdesk.tickets")


class TicketLimitReached(Exception):
    """A new ticket refused by a rate limit: nothing of the step is kept, and the owner is told why
    (`owner_message_key`). `after_rollback` runs once the step is undone (the staff alert of a channel's cap)."""

    owner_message_key = "tickets.rate_limited"

    def __init__(self, message: str, alert: "ChannelAlert | None" = None):
        super().__init__(message)
        self.alert = alert

    async def after_rollback(self, sessionmaker: async_sessionmaker, now: datetime) -> None:
        if self.alert is not None:
            await self.alert.send(sessionmaker, now)


@dataclass
class ChannelAlert:
    """Tell the staff group that a channel is over its ticket cap: once per ten minutes per channel, across workers."""

    channel: str
    count: int
    group: "StaffGroup | None"
    lang: str

    async def send(self, sessionmaker: async_sessionmaker, now: datetime) -> None:
        log.error("ticket rate of channel %s over its cap: %d in the last minute; new tickets refused",
                  self.channel, self.count)
        if self.group is None:
            return
        async with sessionmaker() as s, s.begin():
            insert = insert_for(s.bind.dialect.name)
            first = await s.execute(insert(JobRun).values(
                name="ticket_cap", run_key=f"{self.channel}:{now:%Y%m%d%H}{now.minute // 10}", created_at=now)
                .on_conflict_do_nothing())
            if first.rowcount == 1:
                s.add(OutboxMessage.new(self.group.channel, self.group.chat_id, {
                    "text": t(self.lang, "staff.ticket_cap", channel=self.channel, n=self.count)}, at=now, priority=3))


@dataclass
class TicketLimits:
    per_account_per_minute: float = 3
    per_account_burst: int = 5
    per_channel_per_minute: int = 120
    alert_group: "StaffGroup | None" = None
    staff_lang: str = "zh"

    @classmethod
    def from_settings(cls, settings: "Settings") -> "TicketLimits":
        name = settings.ticket_alert_group or settings.delivery_fallback_group or settings.default_group
        return cls(settings.ticket_rate_per_minute, settings.ticket_rate_burst, settings.ticket_channel_per_minute,
                   settings.staff_groups.get(name) if name else None, settings.staff_lang)

    async def check(self, s: AsyncSession, now: datetime, *, reporter_id: int | None, channel: str,
                    urgency: str) -> Ticket | None:
        """Raise TicketLimitReached when a new ticket would go over a limit. For an emergency over a limit: the
        reporter's open emergency to add it to, if there is one (else the emergency is created all the same)."""
        over = ""
        alert = None
        if reporter_id is not None and self.per_account_per_minute > 0:
            # A sliding window as long as the burst takes to refill: at most `burst` tickets in it.
            window = timedelta(minutes=self.per_account_burst / self.per_account_per_minute)
            recent = (await s.execute(select(func.count()).select_from(Ticket).where(
                Ticket.reporter_id == reporter_id, Ticket.created_at > now - window))).scalar_one()
            if recent >= self.per_account_burst:
                over = f"person {reporter_id}: {recent} tickets in {window.total_seconds():.0f}s"
        if not over and self.per_channel_per_minute > 0:
            recent = (await s.execute(select(func.count()).select_from(Ticket).where(
                Ticket.channel == channel, Ticket.created_at > now - timedelta(minutes=1)))).scalar_one()
            if recent >= self.per_channel_per_minute:
                over = f"channel {channel}: {recent} tickets in the last minute"
                alert = ChannelAlert(channel, recent, self.alert_group, self.staff_lang)
        if not over:
            return None
        if urgency == "emergency":
            if reporter_id is None:
                return None
            return await s.scalar(select(Ticket).where(
                Ticket.reporter_id == reporter_id, Ticket.urgency == "emergency",
                Ticket.status.in_([str(x) for x in OPEN_STATUSES])).order_by(Ticket.id.desc()).limit(1))
        log.warning("new ticket refused: %s", over)
        raise TicketLimitReached(over, alert)
