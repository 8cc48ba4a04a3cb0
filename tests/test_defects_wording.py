"""The texts read as a native customer-service agent writes them, in Chinese and in English."""
from __future__ import annotations

import re

from sqlalchemy import select

from config.i18n import catalog, t
from models import OutboxMessage, Staff
from tests.helpers.dialog import file_repair
from tests.helpers.dialog import tickets

ZH = catalog("zh")


def _filled(lang: str, key: str) -> str:
    """The text with every placeholder filled as the flows fill it (numbers as numbers, words as words)."""
    sample = {"n": 5, "limit": 2000, "minutes": 11, "number": "BX-20261125-0001", "time": "12:30", "month": 11,
              "day": 26, "mon": "Nov", "when": "明天 12:30" if lang == "zh" else "12:30 tomorrow",
              "promise": "5 分钟内" if lang == "zh" else "within 5 minutes", "due": "11月26日 12:30", "what": "上门"}
    return re.sub(r"\{(\w+)\}", lambda m: str(sample.get(m.group(1), "X")), catalog(lang)[key])


def test_no_stray_space_inside_chinese_phrases():
    """Spaces only around digits and Latin words ("第 5 张"), never between Chinese characters or before Chinese
    punctuation ("4 小时 内", "5 分钟 内")."""
    stray = {key: _filled("zh", key) for key in ZH
             if re.search(r"[\u4e00-\u9fff] +[\u4e00-\u9fff，。、；：！？）]", _filled("zh", key))
             or re.search(r"\d+ [\u4e00-\u9fff]+ [内前后]", _filled("zh", key))}
    assert stray == {}


def test_wording_the_review_found():
    zh = "\n".join(ZH.values())
    for bad in ("打电话于室内", "开关任何电器或开关", "是否同意让被投诉方知道", "我们承诺在", "依据：", "因为："):
        assert bad not in zh
    assert "不要在室内使用明火或拨打电话" in t("zh", "safety.gas")
    assert "because" not in t("en", "repair.classified")


async def test_anonymity_is_asked_without_a_double_negative(chat, desk_engine):
    c = chat()
    await c.send("/complain")
    await c.choose("cat:noise")
    await c.send("楼上每天半夜拖椅子")
    out = await c.choose("done")
    assert "匿名投诉吗" in out and c.choices == ["anon", "named"]
    await c.choose("anon")
    await c.choose_like("estate:")
    assert "匿名投诉：是" in "\n".join(r.text for r in c.last)
    await c.choose("submit")
    [tk] = await tickets(desk_engine)
    assert tk.anonymous


async def test_resolution_is_labelled_and_never_an_empty_label(chat, desk_engine):
    from bot.desk.staff_actions import act

    c = chat()
    await file_repair(c, "卫生间灯不亮了")
    await file_repair(c, "客厅插座没电")
    first, second = await tickets(desk_engine)
    async with desk_engine.sm() as s, s.begin():
        staff = (await s.scalars(select(Staff))).first()
        for tk, note in ((first, "更换了灯泡"), (second, "")):
            for action in ("claim", "resolve"):
                await act(s, desk_engine.clock, number=tk.number, staff_id=staff.id, action=action,
                          note=note if action == "resolve" else "")
    async with desk_engine.sm() as s:
        told = [m.payload["text"] for m in (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == "u1", OutboxMessage.kind == "message").order_by(OutboxMessage.id))).all()]
    resolved = [text for text in told if "已处理完成" in text]
    assert "处理结果：更换了灯泡" in resolved[0]
    assert "处理结果" not in resolved[1] and "请确认问题是否已解决" in resolved[1]
