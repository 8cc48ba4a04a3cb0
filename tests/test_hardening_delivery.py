"""Delivery that does not give up on what matters: emergencies through a 10-minute Bot API outage, the on-duty
fallback group, supervised chat workers, no card posted twice, and the delivery queries' plans on PostgreSQL."""
from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select, text

from bot.app import App
from bot.channels.telegram.channel import TelegramChannel
from bot.clock import FrozenClock
from bot.delivery.outbox_worker import Delivery, DeliveryError
from bot.desk.demo_seed import seed_demo
from bot.desk.routing import Dispatch
from bot.desk.ticket_service import TicketService
from bot.runner import build_delivery
from config.settings import Settings, StaffGroup
from models import OutboxMessage, PostedCard, TicketEvent
from tests.fakes import telegram_api as tg

GROUP, OWNER_CHAT = -1001, 4242


async def emergency(sm, clock, dispatch, description: str = "燃气泄漏，楼道里好大一股煤气味") -> str:  # noqa: ANN001
    async with sm() as s, s.begin():
        tk = await TicketService(s, clock, dispatch).create(kind="repair", category="gas", urgency="emergency",
                                                            description=description, channel="test",
                                                            reporter_id=None, actor="t")
        return tk.number


async def test_an_emergency_card_survives_ten_minutes_of_bot_api_errors(tmp_path, sqlite_url):
    clock = FrozenClock(__import__("datetime").datetime(2026, 11, 25, 2, 0))
    fake = await tg.FakeBotAPI().start()
    settings = Settings(database_url=sqlite_url, telegram_token=fake.token, telegram_api_base_url=fake.url,
                        staff_groups={"repairs": {"channel": "telegram", "chat_id": str(GROUP)}},
                        upload_dir=str(tmp_path / "up"))
    app = App.create(settings, clock=clock)
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s, today=clock.local().date())
    channel = TelegramChannel(app)
    await channel.start()
    try:
        delivery = build_delivery(app, [channel])
        fake.fail("sendMessage", times=10**6, code=500, description="Internal Server Error")
        number = await emergency(app.sessionmaker, clock, app.engine.dispatch)
        await app.queue_messages("telegram", str(OWNER_CHAT), [{"text": "师傅马上到，请先离开房间"}])
        start = clock.now()
        for _ in range(60):  # 30 minutes of the controlled clock, in 30-second steps
            if (clock.now() - start).total_seconds() >= 600:
                fake.failures.clear()  # the Bot API is back after 10 minutes
            await delivery.run_once()
            clock.advance(seconds=30)
        cards = [p for p in fake.of("sendMessage", GROUP) if number in p["text"]]
        failed = [c for c in fake.calls if c.method == "sendMessage" and not c.ok]
        assert len(failed) > 8  # it kept trying through the outage (with a capped backoff)…
        assert len([c for c in fake.calls if c.ok and c.method == "sendMessage"
                    and int(c.params["chat_id"]) == GROUP]) == 1  # …and the card arrived, once
        assert cards and "师傅马上到，请先离开房间" in fake.texts(OWNER_CHAT)
        async with app.sessionmaker() as s:
            assert set((await s.scalars(select(OutboxMessage.status))).all()) == {"sent"}
            late = (await s.scalars(select(TicketEvent).where(TicketEvent.action == "delivery_late"))).all()
        assert len(late) == 1  # staff see on the timeline that the card was late
    finally:
        await channel.stop()
        await app.close()
        await fake.stop()


class Outlet:
    """An in-process outlet whose chats can be made unreachable, and whose calls can be held."""

    channel = "chat"

    def __init__(self):
        self.down: set[str] = set()
        self.posts: list[tuple[str, str]] = []
        self.edits: list[tuple[str, str]] = []
        self.hold: asyncio.Event | None = None

    async def send(self, chat_id: str, payload: dict, reply_to: str | None = None) -> str:
        if chat_id in self.down:
            raise DeliveryError("Internal Server Error")
        self.posts.append((chat_id, payload.get("text", "")))
        return "1"

    async def put_card(self, chat_id: str, card, message_id: str | None) -> str:  # noqa: ANN001
        if self.hold is not None:
            await self.hold.wait()
        if chat_id in self.down:
            raise DeliveryError("Internal Server Error")
        if message_id:
            self.edits.append((chat_id, card.text))
            return message_id
        self.posts.append((chat_id, card.text))
        return f"m{len(self.posts)}"


GROUPS = {"repairs": StaffGroup(channel="chat", chat_id="-10"), "duty": StaffGroup(channel="chat", chat_id="-20")}


async def test_an_unreachable_group_s_card_goes_to_the_on_duty_group(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    dispatch = Dispatch({"repairs": GROUPS["repairs"]}, [])
    delivery = Delivery(sm, clock, {"chat": outlet}, fallback=("duty", GROUPS["duty"]), fallback_after_minutes=5)
    outlet.down.add("-10")
    number = await emergency(sm, clock, dispatch)
    for _ in range(8):  # four minutes: still only the repairs group is tried
        await delivery.run_once()
        clock.advance(seconds=30)
    assert outlet.posts == []
    for _ in range(6):
        await delivery.run_once()
        clock.advance(seconds=30)
    [(chat, card)] = outlet.posts
    assert chat == "-20" and number in card and "代发" in card and "repairs" in card
    async with sm() as s:
        slots = {c.group: c for c in (await s.scalars(select(PostedCard))).all()}
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.action == "fallback"))).all()
    assert slots["duty"].fallback_from == "repairs" and slots["repairs"].message_id is None and len(events) == 1
    # The repairs group comes back: it gets its card too, and the fallback happens only once.
    outlet.down.clear()
    for _ in range(12):
        await delivery.run_once()
        clock.advance(seconds=30)
    assert [c for c, _ in outlet.posts] == ["-20", "-10"]


