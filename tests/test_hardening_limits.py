"""Ticket creation rate limits in the desk: per chat account (with a burst), per channel (with a staff alert);
emergencies never refused."""
from __future__ import annotations

from sqlalchemy import func, select

from config.settings import Settings
from models import JobRun, OutboxMessage, Ticket, TicketEvent
from tests.helpers.dialog import Chat, make_desk
from tests.helpers.dialog import bind


async def repair(c: Chat, text: str = "厨房水龙头一直滴水，拧紧了也滴") -> str:
    await c.send(text)
    await c.choose("ok")
    await c.choose(next(cid for cid in c.choices if cid.startswith("unit:")))
    await c.choose("done")
    await c.choose("vt:tomorrow_am")
    await c.choose("use_known")
    return await c.choose("submit")


async def public_repair(c: Chat, text: str = "楼道的灯不亮了") -> str:
    """A repair in a public area, for an owner who is not bound to a home."""
    await c.send(text)
    await c.choose("ok")
    await c.choose("public")
    await c.choose_like("estate:")
    await c.send("3栋2单元5楼楼道")
    await c.choose("done")
    await c.choose("vt:tomorrow_am")
    await c.send("13912345678")
    return await c.choose("submit")


async def count(engine, model=Ticket, *where) -> int:  # noqa: ANN001
    async with engine.sm() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


async def limited_engine(db_url, clock, **limits):  # noqa: ANN001
    settings = Settings(database_url=db_url, staff_groups={"duty": {"channel": "telegram", "chat_id": "-20"}},
                        default_group="duty", **limits)
    engine, sm, eng = await make_desk(db_url, clock, settings)
    eng.sm = sm
    return engine, eng


async def test_one_account_gets_a_burst_then_a_clear_answer(db_url, clock):
    engine, eng = await limited_engine(db_url, clock, ticket_rate_per_minute=2, ticket_rate_burst=3)
    try:
        c = Chat(eng, "flooder")
        await bind(c)
        for _ in range(3):
            assert "BX-" in await repair(c)
        out = await repair(c)
        assert "太频繁" in out and "400-800-1234" in out and "BX-" not in out
        assert await count(eng) == 3
        # Another owner is not held up by this one.
        other = Chat(eng, "neighbour")
        await bind(other, unit="1-1-101", phone="13800000002")
        assert "BX-" in await repair(other)
        # The burst refills: after the window, one more goes through.
        clock.advance(minutes=2)
        assert "BX-" in await repair(c)
        assert await count(eng) == 5
    finally:
        await eng.close()
        await engine.dispose()


async def test_an_emergency_over_the_limit_joins_the_open_emergency(db_url, clock):
    engine, eng = await limited_engine(db_url, clock, ticket_rate_per_minute=1, ticket_rate_burst=1)
    try:
        c = Chat(eng, "worried")
        first = await c.send("楼道里好大一股煤气味")
        assert "BX-" in first
        await c.send("/cancel")
        again = await c.send("煤气味越来越大了，快来人")  # over the limit: never refused
        assert "太频繁" not in again
        assert await count(eng) == 1
        [tk] = (await (lambda: _tickets(eng))())
        assert tk.urgency == "emergency"
        assert await count(eng, TicketEvent, TicketEvent.ticket_id == tk.id, TicketEvent.action == "more_info") == 1
    finally:
        await eng.close()
        await engine.dispose()


async def _tickets(eng):  # noqa: ANN001, ANN202
    async with eng.sm() as s:
        return (await s.scalars(select(Ticket))).all()


async def test_a_channel_over_its_cap_alerts_staff_once(db_url, clock):
    engine, eng = await limited_engine(db_url, clock, ticket_rate_per_minute=0, ticket_channel_per_minute=2)
    try:
        owners = [Chat(eng, f"bot-{n}") for n in range(4)]
        assert "BX-" in await public_repair(owners[0]) and "BX-" in await public_repair(owners[1])
        assert "太频繁" in await public_repair(owners[2])
        assert "太频繁" in await public_repair(owners[3])
        assert await count(eng) == 2
        async with eng.sm() as s:
            alerts = [m for m in (await s.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == "-20"))).all()
                      if "渠道" in m.payload.get("text", "")]
        assert len(alerts) == 1 and "test" in alerts[0].payload["text"]
        assert await count(eng, JobRun, JobRun.name == "ticket_cap") == 1
        assert "BX-" in await owners[2].send("楼道里好大一股煤气味")  # an emergency still goes through
    finally:
        await eng.close()
        await engine.dispose()
