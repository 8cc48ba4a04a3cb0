"""Escalations: an emergency's hurry always goes through and climbs; a step nobody can be told is not claimed."""
from __future__ import annotations

from sqlalchemy import select

from bot.desk.owner_desk import DbDesk
from bot.desk.ticket_service import TicketService
from bot.triage.classifier import get_classifier
from tests.helpers.sla import texts, ticket


async def create(app, urgency: str) -> str:
    async with app.sessionmaker() as s, s.begin():
        return (await TicketService(s, app.clock, app.engine.dispatch).create(
            kind="repair", category="lift", urgency=urgency, description="电梯困人", channel="test", reporter_id=1,
            actor="owner:1")).number


async def hurry(app, number: str) -> tuple[bool, int]:
    async with app.sessionmaker() as s, s.begin():
        return await DbDesk(s, get_classifier(), app.clock, 30, app.engine.dispatch).hurry_ticket(1, number)


async def test_emergency_hurry_skips_the_cooldown_and_escalates_each_time(desk, clock):
    number = await create(desk, "emergency")
    assert await hurry(desk, number) == (True, 0)
    assert any("多次催单" in t and "第 1 级" in t for t in await texts(desk, "-1"))  # the first hurry already
    clock.advance(minutes=1)
    assert await hurry(desk, number) == (True, 0)  # no 30-minute cooldown
    assert any("第 2 级" in t for t in await texts(desk, "-2"))
    for _ in range(2):
        clock.advance(minutes=1)
        assert await hurry(desk, number) == (True, 0)
    assert len([t for t in await texts(desk, "-3") if "多次催单" in t]) == 2  # the top is told again
    tk = await ticket(desk, number)
    assert tk.hurry_count == 4


async def test_normal_hurry_keeps_its_cooldown(desk, clock):
    number = await create(desk, "normal")
    assert await hurry(desk, number) == (True, 0)
    assert (await hurry(desk, number))[0] is False
    assert not any("多次催单" in t for t in await texts(desk, "-1"))


async def test_escalation_nobody_could_be_told_is_recorded_as_undelivered(desk_engine, clock):
    from bot.app import App
    from bot.jobs.sweeps import sla_sweep
    from config.settings import Settings
    from models import TicketEvent
    from tests.conftest import Chat

    app = App.create(Settings(database_url=desk_engine.settings.database_url), clock=clock)  # no staff groups
    try:
        c = Chat(app.engine, "owner-x")
        await c.send("电梯困人了，快来")
        await c.choose("skip")
        clock.advance(minutes=6)
        await sla_sweep(app)
        async with app.sessionmaker() as s:
            events = (await s.scalars(select(TicketEvent).where(TicketEvent.actor == "system:sla"))).all()
        assert [e.action for e in events] == ["undelivered"] and "team" in events[0].note
        await c.send("/mytickets")
        out = await c.choose_like("t:")
        assert "升级" not in out and "未能送达" not in out and "undelivered" not in out
    finally:
        await app.close()
