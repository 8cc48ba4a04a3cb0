"""An emergency is filed where the words say; else the owner is asked; else at their home, marked as such."""
from __future__ import annotations


from bot.desk.group_cards import build_group_card
from models import Estate, Ticket
from tests.helpers.dialog import bind, tickets


async def card_of(engine, tk: Ticket):
    async with engine.sm() as s:
        return await build_group_card(s, await s.get(Ticket, tk.id), engine.clock)


async def test_place_named_in_the_text_wins_over_the_home(chat, desk_engine):
    c = chat()
    await bind(c, "3-2-1502", "13800000001")
    out = await c.send("1号楼电梯困人了")
    [tk] = await tickets(desk_engine)
    assert tk.location_text == "1号楼电梯" and tk.unit_id is None
    async with desk_engine.sm() as s:
        assert (await s.get(Estate, tk.estate_id)).code == "SG"  # the owner's estate
    assert "位置：1号楼电梯" in (await card_of(desk_engine, tk)).text
    assert "3-2-1502" not in (await card_of(desk_engine, tk)).text
    assert "注意安全" in out  # nothing more to ask: the phone is known


async def test_no_place_named_asks_and_marks_the_home_until_answered(chat, desk_engine):
    c = chat()
    await bind(c, "3-2-1502", "13800000001")
    out = await c.send("楼道里好大一股煤气味")
    [tk] = await tickets(desk_engine)
    assert tk.unit_id is not None and "报修人住址" in tk.location_text
    assert "3-2-1502" in out and c.choices == ["home", "skip"]
    card = (await card_of(desk_engine, tk)).text
    assert "3-2-1502" in card and "报修人住址" in card
    await c.send("2栋1单元5楼楼道")  # somewhere else: that place, and no longer the home
    [tk] = await tickets(desk_engine)
    assert tk.unit_id is None and tk.location_text == "2栋1单元5楼楼道" and tk.estate_id


async def test_owner_confirms_home_or_skips(chat, desk_engine):
    a, b = chat("a"), chat("b")
    await bind(a, "3-2-1502", "13800000001")
    await bind(b, "1-1-101", "13800000002")
    await a.send("家里燃气味很重")
    await a.choose("home")
    await b.send("家里燃气味很重")
    await b.choose("skip")
    home, skipped = await tickets(desk_engine)
    assert home.unit_id and home.location_text == ""  # confirmed: no mark
    assert skipped.unit_id and "报修人住址" in skipped.location_text


async def test_english_place(chat, desk_engine):
    c = chat("en", lang="en")
    await bind(c, "1-1-101", "13800000002")
    await c.send("HELP someone stuck in the lift at tower 1, alarm does nothing")
    [tk] = await tickets(desk_engine)
    assert tk.location_text == "tower 1" and tk.unit_id is None and tk.estate_id
