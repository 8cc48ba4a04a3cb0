"""The SLA clock, driven by a frozen clock: deadlines, reminders, the escalation ladder, pauses, the return visit."""
from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import select

from bot.app import App
from bot.desk.sla import Calendar, load_sla
from bot.desk.staff_actions import act
from bot.jobs.sweeps import sla_sweep
from bot.desk.ticket_service import TicketService
from models import OutboxMessage, Ticket, TicketEvent
from tests.helpers.dialog import Chat
from tests.helpers.sla import GROUPS, create, texts, ticket  # noqa: F401

NUMBER_RE = __import__("re").compile(r"BX-\d{8}-\d{4}")


def utc(*args) -> datetime:
    return datetime(*args)


def test_business_calendar_adds_working_minutes():
    cal = Calendar("Asia/Shanghai", "08:30", "17:30", [1, 2, 3, 4, 5], ["2026-10-01"])
    # Wednesday 16:00 in Shanghai (08:00 UTC) + 4 working hours: 1.5 h today, 2.5 h tomorrow -> Thursday 11:00.
    assert cal.add(utc(2026, 11, 25, 8, 0), 240) == utc(2026, 11, 26, 3, 0)
    # Friday 17:00 + 1 h runs over the weekend to Monday 09:00.
    assert cal.add(utc(2026, 11, 27, 9, 0), 60) == utc(2026, 11, 30, 1, 0)
    # Reported on Saturday night: the clock starts on Monday morning.
    assert cal.add(utc(2026, 11, 28, 14, 0), 30) == utc(2026, 11, 30, 1, 0)
    # A holiday is not a working day: Wednesday 17:00 + 1 h is half an hour that day, then Friday 09:00,
    # skipping Thursday 2026-10-01.
    assert cal.add(utc(2026, 9, 30, 9, 0), 60) == utc(2026, 10, 2, 1, 0)
    with pytest.raises(ValueError):
        Calendar("Asia/Shanghai", "08:30", "17:30", [], []).add(utc(2026, 1, 1), 1)


def test_policies_come_from_the_config():
    sla = load_sla()
    assert (sla.policy("emergency").claim, sla.policy("emergency").arrive, sla.policy("emergency").resolve) == \
        (5, 30, 240)
    assert sla.policy("normal").around_the_clock is False and sla.policy("unknown") == sla.policy("normal")
    assert [g for g, _ in sla.ladder] == ["team", "supervisors", "managers"]




async def staff_act(app: App, number: str, action: str, note: str = "") -> None:
    async with app.sessionmaker() as s, s.begin():
        await act(s, app.clock, number=number, staff_id=1, action=action, note=note, dispatch=app.engine.dispatch)


async def test_emergency_unclaimed_reminds_and_climbs_the_ladder(desk, clock):
    number = await create(desk, "emergency", category="gas")
    tk = await ticket(desk, number)
    assert (tk.claim_due_at - tk.created_at).total_seconds() == 300 and tk.next_check_at == tk.claim_due_at
    assert await sla_sweep(desk) == 0  # nothing due yet
    clock.advance(minutes=5)
    assert await sla_sweep(desk) == 1
    team = await texts(desk, "-1")
    assert any("未接单提醒" in t and number in t and "王师傅" in t for t in team)  # names the on-duty plumber
    assert any("第 1 级" in t and "接单已超时 0 分钟" in t for t in team)
    assert await texts(desk, "-2") == []
    # Reminders keep coming every 5 minutes; supervisors at +30, managers at +120, then nobody else.
    for _ in range(6):
        clock.advance(minutes=5)
        await sla_sweep(desk)
    assert len([t for t in await texts(desk, "-1") if "未接单提醒" in t]) == 7
    assert any("第 2 级" in t for t in await texts(desk, "-2"))
    assert await texts(desk, "-3") == []
    clock.advance(minutes=90)
    await sla_sweep(desk)
    assert any("第 3 级" in t for t in await texts(desk, "-3"))
    async with desk.sessionmaker() as s:
        events = (await s.scalars(select(TicketEvent.note).where(TicketEvent.action == "escalate"))).all()
    assert [e.split()[0] for e in events] == ["L1", "L2", "L3"]
    # Once claimed, no more unclaimed reminders; the ladder starts again on the next deadline — being on site
    # within 30 minutes, long missed by now (+125 min), so it escalates at once.
    before = len(await texts(desk, "-1"))
    await staff_act(desk, number, "claim")
    tk = await ticket(desk, number)
    assert tk.escalation_level == 0 and tk.next_check_at == tk.arrive_due_at
    clock.advance(minutes=1)
    await sla_sweep(desk)
    new = (await texts(desk, "-1"))[before:]
    assert new and all("未接单" not in t for t in new) and any("到场已超时 96 分钟" in t for t in new)
    assert any("到场" in t and "第 2 级" in t for t in await texts(desk, "-2"))


