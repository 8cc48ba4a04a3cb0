"""Repair flow transcripts: every step, corrections, emergency path, bad input."""
from __future__ import annotations

from sqlalchemy import select

from config.settings import Settings
from models import Attachment, TicketEvent
from tests.helpers.dialog import Chat, Photo, bind, make_desk, tickets, verify_dialog


async def test_full_repair_for_bound_owner(chat, desk_engine):
    c = chat()
    assert "绑定成功" in await bind(c)
    out = await c.send("厨房水龙头一直滴水，拧紧了也滴")
    assert "水路" in out and "一般" in out and "keywords:water" not in out  # the rule is for staff
    out = await c.choose("ok")
    assert "在哪里" in out
    unit_choice = next(cid for cid in c.choices if cid.startswith("unit:"))
    out = await c.choose(unit_choice)
    assert "照片" in out
    out = await c.send(kind="photo", photo_ref="web:photo-1.jpg")
    assert "第 1 张" in out
    await c.choose("done")
    out = await c.choose("vt:tomorrow_am")
    assert "138****0001" in "".join(r.choices[0].label for r in c.last if r.choices)
    out = await c.choose("use_known")
    assert "请确认" in out and "明天上午" in out and "3-2-1502" in out
    out = await c.choose("submit")
    assert "BX-20261125-0001" in out and "今天 14:00 前" in out  # 10:00 + four business hours
    [tk] = await tickets(desk_engine)
    assert (tk.kind, tk.category, tk.urgency, tk.status) == ("repair", "water", "normal", "new")
    assert tk.contact_phone == "13800000001" and tk.preferred_time == "明天上午" and tk.unit_id
    async with desk_engine.sm() as s:
        assert [a.ref for a in (await s.scalars(select(Attachment))).all()] == ["web:photo-1.jpg"]
        assert [e.action for e in (await s.scalars(select(TicketEvent))).all()] == ["create"]
    # Back at the menu.
    assert "repair" in c.choices


async def test_owner_corrects_category_and_urgency(chat, desk_engine):
    c = chat()
    await c.send("/repair")
    out = await c.send("阳台的灯不亮了")
    assert "电路" in out
    await c.choose("cat")
    await c.choose("cat:public_facility")
    # Not bound: the demo has two estates, so the public area asks which one.
    await c.choose("public")
    assert any(cid.startswith("estate:") for cid in c.choices)
    await c.choose_like("estate:")
    out = await c.send("2栋1单元8楼楼道")
    assert "照片" in out
    await c.choose("done")
    await c.send("周六下午")
    out = await c.send("123")
    assert "格式不对" in out
    await c.send("13912345678")
    out = await c.choose("submit")
    [tk] = await tickets(desk_engine)
    assert tk.category == "public_facility" and "owner:category" in tk.classifier_reasons
    assert tk.location_text == "2栋1单元8楼楼道" and tk.estate_id and tk.preferred_time == "周六下午"


async def test_emergency_creates_ticket_before_any_question(chat, desk_engine):
    c = chat()
    out = await c.send("楼道里好大一股煤气味，闻着头都晕")
    tks = await tickets(desk_engine)
    assert len(tks) == 1 and tks[0].urgency == "emergency" and tks[0].category == "gas"
    assert tks[0].number in out
    assert "不要开关任何电器" in out and "400-800-1234" in out
    # Remaining questions are optional: skip both.
    assert "skip" in c.choices
    await c.choose("skip")
    out = await c.choose("skip")
    assert "注意安全" in out and "repair" in c.choices


async def test_emergency_with_bound_unit_and_optional_answers(chat, desk_engine):
    c = chat("u2", lang="en")
    await bind(c, "1-1-101", "13800000002")
    out = await c.send("HELP someone stuck in the lift at tower 1, alarm does nothing")
    assert "Emergency ticket BX-" in out and "never force the doors" in out.lower()
    [tk] = await tickets(desk_engine)
    # "at tower 1": the place the owner named, in their estate, rather than their home
    assert tk.location_text == "tower 1" and tk.estate_id is not None and tk.contact_phone == "13800000002"


