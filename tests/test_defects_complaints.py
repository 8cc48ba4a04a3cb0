"""Complaints: the subject reaches staff and labels the ticket; anonymity hides the owner from the other party only."""
from __future__ import annotations

from sqlalchemy import select

from bot.desk.group_cards import build_group_card
from bot.desk.staff_actions import staff_ticket_view
from models import Ticket
from tests.helpers.dialog import bind, tickets


async def complain(c, subject: str, details: str, anonymity: str = "anon") -> None:
    await c.send("/complain")
    await c.send(subject)
    await c.send(details)
    await c.choose("done")
    await c.choose(anonymity)
    if any(cid.startswith("estate:") for cid in c.choices):
        await c.choose_like("estate:")
    await c.choose("submit")


async def staff_sees(engine, number: str) -> tuple:
    async with engine.sm() as s:
        tk = await s.scalar(select(Ticket).where(Ticket.number == number))
        return await build_group_card(s, tk, engine.clock), await staff_ticket_view(s, tk, engine.clock)


async def test_typed_subject_is_classified_and_shown_to_staff(chat, desk_engine):
    c = chat()
    await complain(c, "楼上噪音扰民", "每天半夜都这样，已经一个月了", "named")
    [tk] = await tickets(desk_engine)
    assert tk.category == "noise" and tk.subject == "楼上噪音扰民"
    assert tk.description == "每天半夜都这样，已经一个月了"
    card, view = await staff_sees(desk_engine, tk.number)
    assert "主题：楼上噪音扰民" in card.text and "类别：噪音" in card.text
    assert "楼上噪音扰民" in card.description  # a digest line names the subject too
    assert "楼上噪音扰民" in view["description"] and view["subject"] == "楼上噪音扰民"


async def test_anonymous_complaint_still_shows_staff_who_and_where(chat, desk_engine):
    c = chat()
    await bind(c, "3-2-1502", "13800000001")
    await complain(c, "邻居装修", "周末早上七点就开始电钻", "anon")
    [tk] = await tickets(desk_engine)
    assert tk.anonymous and tk.unit_id is not None and tk.contact_phone == "13800000001"
    card, view = await staff_sees(desk_engine, tk.number)
    assert "3-2-1502" in card.text and "138****0001" in card.text and "联系人：u1" in card.text
    assert "匿名投诉" in card.text and "请勿向被投诉方透露" in card.text
    assert view["contact"] == "u1" and view["phone"] == "13800000001" and "3-2-1502" in view["location"]
    assert view["anonymous"] is True