async def test_normal_ticket_counts_business_hours_and_hold_pauses(desk, clock):
    clock.at = utc(2026, 11, 27, 9, 0)  # Friday 17:00 in Shanghai
    number = await create(desk, "normal", category="electrical")
    tk = await ticket(desk, number)
    assert tk.claim_due_at == utc(2026, 11, 30, 4, 0)  # 4 business hours: Monday 12:00
    assert tk.arrive_due_at is None and tk.next_check_at == utc(2026, 11, 27, 10, 0)  # first reminder in an hour
    await staff_act(desk, number, "claim")
    await staff_act(desk, number, "start")
    due = (await ticket(desk, number)).resolve_due_at
    clock.advance(hours=5)
    await staff_act(desk, number, "hold", "等配件")
    assert (await ticket(desk, number)).next_check_at is None  # paused: nothing reminds or escalates
    clock.advance(hours=30)
    assert await sla_sweep(desk) == 0
    await staff_act(desk, number, "resume")
    tk = await ticket(desk, number)
    assert (tk.resolve_due_at - due).total_seconds() == 30 * 3600  # the deadline moved by the time on hold


async def test_return_visit_window_closes_an_unrated_ticket(desk, clock):
    number = await create(desk, "high")
    for action in ("claim", "start", "resolve"):
        await staff_act(desk, number, action)
    tk = await ticket(desk, number)
    assert tk.next_check_at == tk.resolved_at + load_sla().close_after
    clock.advance(hours=47)
    await sla_sweep(desk)
    assert (await ticket(desk, number)).status == "resolved"
    clock.advance(hours=2)
    await sla_sweep(desk)
    tk = await ticket(desk, number)
    assert tk.status == "closed" and tk.next_check_at is None


async def test_reopened_ticket_gets_a_new_clock(desk, clock):
    number = await create(desk, "high")
    for action in ("claim", "resolve"):
        await staff_act(desk, number, action)
    clock.advance(hours=3)
    async with desk.sessionmaker() as s, s.begin():
        tk = await s.scalar(select(Ticket).where(Ticket.number == number))
        await TicketService(s, clock, desk.engine.dispatch).transition(tk, "reopen", "owner:1", "rating 1: 没修好")
    tk = await ticket(desk, number)
    assert tk.status == "reopened" and (tk.claim_due_at - clock.at).total_seconds() == 30 * 60


async def test_two_workers_sweeping_at_once_escalate_once(desk, clock):
    numbers = [await create(desk, "emergency") for _ in range(30)]
    clock.advance(minutes=5)
    other = App.create(desk.settings, clock=clock)
    try:
        done = await asyncio.gather(sla_sweep(desk, limit=10), sla_sweep(other, limit=10), sla_sweep(desk),
                                    sla_sweep(other))
    finally:
        await other.close()
    assert sum(done) == 30
    async with desk.sessionmaker() as s:
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.action == "escalate"))).all()
    assert sorted(e.ticket_id for e in events) == sorted(set(e.ticket_id for e in events)) and len(events) == 30
    assert len([t for t in await texts(desk, "-1") if "第 1 级" in t]) == len(numbers)


async def test_owner_hurries_ping_the_assignee_and_count_toward_escalation(desk, clock):
    from bot.triage.classifier import get_classifier
    from bot.desk.owner_desk import DbDesk
    from models import Identity, Staff

    async with desk.sessionmaker() as s, s.begin():
        tk = await TicketService(s, clock, desk.engine.dispatch).create(
            kind="repair", category="water", urgency="normal", description="漏水", channel="test", reporter_id=1,
            actor="owner:1")
        number = tk.number
        staff = await s.get(Staff, 1)
        s.add(Identity(channel="telegram", external_id="601", chat_id="601", person_id=staff.person_id,
                       created_at=clock.now()))
    await staff_act(desk, number, "claim")

    async def hurry() -> tuple[bool, int]:
        async with desk.sessionmaker() as s, s.begin():
            return await DbDesk(s, get_classifier(), clock, 30, desk.engine.dispatch).hurry_ticket(1, number)

    assert await hurry() == (True, 0)
    assert any("催单" in t for t in await texts(desk, "601"))  # the assignee, in private
    assert not any("多次催单" in t for t in await texts(desk, "-1"))
    assert (await hurry())[0] is False  # the cooldown
    clock.advance(minutes=31)
    assert await hurry() == (True, 0)
    assert any("多次催单" in t and "第 1 级" in t for t in await texts(desk, "-1"))
    assert (await ticket(desk, number)).escalation_level == 1


async def test_owner_is_told_the_promised_time_on_each_change(desk, clock):
    from models import Identity

    async with desk.sessionmaker() as s, s.begin():
        s.add(Identity(channel="web", external_id="w-owner1", chat_id="w-owner1", person_id=1,
                       created_at=clock.now()))
        number = (await TicketService(s, clock, desk.engine.dispatch).create(
            kind="repair", category="lift", urgency="emergency", description="电梯困人", channel="web",
            reporter_id=1, actor="owner:1")).number
    await staff_act(desk, number, "claim")  # at 10:00 in Shanghai: on site within 30 minutes
    await staff_act(desk, number, "start")  # resolved within 4 hours of the report
    await staff_act(desk, number, "reject", "不是本小区")  # back into dispatch: claimed within 5 minutes
    told = await texts(desk, "w-owner1")
    assert "预计今天 10:30 前上门" in told[0]
    assert "预计今天 14:00 前处理完成" in told[1]
    assert "不是本小区" not in told[2] and "预计今天 10:05 前安排人员接单" in told[2]  # the reason is for staff