async def test_emergency_location_added_afterwards(chat, desk_engine):
    c = chat()
    await c.send("卫生间水管爆了，水喷得到处都是")
    out = await c.send("7栋1502")
    assert "已补充" in out
    await c.send("13700000000")
    [tk] = await tickets(desk_engine)
    assert tk.location_text == "7栋1502" and tk.contact_phone == "13700000000"


async def test_owner_picks_emergency_urgency(chat, desk_engine):
    c = chat()
    await c.send("/repair")
    await c.send("电梯门关不严，有点晃")
    await c.choose("urg")
    out = await c.choose("urg:emergency")
    [tk] = await tickets(desk_engine)
    assert tk.urgency == "emergency" and tk.number in out


async def test_photo_first_then_text(chat):
    await verify_dialog(chat(), [
        ("/repair", None),
        (Photo("tg:file-1"), "文字"),  # a photo first: the words are still wanted
        ("墙上有裂缝", "房屋"),
    ])


async def test_cancel_anywhere_and_unsupported_input_keeps_state(chat, desk_engine):
    c = chat()
    await c.send("/repair")
    await c.send("窗户合页松了")
    out = await c.send(kind="unsupported", raw_type="sticker")
    assert "无法处理" in out and "sticker" in out
    out = await c.send("x" * 10000)
    assert "太长" in out
    out = await c.choose("ok")  # still where it was
    assert "在哪里" in out
    out = await c.send("取消")
    assert "已取消" in out
    assert await tickets(desk_engine) == []


async def test_typed_digit_answers_choices(chat):
    await verify_dialog(chat(), [
        ("/start", None),
        ("1", "描述"),  # 1 = repair on the numbered menu
    ])


async def test_typed_option_words_answer_choices_without_their_emoji(chat):
    await verify_dialog(chat(), [
        ("/start", None),
        ("我的工单", "还没有工单"),  # the menu shows "📋 我的工单"; a WeChat owner types the words
        ("/start", None),
        (" 报修 ", "描述"),
    ])


async def test_abandoned_flow_expires(chat, desk_engine, clock):
    c = chat()
    await c.send("/repair")
    clock.advance(minutes=31)
    out = await c.send("hello there")
    assert "长时间没有回复" in out


async def test_deep_link_starts_repair_at_place(chat, desk_engine):
    c = chat()
    out = await c.send("/start sg-lift-3a")
    assert "3栋A梯" in out
    await c.send("按钮不亮了")
    await c.choose("ok")
    await c.choose("done")  # location came from the QR code: straight to photos
    await c.choose("vt:asap")
    await c.send("13912345678")
    await c.choose("submit")
    [tk] = await tickets(desk_engine)
    assert tk.location_text.startswith("阳光花园 3栋A梯") and tk.estate_id


async def test_unknown_deep_link_just_welcomes(chat):
    c = chat()
    out = await c.send("/start ../../etc/passwd")
    assert "欢迎" in out


async def test_the_delivery_worker_is_woken_only_after_a_step_that_queued_messages(db_url, clock):
    settings = Settings(database_url=db_url, staff_groups={"repairs": {"channel": "telegram", "chat_id": "-100"}})
    db, _, engine = await make_desk(db_url, clock, settings)
    woken: list[int] = []
    engine.on_queued = lambda: woken.append(1)
    c = Chat(engine)
    await c.send("菜单")
    await c.send("厨房水龙头一直滴水")  # classified, nothing sent anywhere yet
    await c.send("取消")
    assert woken == []
    out = await c.send("楼道里好大一股煤气味")
    assert "BX-" in out  # an emergency: the ticket's card is queued for the staff group
    assert woken == [1]
    await engine.close()
    await db.dispose()
