"""Owners read plain words in their language: no rule names, no internal notes, no staff's reasons."""
from __future__ import annotations

from sqlalchemy import select

from bot.desk.staff_actions import act, staff_ticket_view
from models import OutboxMessage, Staff, Ticket
from tests.helpers.dialog import file_repair
from tests.helpers.dialog import tickets

INTERNAL = ("依据", "keywords:", "rule:", "because", "owner:", "not fixed", "rating ")


async def test_classification_question_names_no_rule(chat):
    zh, en = chat("zh"), chat("en", lang="en")
    await zh.send("/repair")
    out = await zh.send("厨房水龙头一直滴水")
    assert "水路" in out and not any(word in out for word in INTERNAL)
    await en.send("/repair")
    out = await en.send("water dripping from the ceiling")
    assert "Is that right?" in out and not any(word in out for word in INTERNAL)


async def staff_does(engine, number: str, action: str, note: str = "") -> None:
    async with engine.sm() as s, s.begin():
        staff = (await s.scalars(select(Staff).order_by(Staff.id))).first()
        await act(s, engine.clock, number=number, staff_id=staff.id, action=action, note=note)


async def test_timeline_and_notices_keep_staff_reasons_with_staff(chat, desk_engine):
    c = chat()
    await file_repair(c, "卫生间灯不亮了")
    [tk] = await tickets(desk_engine)
    await staff_does(desk_engine, tk.number, "claim")
    await staff_does(desk_engine, tk.number, "reject", "非我工种，转电工班")
    await staff_does(desk_engine, tk.number, "claim")
    await staff_does(desk_engine, tk.number, "resolve", "更换了灯泡")
    out = await c.send(kind="choice", choice=f"notfixed:{tk.number}")
    assert "重新受理" in out
    await c.send("/mytickets")
    out = await c.choose(f"t:{tk.number}")
    assert "重新派单" in out and "非我工种" not in out  # the reason is for staff
    assert "重新受理（您反馈问题仍未解决）" in out and not any(word in out for word in INTERNAL)
    assert "更换了灯泡" in out  # what was done is told to the owner
    async with desk_engine.sm() as s:
        told = [m.payload.get("text", "") for m in (await s.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "message", OutboxMessage.chat_id == "u1"))).all()]
        view = await staff_ticket_view(s, await s.get(Ticket, tk.id), desk_engine.clock)
    assert told and not any("非我工种" in text for text in told)
    assert any(e["note"] == "非我工种，转电工班" for e in view["events"])  # staff still see it


async def test_english_timeline_has_no_chinese_reason(chat, desk_engine):
    c = chat("en", lang="en")
    await file_repair(c, "the bathroom light is broken")
    [tk] = await tickets(desk_engine)
    await staff_does(desk_engine, tk.number, "claim")
    await staff_does(desk_engine, tk.number, "reject", "不是本小区")
    await c.send("/mytickets")
    out = await c.choose(f"t:{tk.number}")
    assert "Being reassigned" in out and "不是本小区" not in out
