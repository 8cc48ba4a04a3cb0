"""Storage on SQLite and PostgreSQL: migrations, concurrent numbering, audit trail, conversation state."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, inspect, select

from bot.conversation.engine import Sender
from bot.desk.ticket_service import TicketService
from handlers.messages import Inbound
from models import Action, Base, Conversation, OutboxMessage, Staff, Ticket, TicketEvent, TransitionError
from tests.helpers.dialog import make_desk
from models.db import downgrade, make_engine, make_sessionmaker, upgrade


async def test_migrations_create_every_model_table_and_downgrade(db_url):
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    await downgrade(engine, "base")
    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert not set(Base.metadata.tables) & tables
    await upgrade(engine)
    await engine.dispose()


async def test_ticket_numbers_unique_under_concurrency(desk_engine):
    """Two 'workers' (separate engines and pools) create tickets at once: no number repeats."""
    url = desk_engine.settings.database_url
    engines = [make_engine(url) for _ in range(2)]
    makers = [make_sessionmaker(e) for e in engines]

    async def create(i: int) -> str:
        async with makers[i % 2]() as s, s.begin():
            tk = await TicketService(s, desk_engine.clock).create(
                kind="repair", category="water", urgency="normal", description=f"leak {i}", channel="test",
                reporter_id=None, actor="test")
            return tk.number

    numbers = await asyncio.gather(*(create(i) for i in range(40)))
    assert len(set(numbers)) == 40
    assert sorted(numbers) == [f"BX-20261125-{i:04d}" for i in range(1, 41)]
    for e in engines:
        await e.dispose()


async def test_daily_sequence_restarts_and_prefix_per_kind(desk_engine):
    async with desk_engine.sm() as s, s.begin():
        svc = TicketService(s, desk_engine.clock)
        a = await svc.create(kind="repair", category="water", urgency="low", description="a", channel="t",
                             reporter_id=None, actor="t")
        b = await svc.create(kind="complaint", category="noise", urgency="normal", description="b", channel="t",
                             reporter_id=None, actor="t")
    desk_engine.clock.advance(days=1)
    async with desk_engine.sm() as s, s.begin():
        c = await TicketService(s, desk_engine.clock).create(kind="repair", category="water", urgency="low",
                                                            description="c", channel="t", reporter_id=None,
                                                            actor="t")
    assert (a.number, b.number, c.number) == ("BX-20261125-0001", "TS-20261125-0001", "BX-20261126-0001")


async def test_transitions_write_the_audit_trail_and_notify_the_owner(desk_engine):
    sender = Sender("web", "owner-1", "owner-1", "Owner")
    await desk_engine.handle(sender, Inbound.text_or_command("楼道里有很浓的煤气味，快来人"))
    async with desk_engine.sm() as s, s.begin():
        tk = (await s.scalars(select(Ticket))).one()
        staff = (await s.scalars(select(Staff))).first()
        svc = TicketService(s, desk_engine.clock)
        await svc.transition(tk, Action.CLAIM, f"staff:{staff.id}", assignee_id=staff.id)
        await svc.transition(tk, Action.START, f"staff:{staff.id}")
        with pytest.raises(TransitionError):
            await svc.transition(tk, Action.CLOSE, f"staff:{staff.id}")
        with pytest.raises(ValueError):
            await svc.transition(tk, Action.REJECT, f"staff:{staff.id}", note="  ")
        await svc.transition(tk, Action.RESOLVE, f"staff:{staff.id}", "关了阀门，换了软管")
    async with desk_engine.sm() as s:
        events = (await s.scalars(select(TicketEvent).order_by(TicketEvent.id))).all()
        assert [(e.action, e.from_status, e.to_status) for e in events] == [
            ("create", None, "new"), ("claim", "new", "assigned"), ("start", "assigned", "in_progress"),
            ("resolve", "in_progress", "resolved")]
        outbox = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        assert [o.chat_id for o in outbox] == ["owner-1"] * 3
        assert "王师傅" in outbox[0].payload["text"] and "已处理完成" in outbox[2].payload["text"]
        assert outbox[2].payload["choices"][0]["id"].startswith("rate:")


async def test_conversation_state_survives_a_restart(db_url, clock):
    engine, sm, eng = await make_desk(db_url, clock)
    sender = Sender("web", "c1", "c1")
    await eng.handle(sender, Inbound.text_or_command("/repair"))
    await eng.close()
    await engine.dispose()
    # A new engine (a restart, or a second worker) picks the conversation up where it was.
    engine2 = make_engine(db_url)
    from bot.conversation.engine import Engine

    eng2 = Engine(make_sessionmaker(engine2), eng.settings, clock=clock)
    replies = await eng2.handle(sender, Inbound.text_or_command("厨房水龙头一直滴水"))
    assert "水路" in replies[0].text
    async with make_sessionmaker(engine2)() as s:
        conv = await s.get(Conversation, ("web", "c1"))
        assert (conv.flow, conv.state) == ("repair", "confirm_class")
        assert await s.scalar(select(func.count()).select_from(Conversation)) == 1
    await eng2.close()
    await engine2.dispose()


async def test_a_message_survives_the_database_dropping_its_connections(desk_engine, caplog):
    """PostgreSQL restarts (its connections are killed): the next message still goes through, once."""
    from sqlalchemy import text

    if not desk_engine.settings.database_url.startswith("postgresql"):
        pytest.skip("connection loss is a PostgreSQL matter here")
    sender = Sender(channel="test", chat_id="c1", user_id="c1")
    assert await desk_engine.handle(sender, Inbound.text_or_command("/start"))
    killer = make_engine(desk_engine.settings.database_url)
    async with killer.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    await killer.dispose()
    replies = await desk_engine.handle(sender, Inbound.text_or_command("楼道里好大一股煤气味"))
    assert "BX-" in replies[0].text
    assert "running the message again" in caplog.text
    async with desk_engine.sm() as s:
        assert await s.scalar(select(func.count()).select_from(Ticket)) == 1


async def test_two_first_messages_of_a_new_owner_at_once_make_one_account(desk_engine):
    """Two workers (separate pools) take a new owner's first two messages at the same moment: both are answered,
    and the owner has one account and one conversation."""
    from bot.conversation.engine import Engine
    from models import Identity, Person

    url = desk_engine.settings.database_url
    engines = [make_engine(url) for _ in range(2)]
    workers = [Engine(make_sessionmaker(e), desk_engine.settings, clock=desk_engine.clock) for e in engines]
    sender = Sender(channel="test", chat_id="new-1", user_id="new-1", display_name="新业主")
    answers = await asyncio.gather(workers[0].handle(sender, Inbound.text_or_command("你好")),
                                   workers[1].handle(sender, Inbound.text_or_command("菜单")))
    assert all(answers)
    async with desk_engine.sm() as s:
        assert await s.scalar(select(func.count()).select_from(Identity).where(Identity.external_id == "new-1")) == 1
        assert await s.scalar(select(func.count()).select_from(Person).where(Person.name == "新业主")) == 1
        assert await s.scalar(select(func.count()).select_from(Conversation)
                              .where(Conversation.chat_id == "new-1")) == 1
    for worker, e in zip(workers, engines, strict=False):
        await worker.close()
        await e.dispose()
