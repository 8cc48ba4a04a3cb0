"""An owner's words never become live markup on a staff card: WeCom markdown and Telegram messages."""
from __future__ import annotations

import re

from bot.channels.wecom.robots import card_markdown, plain
from bot.desk.group_cards import GroupCard
from bot.desk.ticket_service import TicketService
from tests.fakes import telegram_api as tg
from tests.test_telegram import GROUP, harness, harnesses  # noqa: F401 - fixtures
from tests.test_wecom import wecom  # noqa: F401 - fixture

EVIL = ('水管漏了 [👉 处理工单](http://evil.example/steal) <font color="warning">紧急</font> **加急** `x`\n'
        '# 标题\n> 引用 ![img](http://evil.example/p.png) <a href="http://evil.example">link</a>')
LIVE_LINK = re.compile(r"\[[^\]]*\]\(([^)]*)\)")


def test_owner_text_is_inert_in_wecom_markdown():
    card = GroupCard(number="BX-20261125-0001", text=f"🔴 紧急 报修 BX-20261125-0001\n描述：{EVIL}")
    md = card_markdown(card, "https://desk.example.com/staff/t/BX-20261125-0001?k=t")
    # The only live link is propdesk's own; no tag, heading, bold or code the owner wrote survives.
    assert LIVE_LINK.findall(md) == ["https://desk.example.com/staff/t/BX-20261125-0001?k=t"]
    body = md.split("\n", 1)[1].rsplit("\n", 1)[0]
    assert "<" not in body and "**" not in body and "`" not in body and "\n#" not in md
    assert all(line.startswith("> ") for line in body.split("\n"))
    assert "处理工单" in body and "evil.example" in body  # still readable, as text
    assert plain("a[b](c)<d>") == "a［b］（c）＜d＞"


async def test_owner_markup_reaches_the_robot_as_text(wecom):  # noqa: F811
    h = await wecom()
    number = await h.new_ticket(EVIL, urgency="emergency")
    [card] = await h.cards(1)
    assert number in card
    links = LIVE_LINK.findall(card)
    assert len(links) == 1 and links[0].startswith("https://desk.example.com/staff/t/")
    assert "<font" not in card and "evil.example" in card


async def test_owner_markup_reaches_telegram_as_plain_text(harness):  # noqa: F811
    async with harness.app.sessionmaker() as s, s.begin():
        tk = await TicketService(s, harness.app.clock, harness.app.engine.dispatch).create(
            kind="repair", category="water", urgency="emergency", description=EVIL, channel="web",
            reporter_id=None, actor="test")
        number = tk.number
    sent = await harness.fake.wait_for(lambda f: [p for p in f.of("sendMessage", GROUP) if number in p["text"]])
    for params in sent:
        # No parse mode and no entities: Telegram shows the text exactly as written.
        assert "parse_mode" not in params and "entities" not in params
        assert "[👉 处理工单](http://evil.example/steal)" in params["text"]
    assert tg is not None