async def test_possible_duplicates_are_flagged_on_the_card(desk, clock):
    from bot.desk.group_cards import build_group_card

    async def report(unit_id=None, location="", estate_id=None, category="water") -> Ticket:
        async with desk.sessionmaker() as s, s.begin():
            return await TicketService(s, clock, desk.engine.dispatch).create(
                kind="repair", category=category, urgency="normal", description="漏水", channel="test",
                reporter_id=None, actor="t", unit_id=unit_id, location_text=location, estate_id=estate_id)

    first = await report(unit_id=1)
    assert first.possible_duplicate_of is None
    assert (await report(unit_id=1)).possible_duplicate_of == first.number
    assert (await report(unit_id=2)).possible_duplicate_of is None  # another home
    assert (await report(unit_id=1, category="electrical")).possible_duplicate_of is None
    spot = await report(location="3栋2单元5楼楼道", estate_id=1)
    again = await report(location=" 3栋2单元5楼楼道", estate_id=1)
    assert spot.possible_duplicate_of is None and again.possible_duplicate_of == spot.number
    async with desk.sessionmaker() as s:
        card = await build_group_card(s, await s.get(Ticket, again.id), clock)
    assert f"可能与 {spot.number} 重复" in card.text
    clock.advance(hours=25)
    assert (await report(unit_id=1)).possible_duplicate_of is None  # outside the window


async def test_low_rating_reopens_to_the_supervisors(desk, clock):
    from bot.triage.classifier import get_classifier
    from bot.desk.owner_desk import DbDesk

    async with desk.sessionmaker() as s, s.begin():
        number = (await TicketService(s, clock, desk.engine.dispatch).create(
            kind="repair", category="water", urgency="normal", description="漏水", channel="test", reporter_id=1,
            actor="owner:1")).number
    for action in ("claim", "start", "resolve"):
        await staff_act(desk, number, action)
    async with desk.sessionmaker() as s, s.begin():
        assert await DbDesk(s, get_classifier(), clock, 30, desk.engine.dispatch).rate_ticket(1, number, 1, "还在漏")
    assert (await ticket(desk, number)).status == "reopened"
    assert any("业主不满意" in t and number in t and "还在漏" in t for t in await texts(desk, "-2"))


async def test_merging_a_duplicate_keeps_both_owners_informed(desk, clock):
    from models import Identity, Person

    async with desk.sessionmaker() as s, s.begin():
        (await s.get(Person, 2)).lang = "en"  # the second owner chose English
        for person in (1, 2):
            s.add(Identity(channel="web", external_id=f"w-{person}", chat_id=f"w-{person}", person_id=person,
                           created_at=clock.now()))
        svc = TicketService(s, clock, desk.engine.dispatch)
        first = (await svc.create(kind="repair", category="public_facility", urgency="normal", description="灯坏了",
                                  channel="web", reporter_id=1, actor="owner:1", estate_id=1,
                                  location_text="3栋大堂")).number
        second = await svc.create(kind="repair", category="public_facility", urgency="normal", description="大堂灯不亮",
                                  channel="web", reporter_id=2, actor="owner:2", estate_id=1, location_text="3栋大堂")
        assert second.possible_duplicate_of == first
        second = second.number
    await staff_act(desk, second, "merge")  # into the flagged one
    assert (await ticket(desk, second)).status == "closed"
    assert any(first in t for t in await texts(desk, "w-2"))
    await staff_act(desk, first, "claim")
    assert any("接单" in t and first in t for t in await texts(desk, "w-1"))
    # The merged owner hears too, in their own language.
    assert any("was claimed by" in t and first in t for t in await texts(desk, "w-2"))
    assert not any("接单" in t for t in await texts(desk, "w-2"))
    with pytest.raises(Exception, match="merge needs"):
        await staff_act(desk, first, "merge")  # nothing to merge into


async def test_not_fixed_reopens_to_the_supervisors(desk, clock):
    chat = Chat(desk.engine, "owner-x", channel="test")
    out = await chat.send("电梯困人了，快来")
    number = NUMBER_RE.search(out).group(0)
    for action in ("claim", "start", "resolve"):
        await staff_act(desk, number, action)
    async with desk.sessionmaker() as s:
        notice = (await s.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == "owner-x"))).all()[-1]
    assert [c["id"] for c in notice.payload["choices"]] == [f"rate:{number}", f"notfixed:{number}"]
    out = await chat.send(kind="choice", choice=f"notfixed:{number}")
    assert "重新受理" in out
    tk = await ticket(desk, number)
    assert tk.status == "reopened" and tk.next_check_at is not None
    assert any("没修好" in t and number in t for t in await texts(desk, "-2"))
    assert "无法重新受理" in await chat.send(kind="choice", choice=f"notfixed:{number}")  # not resolved now
