"""Complaint, fees, my tickets, bind and language transcripts."""
from __future__ import annotations

import re

from sqlalchemy import select

from bot.desk.ticket_service import TicketService
from models import Action, Binding, Staff, Ticket
from tests.helpers.dialog import file_repair, Press, bind, tickets, verify_dialog


async def test_complaint_flow(chat, desk_engine):
    c = chat()
    out = await c.send("/complain")
    assert "noise" not in out and "cat:noise" in c.choices
    await c.choose("cat:noise")
    out = await c.send("楼上1702每天半夜拖椅子，咚咚响")
    assert "照片" in out
    await c.send(kind="photo", photo_ref="p1")
    await c.choose("done")
    out = await c.choose("anon")  # the other party may NOT learn who complained
    await c.choose_like("estate:")
    assert "匿名投诉：是" in "\n".join(r.text for r in c.last)
    out = await c.choose("submit")
    [tk] = await tickets(desk_engine)
    assert tk.number.startswith("TS-") and tk.number in out
    assert (tk.kind, tk.category, tk.anonymous, tk.urgency) == ("complaint", "noise", True, "normal")


async def test_free_text_at_menu_starts_the_right_flow(chat, desk_engine):
    c = chat()
    out = await c.send("厨房漏水了")
    assert "水路" in out  # repair, description filled in
    await c.send("取消")
    out = await c.send("3栋门口的垃圾桶三天没人清了，都溢出来了")
    assert "照片" in out  # complaint at the photo step
    await c.send("/cancel")
    out = await c.send("物业费怎么交")
    assert "绑定" in out  # fee query needs a binding
    out = await c.send("会所可以预约吗")
    assert "400-800-1234" in out


async def test_complaint_emergency_is_created_at_once(chat, desk_engine):
    c = chat()
    out = await c.send("北门口两伙人打起来了 有人拿着棍子 保安呢")
    [tk] = await tickets(desk_engine)
    assert tk.kind == "complaint" and tk.urgency == "emergency" and tk.number in out and "110" in out


async def test_fees_need_binding_and_show_only_own_units(chat, desk_engine):
    a, b = chat("a"), chat("b")
    out = await a.send("/fees")
    assert "先绑定" in out and "bind" in a.choices
    await bind(a, "3-2-1502", "13800000001")
    await bind(b, "1-1-101", "13800000002")
    out = await a.send("/fees")
    assert "3-2-1502" in out and "1-1-101" not in out
    assert "停车费" in out and "已逾期" in out and "已缴 ¥268.50" in out and "缴费方式" in out
    out = await b.send("/fees")
    assert "1-1-101" in out and "3-2-1502" not in out


async def test_binding_with_unknown_phone_waits_for_staff(chat, desk_engine):
    c = chat()
    out = await bind(c, "3-2-1502", "13111111111")
    assert "审核" in out and "怎么称呼" in out  # staff decide, and need to know who asks
    await c.send("李雷")
    out = await c.choose("rel:tenant")
    assert "审核" in out
    out = await c.send("/fees")
    assert "先绑定" in out  # pending is not a binding
    async with desk_engine.sm() as s:
        [binding] = (await s.scalars(select(Binding))).all()
        assert binding.status == "pending"


async def test_binding_rejects_garbage_then_accepts_chinese_format(chat):
    await verify_dialog(chat(), [
        ("/bind", None),
        (Press("estate:", like=True), None),
        ("我家在那边", "没能识别"),
        ("3栋2单元1502", None),
        ("138 0000 0001", "绑定成功：3-2-1502"),
    ])


async def test_unknown_unit_is_reported(chat):
    c = chat()
    out = await bind(c, "99-9-9999", "13800000001")
    assert "没有找到" in out


async def test_my_tickets_detail_hurry_cancel(chat, desk_engine, clock):
    c = chat()
    await c.send("/repair")
    await file_repair(c, "客厅墙上出现了几条细裂缝")
    [tk] = await tickets(desk_engine)
    out = await c.send("/mytickets")
    assert tk.number in out and "待接单" in out
    out = await c.choose(f"t:{tk.number}")
    assert "进度" in out and "提交" in out
    out = await c.choose("hurry")
    assert "已催单" in out
    out = await c.choose("hurry")
    assert "分钟后再催" in out
    clock.advance(minutes=20)
    out = await c.choose("hurry")
    assert "请 11 分钟后再催" in out
    clock.advance(minutes=11)
    out = await c.choose("hurry")
    assert "已催单" in out
    await c.choose("add")
    await c.send("裂缝在沙发后面")
    await c.send(kind="photo", photo_ref="p2")
    out = await c.choose("done")
    assert "补充了信息" in out
    await c.choose("cancel")
    out = await c.choose("yes")
    assert "已撤销" in out
    async with desk_engine.sm() as s:
        row = await s.get(Ticket, tk.id)
        assert row.status == "cancelled" and row.hurry_count == 2


async def test_rate_resolved_ticket_via_notice_and_low_rating_reopens(chat, desk_engine):
    c = chat()
    await file_repair(c, "家里停电了，整个屋都没电", "3-2-1502")
    [tk] = await tickets(desk_engine)
    async with desk_engine.sm() as s, s.begin():
        svc = TicketService(s, desk_engine.clock)
        row = await s.get(Ticket, tk.id)
        staff = (await s.scalars(select(Staff))).first()
        await svc.transition(row, Action.CLAIM, f"staff:{staff.id}", assignee_id=staff.id)
        await svc.transition(row, Action.RESOLVE, f"staff:{staff.id}", "换了空开")
    out = await c.send(kind="choice", choice=f"rate:{tk.number}")
    assert "打分" in out
    await c.choose("star:2")
    out = await c.send("还是跳闸")
    assert "感谢" in out
    async with desk_engine.sm() as s:
        row = await s.get(Ticket, tk.id)
        assert row.rating == 2 and row.status == "reopened" and row.rating_comment == "还是跳闸"


async def test_owner_never_sees_another_owners_ticket(chat, desk_engine):
    a, b = chat("a"), chat("b")
    await file_repair(a, "燃气灶打不着火了，是不是没气了", "家里")
    [tk] = await tickets(desk_engine)
    out = await b.send("/mytickets")
    assert tk.number not in out
    await b.send("/mytickets")
    out = await b.send(tk.number)  # typed at the list: same answer as a missing ticket
    assert "没有" in out


async def test_language_switch_and_telegram_style_hint(chat):
    await verify_dialog(chat("en-user", lang="en"), [
        ("/start", re.compile(r"Choose a service|[Ww]elcome")),  # Telegram's language hint: English
        ("/lang", "已切换为中文"),
        ("English", "Switched to English"),
        ("/nonsense", "Unknown command"),
    ])


def test_merge_replies_folds_plain_texts_into_the_next():
    from handlers.messages import Choice, Reply, merge_replies

    a, b = Reply("已建单"), Reply("请选择", [Choice("repair", "报修")])
    photo = Reply("照片", photo_ref="tg:x")
    assert merge_replies([a, b], 4096) == [Reply("已建单\n\n请选择", [Choice("repair", "报修")])]
    assert merge_replies([b, a], 4096) == [b, a]
    assert merge_replies([a, photo, a], 4096) == [a, photo, a]
    assert merge_replies([Reply("x" * 3000), Reply("y" * 2000)], 4096) == [Reply("x" * 3000), Reply("y" * 2000)]
