"""Two workers on one PostgreSQL through a simulated day of tickets: every reminder, escalation and message goes
out exactly once, and a worker killed in the middle of a sweep loses nothing."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from bot.app import App
from bot.delivery.outbox_worker import Delivery
from bot.desk.staff_actions import act
from bot.jobs.sweeps import sla_sweep
from bot.desk.ticket_service import TicketService
from config.settings import Settings
from models import OutboxMessage, Ticket, TicketEvent
from tests.fakes.outlet import Outlet

GROUPS = {"team": {"channel": "chat", "chat_id": "-1"}, "supervisors": {"channel": "chat", "chat_id": "-2"},
          "managers": {"channel": "chat", "chat_id": "-3"}}


class WorkerDied(Exception):
    pass


@contextmanager
def worker_dies_before_commit(worker: App):
    """While inside: the worker's COMMITs fail (as if it died just before). Yields the writes it attempted."""
    sync_engine = worker.db.sync_engine
    written: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            written.append(statement)

    def die(conn) -> None:  # noqa: ANN001
        raise WorkerDied

    event.listen(sync_engine, "before_cursor_execute", note)
    event.listen(sync_engine, "commit", die)
    try:
        yield written
    finally:
        event.remove(sync_engine, "commit", die)
        event.remove(sync_engine, "before_cursor_execute", note)


async def test_a_day_with_two_workers_and_a_crash(desk_engine, clock):
    if not desk_engine.settings.database_url.startswith("postgresql"):
        pytest.skip("several workers share one PostgreSQL; SQLite deployments run one worker")
    settings = Settings(database_url=desk_engine.settings.database_url, staff_groups=GROUPS, default_group="team")
    workers = [App.create(settings, clock=clock) for _ in range(2)]
    outlets = [Outlet(), Outlet()]
    deliveries = [Delivery(w.sessionmaker, clock, {"chat": o}) for w, o in zip(workers, outlets, strict=False)]
    rng = random.Random(7)
    try:
        for step in range(24 * 12):  # every five minutes for a day
            worker = workers[step % 2]
            if rng.random() < 0.3:  # a report
                async with worker.sessionmaker() as s, s.begin():
                    await TicketService(s, clock, worker.engine.dispatch).create(
                        kind="repair", category=rng.choice(["water", "electrical", "lift"]),
                        urgency=rng.choice(["emergency", "high", "normal", "low"]), description="x",
                        channel="test", reporter_id=None, actor="test")
            if rng.random() < 0.2:  # staff work the oldest open ticket
                async with worker.sessionmaker() as s:
                    tk = await s.scalar(select(Ticket).where(Ticket.status.in_(["new", "assigned", "in_progress"]))
                                        .order_by(Ticket.id).limit(1))
                if tk is not None:
                    action = {"new": "claim", "assigned": "start", "in_progress": "resolve"}[tk.status]
                    async with worker.sessionmaker() as s, s.begin():
                        await act(s, clock, number=tk.number, staff_id=1, action=action,
                                  dispatch=worker.engine.dispatch)
            if step == 100:
                # Worker 1 dies in the middle of a sweep, after its escalations and before its COMMIT: the
                # transaction never commits (SQLAlchemy's own commit event on that worker's engine raises).
                with worker_dies_before_commit(workers[1]) as written:
                    with pytest.raises(WorkerDied):
                        await sla_sweep(workers[1])
                assert any("outbox_messages" in w or "ticket_events" in w for w in written), \
                    "the sweep that died had escalations to lose"
            await asyncio.gather(sla_sweep(workers[0]), sla_sweep(workers[1]))
            await asyncio.gather(*(d.run_once() for d in deliveries))
            clock.advance(minutes=5)
        async with workers[0].sessionmaker() as s:
            rows = (await s.scalars(select(OutboxMessage))).all()
            events = (await s.scalars(select(TicketEvent).where(TicketEvent.action == "escalate"))).all()
            open_due = (await s.scalars(select(Ticket).where(Ticket.next_check_at < clock.now() - timedelta(minutes=5))
                                        )).all()
    finally:
        for w in workers:
            await w.close()
    assert len(rows) > 100 and len(events) > 10
    # Every escalation step happened once per ticket, deadline (claim, arrive, resolve) and level.
    levels = Counter((e.ticket_id, *e.note.split()[:2]) for e in events)
    assert max(levels.values()) == 1
    # Every message went out exactly once, by one of the two workers; nothing is left behind.
    assert all(r.status == "sent" for r in rows)
    sent = outlets[0].sent + outlets[1].sent
    assert len(sent) == len([r for r in rows if r.last_error != "merged into a later update"])
    assert open_due == []  # no ticket was forgotten by the sweeps, the crash included
