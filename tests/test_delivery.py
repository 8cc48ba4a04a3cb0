"""The outbox delivery worker on SQLite and PostgreSQL: order, retries, failures, merging, two workers."""
from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select

from bot.delivery.outbox_worker import Delivery, DeliveryError
from bot.desk.routing import Dispatch
from bot.desk.staff_actions import act
from bot.desk.ticket_service import TicketService
from config.settings import Route, StaffGroup
from models import OutboxMessage, PostedCard, TicketEvent
from tests.fakes.outlet import Outlet

GROUPS = {"repairs": StaffGroup(channel="chat", chat_id="-10"), "duty": StaffGroup(channel="chat", chat_id="-20"),
          "complaints": StaffGroup(channel="chat", chat_id="-30")}
ROUTES = [Route(groups=["duty"], urgency=["emergency"]), Route(groups=["complaints"], kind=["complaint"]),
          Route(groups=["repairs"], kind=["repair"], estate=["SG"])]


async def queue(sm, clock, chat_id: str, texts: list[str], priority: int = 0) -> None:  # noqa: ANN001
    async with sm() as s, s.begin():
        for text in texts:
            s.add(OutboxMessage(channel="chat", chat_id=chat_id, payload={"text": text}, priority=priority,
                                created_at=clock.now()))


async def statuses(sm) -> list[tuple[str, int, str]]:  # noqa: ANN001
    async with sm() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        return [(r.status, r.attempts, r.last_error) for r in rows]


async def test_routing_rules_pick_groups():
    d = Dispatch(GROUPS, ROUTES, default_group="repairs")
    assert d.group_names({"kind": "repair", "urgency": "emergency", "estate": "SG"}) == ["duty", "repairs"]
    assert d.group_names({"kind": "complaint", "urgency": "normal", "estate": "CH"}) == ["complaints"]
    assert d.group_names({"kind": "repair", "urgency": "normal", "estate": "CH"}) == ["repairs"]
    assert Dispatch(GROUPS, ROUTES).group_names({"kind": "repair", "estate": "CH"}) == list(GROUPS)
    assert Dispatch({}, []).group_names({"kind": "repair"}) == []


def test_routing_to_an_unknown_group_is_refused():
    import pytest

    from config.settings import Settings

    with pytest.raises(ValueError, match="duty"):
        Dispatch.from_settings(Settings(staff_groups={"repairs": GROUPS["repairs"]},
                                        routes=[Route(groups=["duty"], urgency=["emergency"])]))
    with pytest.raises(ValueError, match="nowhere"):
        Dispatch.from_settings(Settings(default_group="nowhere"))
    assert Dispatch.from_settings(Settings(staff_groups=GROUPS, routes=ROUTES, default_group="repairs"))


async def test_order_priority_and_retry_after(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    delivery = Delivery(sm, clock, {"chat": outlet}, backoff_seconds=10)
    await queue(sm, clock, "1", ["a", "b", "c"])
    await queue(sm, clock, "1", ["urgent"], priority=3)
    outlet.failures = [DeliveryError("flood", retry_after=30)]
    assert await delivery.run_once() == 0
    # The failed message and the ones behind it wait for the retry; nothing else went out of order.
    assert outlet.sent == []
    assert await delivery.run_once() == 0
    clock.advance(seconds=31)
    assert await delivery.run_once() == 4
    assert [t for _, t in outlet.sent] == ["urgent", "a", "b", "c"]
    assert [s for s, _, _ in await statuses(sm)] == ["sent"] * 4


async def test_backoff_then_failed_for_good_is_recorded_on_the_ticket(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    delivery = Delivery(sm, clock, {"chat": outlet}, max_attempts=3, backoff_seconds=5)
    async with sm() as s, s.begin():
        tk = await TicketService(s, clock).create(kind="repair", category="water", urgency="normal",
                                                  description="漏水", channel="chat", reporter_id=None, actor="t")
        s.add(OutboxMessage(channel="chat", chat_id="7", payload={"text": "x"}, ticket_id=tk.id,
                            created_at=clock.now()))
    outlet.failures = [DeliveryError("timeout")] * 3
    await delivery.run_once()
    clock.advance(seconds=4)
    await delivery.run_once()
    assert len(outlet.failures) == 2  # still waiting out the 5 s backoff
    clock.advance(seconds=2)
    await delivery.run_once()
    clock.advance(seconds=11)  # the second backoff doubles
    await delivery.run_once()
    assert await statuses(sm) == [("failed", 3, "timeout")]
    async with sm() as s:
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.action == "undelivered"))).all()
    assert len(events) == 1 and "chat:7" in events[0].note