async def test_a_card_is_retried_until_its_ticket_closes_and_then_given_up(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    dispatch = Dispatch({"repairs": GROUPS["repairs"]}, [])
    delivery = Delivery(sm, clock, {"chat": outlet})
    outlet.down.add("-10")
    number = await emergency(sm, clock, dispatch)
    for _ in range(20):
        await delivery.run_once()
        clock.advance(minutes=10)
    async with sm() as s:
        [row] = (await s.scalars(select(OutboxMessage))).all()
        assert row.status == "pending" and row.attempts >= 15  # 200 minutes on: still trying, every 5 minutes
        assert (row.next_attempt_at - clock.now()).total_seconds() <= 300
    async with sm() as s, s.begin():
        from models import Ticket

        tk = await s.scalar(select(Ticket).where(Ticket.number == number))
        await TicketService(s, clock, dispatch).transition(tk, "cancel", "owner:1", note="no longer needed")
    clock.advance(minutes=10)
    await delivery.run_once()
    async with sm() as s:
        assert set((await s.scalars(select(OutboxMessage.status))).all()) == {"failed"}


async def test_a_dead_chat_worker_is_logged_and_restarted(desk_engine, clock, caplog):
    sm, outlet = desk_engine.sm, Outlet()
    delivery = Delivery(sm, clock, {"chat": outlet})
    async with sm() as s, s.begin():
        s.add(OutboxMessage.new("chat", "7", {"text": "hello"}, at=clock.now()))
    real = delivery.claim_next
    calls = []

    async def broken(channel: str, chat_id: str):  # noqa: ANN202
        calls.append(chat_id)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return await real(channel, chat_id)

    delivery.claim_next = broken
    with caplog.at_level(logging.ERROR, logger="propdesk.delivery"):
        assert await delivery.run_once() == 0
    assert "stopped" in caplog.text and "database went away" in caplog.text
    assert await delivery.run_once() == 1 and outlet.posts == [("7", "hello")]


async def test_a_card_is_not_posted_twice_when_its_post_outlasts_the_lease(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    dispatch = Dispatch({"repairs": GROUPS["repairs"]}, [])
    first = Delivery(sm, clock, {"chat": outlet}, lease_seconds=0.2)
    second = Delivery(sm, clock, {"chat": outlet}, lease_seconds=0.2)
    number = await emergency(sm, clock, dispatch)
    outlet.hold = asyncio.Event()
    slow = asyncio.create_task(first.run_once())  # its post waits for the platform's answer…
    await asyncio.sleep(0.05)
    for _ in range(5):  # …for longer than its lease, while another worker looks for due rows
        clock.advance(seconds=1)
        await asyncio.sleep(0.1)
        await second.run_once()
    outlet.hold.set()
    await slow
    clock.advance(seconds=1)
    await second.run_once()
    assert [c for c, _ in outlet.posts] == ["-10"] and number in outlet.posts[0][1]


async def test_the_delivery_queries_use_indexes_on_an_unanalyzed_postgresql_table(db_url, clock):
    if not db_url.startswith("postgresql"):
        pytest.skip("query plans are checked on PostgreSQL")
    from models.db import make_engine

    engine = make_engine(db_url)
    async with engine.begin() as conn:
        # Many sent rows and a few pending ones, never analyzed (autovacuum may be off).
        await conn.execute(text(
            "INSERT INTO outbox (channel, chat_id, kind, priority, payload, status, attempts, created_at, last_error)"
            " SELECT 'telegram', (g % 500)::text, 'message', 0, '{}', 'sent', 1, now(), '' "
            "FROM generate_series(1, 60000) g"))
        await conn.execute(text(
            "INSERT INTO outbox (channel, chat_id, kind, priority, payload, status, attempts, created_at, last_error,"
            " ticket_id) SELECT 'telegram', (g % 5)::text, 'card', 1, '{}', 'pending', 0, now(), '', g "
            "FROM generate_series(1, 20) g"))
        sm_delivery = Delivery(None, clock, {"telegram": object()})
        from sqlalchemy.dialects import postgresql

        def plan_of(stmt) -> str:  # noqa: ANN001
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            return sql

        due = select(OutboxMessage.channel, OutboxMessage.chat_id).where(
            *sm_delivery._due(clock.now())).distinct().limit(200)  # noqa: SLF001
        claim = (select(OutboxMessage.id).where(*sm_delivery._due(clock.now()), OutboxMessage.channel == "telegram",  # noqa: SLF001
                                                OutboxMessage.chat_id == "3")
                 .order_by(OutboxMessage.priority.desc(), OutboxMessage.id).limit(1))
        merge = select(OutboxMessage.id).where(OutboxMessage.status == "pending", OutboxMessage.kind == "card",
                                               OutboxMessage.ticket_id == 7, OutboxMessage.channel == "telegram",
                                               OutboxMessage.chat_id == "2")
        for stmt in (due, claim, merge):
            plan = "\n".join(r[0] for r in await conn.execute(text("EXPLAIN " + plan_of(stmt))))
            assert "Seq Scan on outbox" not in plan, plan
        await conn.execute(text("TRUNCATE outbox"))
    await engine.dispose()
