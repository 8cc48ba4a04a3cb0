"""Prometheus metrics (`GET /metrics`, behind PROPDESK_METRICS_TOKEN): what an operator watches.

Counters and histograms are kept in process (messages in, step latency, sweep durations); the state of the desk
(outbox depth and age, tickets by status and urgency, overdue tickets, escalations) is read from the database at
scrape time, so every worker reports the same figures for the shared tables.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import OutboxMessage, Ticket, TicketEvent
from models.lifecycle import OPEN_STATUSES

from bot.clock import Clock

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter("propdesk_messages_in", "Owner messages handled, by channel", ["channel"],
                                   registry=r)
        self.step_failures = Counter("propdesk_step_failures", "Conversation steps that raised (the owner got an "
                                     "apology)", ["channel"], registry=r)
        self.step_seconds = Histogram("propdesk_step_seconds", "Time to handle one owner message, by channel",
                                      ["channel"], buckets=LATENCY_BUCKETS, registry=r)
        self.sweep_seconds = Histogram("propdesk_sweep_seconds", "Duration of the scheduled sweeps", ["sweep"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.outbox = Gauge("propdesk_outbox_messages", "Outgoing messages by channel and status",
                            ["channel", "status"], registry=r)
        self.outbox_oldest = Gauge("propdesk_outbox_oldest_pending_seconds",
                                   "Age of the oldest message still waiting to go out, by channel", ["channel"],
                                   registry=r)
        self.tickets = Gauge("propdesk_tickets", "Tickets by status and urgency", ["status", "urgency"], registry=r)
        self.overdue = Gauge("propdesk_tickets_overdue", "Open tickets past their claim or resolve deadline",
                             ["urgency"], registry=r)
        self.escalations = Gauge("propdesk_escalations", "Escalation steps ever taken (ticket timeline)", registry=r)
        self.poller = Gauge("propdesk_telegram_poller", "1 where this worker holds the Telegram long poll",
                            registry=r)

    @contextmanager
    def step(self, channel: str) -> Iterator[None]:
        started = time.perf_counter()
        self.messages_in.labels(channel).inc()
        try:
            yield
        finally:
            self.step_seconds.labels(channel).observe(time.perf_counter() - started)

    @contextmanager
    def sweep(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.sweep_seconds.labels(name).observe(time.perf_counter() - started)

    async def render(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> bytes:
        """The exposition text, with the desk's state read now."""
        async with sessionmaker() as s:
            await self._read_desk(s, clock)
        return generate_latest(self.registry)

    async def _read_desk(self, s: AsyncSession, clock: Clock) -> None:
        now = clock.now()
        self.outbox.clear()
        for channel, status, n in (await s.execute(
                select(OutboxMessage.channel, OutboxMessage.status, func.count())
                .group_by(OutboxMessage.channel, OutboxMessage.status))).all():
            self.outbox.labels(channel, status).set(n)
        self.outbox_oldest.clear()
        for channel, oldest in (await s.execute(
                select(OutboxMessage.channel, func.min(OutboxMessage.created_at))
                .where(OutboxMessage.status == "pending").group_by(OutboxMessage.channel))).all():
            self.outbox_oldest.labels(channel).set(max(0.0, (now - oldest).total_seconds()))
        self.tickets.clear()
        for status, urgency, n in (await s.execute(
                select(Ticket.status, Ticket.urgency, func.count()).group_by(Ticket.status, Ticket.urgency))).all():
            self.tickets.labels(status, urgency).set(n)
        self.overdue.clear()
        open_statuses = [str(x) for x in OPEN_STATUSES]
        late = or_(Ticket.status.in_(("new", "rejected", "reopened")) & (Ticket.claim_due_at < now),
                   Ticket.resolve_due_at < now)
        for urgency, n in (await s.execute(
                select(Ticket.urgency, func.count()).where(Ticket.status.in_(open_statuses), late)
                .group_by(Ticket.urgency))).all():
            self.overdue.labels(urgency).set(n)
        self.escalations.set(await s.scalar(select(func.count()).select_from(TicketEvent)
                                            .where(TicketEvent.action == "escalate")) or 0)
