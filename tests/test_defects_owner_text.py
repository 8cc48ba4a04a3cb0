"""Owners' own words are stored as they wrote them: full-width punctuation stays; matching is another matter."""
from __future__ import annotations

from sqlalchemy import select

from models import TicketEvent
from tests.helpers.dialog import tickets


async def test_description_keeps_full_width_punctuation(chat, desk_engine):
    c = chat()
    await c.send("/repair")
    await c.send("厨房水龙头一直滴水，拧不紧！！！")
    await c.choose("ok")
    await c.send("客厅（靠窗）")
    await c.choose_like("estate:")
    await c.send("还有一张照片，稍后补充。")  # words at the photo step join the description
    await c.choose("vt:asap")
    await c.send("１３９１２３４５６７８")  # full-width digits are still a phone number
    await c.choose("submit")
    [tk] = await tickets(desk_engine)
    assert tk.description == "厨房水龙头一直滴水，拧不紧！！！\n还有一张照片，稍后补充。"
    assert tk.location_text == "客厅（靠窗）"
    assert tk.contact_phone == "13912345678"


async def test_added_information_and_complaint_keep_the_owners_text(chat, desk_engine):
    c = chat()
    await c.send("/complain")
    await c.send("装修噪音！")
    await c.send("周六早上７点就开始电钻，吵死了！！！")
    await c.choose("done")
    await c.choose("anon")
    await c.choose_like("estate:")
    await c.choose("submit")
    [tk] = await tickets(desk_engine)
    assert tk.subject == "装修噪音！" and tk.description == "周六早上７点就开始电钻，吵死了！！！"
    await c.send(tk.number.replace("-", "－"))  # a full-width dash still finds the ticket
    await c.choose("add")
    await c.send("今天又开始了，９点！")
    async with desk_engine.sm() as s:
        notes = (await s.scalars(select(TicketEvent.note).where(TicketEvent.action == "info"))).all()
    assert notes == ["今天又开始了，９点！"]