async def test_permanent_error_fails_at_once(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    await queue(sm, clock, "9", ["blocked"])
    outlet.failures = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
    await Delivery(sm, clock, {"chat": outlet}).run_once()
    assert await statuses(sm) == [("failed", 1, "Forbidden: bot was blocked by the user")]


async def test_card_posted_once_then_edited_and_updates_merge(desk_engine, clock):
    sm, outlet = desk_engine.sm, Outlet()
    dispatch = Dispatch({"repairs": GROUPS["repairs"]}, [])
    delivery = Delivery(sm, clock, {"chat": outlet})
    async with sm() as s, s.begin():
        tk = await TicketService(s, clock, dispatch).create(kind="repair", category="water", urgency="high",
                                                            description="水管爆了", channel="chat",
                                                            reporter_id=None, actor="t")
        number = tk.number
    await delivery.run_once()
    async with sm() as s:
        [card] = (await s.scalars(select(PostedCard))).all()
    assert card.message_id == "m1" and "待接单" in outlet.cards["m1"]
    # Three changes in a row, one edit: the card shows the latest state.
    for action, note in (("claim", ""), ("start", ""), ("hold", "等配件")):
        async with sm() as s, s.begin():
            await act(s, clock, number=number, staff_id=1, action=action, note=note, dispatch=dispatch)
    await delivery.run_once()
    assert [t for _, t in outlet.sent] == [f"card {number} new", f"card {number} edit"]
    assert "暂停处理" in outlet.cards["m1"] and len(outlet.cards) == 1
    async with sm() as s:
        pending = (await s.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == "-10",
                                                                OutboxMessage.status == "pending"))).all()
    assert pending == []


async def test_two_workers_send_every_message_exactly_once(desk_engine, clock):
    sm = desk_engine.sm
    first, second = Outlet(), Outlet()
    first.latency = second.latency = 0.002
    for chat in range(8):
        await queue(sm, clock, str(chat), [f"{chat}-{i}" for i in range(10)])
    workers = [Delivery(sm, clock, {"chat": first}), Delivery(sm, clock, {"chat": second})]
    await asyncio.gather(*(w.run_once() for w in workers))
    sent = first.sent + second.sent
    assert sorted(t for _, t in sent) == sorted(f"{c}-{i}" for c in range(8) for i in range(10))
    # Within a chat, the order is kept.
    for chat in range(8):
        mine = [t for c, t in first.sent if c == str(chat)] or [t for c, t in second.sent if c == str(chat)]
        assert mine == sorted(mine, key=lambda t: int(t.split("-")[1]))


async def test_assign_and_round_robin_dispatch(desk_engine, clock):
    from models import Staff

    sm = desk_engine.sm
    async with sm() as s, s.begin():
        for name, phone in (("赵师傅", "13900000011"), ("钱师傅", "13900000012")):
            from bot.desk.staff_accounts import add_staff

            await add_staff(s, clock, name=name, phone=phone, trade="plumber")
    dispatch = Dispatch(GROUPS, [Route(groups=["duty"], urgency=["emergency"], mode="assign",
                                       assignee="13900000003"),
                                 Route(groups=["repairs"], category=["water"], mode="round_robin",
                                       trade="plumber")])

    async def new(category: str, urgency: str) -> tuple[str, int | None]:
        async with sm() as s, s.begin():
            tk = await TicketService(s, clock, dispatch).create(kind="repair", category=category, urgency=urgency,
                                                                description="x", channel="test", reporter_id=None,
                                                                actor="t")
            clock.advance(seconds=1)
            return tk.status, tk.assignee_id

    async with sm() as s:
        plumbers = (await s.scalars(select(Staff.id).where(Staff.trade == "plumber").order_by(Staff.id))).all()
        supervisor = await s.scalar(select(Staff.id).where(Staff.role == "supervisor"))
    assert await new("gas", "emergency") == ("assigned", supervisor)
    got = [await new("water", "normal") for _ in range(2 * len(plumbers))]
    assert [a for _, a in got] == plumbers + plumbers  # each in turn, longest since a ticket first
    assert await new("electrical", "normal") == ("new", None)  # no rule: the group grabs it


async def test_emergencies_after_hours_go_to_the_on_duty_group(desk_engine, clock):
    from bot.desk.sla import load_sla

    dispatch = Dispatch(GROUPS, [Route(groups=["duty"], urgency=["emergency"], after_hours=True)],
                        default_group="repairs", calendar=load_sla().calendar)

    async def groups_at(at: datetime, urgency: str) -> list[str]:
        clock.at = at
        async with desk_engine.sm() as s, s.begin():
            tk = await TicketService(s, clock, dispatch).create(kind="repair", category="gas", urgency=urgency,
                                                                description="x", channel="test", reporter_id=None,
                                                                actor="t")
            return [c.group for c in (await s.scalars(select(PostedCard).where(PostedCard.ticket_id == tk.id)))]

    assert await groups_at(datetime(2026, 11, 25, 2, 0), "emergency") == ["repairs"]  # Wednesday 10:00
    assert await groups_at(datetime(2026, 11, 25, 14, 0), "emergency") == ["duty"]  # 22:00
    assert await groups_at(datetime(2026, 11, 28, 2, 0), "emergency") == ["duty"]  # Saturday
    assert await groups_at(datetime(2026, 11, 25, 14, 0), "normal") == ["repairs"]
