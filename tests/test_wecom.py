"""WeCom robots as staff groups, and the signed mobile staff page behind their cards, over real HTTP."""
from __future__ import annotations

import re
import time
from urllib.parse import urlparse

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.wecom.robots import WeComChannel, card_link
from bot.desk.signing import check_password, hash_password, sign, verify
from bot.desk.ticket_service import TicketService
from models import Attachment, Staff, Ticket
from tests.fakes.wecom import FakeWeCom

ROBOT = "robot-repairs"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Harness:
    def __init__(self, app: App, fake: FakeWeCom, base: str):
        self.app, self.fake, self.base = app, fake, base

    async def new_ticket(self, description: str = "楼道灯不亮了", urgency: str = "normal") -> str:
        async with self.app.sessionmaker() as s, s.begin():
            tk = await TicketService(s, self.app.clock, self.app.engine.dispatch).create(
                kind="repair", category="public_facility", urgency=urgency, description=description, channel="web",
                reporter_id=None, actor="test", contact_phone="13912345678")
            return tk.number

    async def ticket(self, number: str) -> Ticket:
        async with self.app.sessionmaker() as s:
            return await s.scalar(select(Ticket).where(Ticket.number == number))

    def texts(self) -> list[str]:
        return [m["markdown"]["content"] for m in self.fake.messages.get(ROBOT, []) if m["msgtype"] == "markdown"]

    async def cards(self, n: int, timeout: float = 10) -> list[str]:
        await self.fake.wait_for(lambda f: len(self.texts()) >= n, timeout=timeout, what=f"{n} cards at the robot")
        return self.texts()


@pytest.fixture
async def wecom(propdesk, fakes):
    async def make(limit: int = 20, period: float = 60.0) -> Harness:
        fake = await fakes.start(FakeWeCom(limit, period))

        async def password(s) -> None:  # noqa: ANN001
            (await s.get(Staff, 1)).password_hash = hash_password("correct horse")

        run = await propdesk([WeComChannel], prepare=password, wecom_api_base_url=fake.url, secret_key="test-secret",
                             staff_groups={"repairs": {"channel": "wecom", "chat_id": ROBOT}},
                             wecom_robot_limit=limit, wecom_robot_period_seconds=period,
                             public_base_url="https://desk.example.com")
        return Harness(run.app, fake, run.base)

    return make


def test_signed_tokens_and_password_hashes():
    token = sign("k", "link", "BX-20261125-0001", 60, now=1000)
    assert verify("k", "link", token, now=1059) == "BX-20261125-0001"
    assert verify("k", "link", token, now=1061) is None  # expired
    assert verify("other", "link", token, now=1000) is None  # another secret
    assert verify("k", "session", token, now=1000) is None  # another purpose
    forged = token.replace("BX-20261125-0001", "BX-20261125-0002")
    assert verify("k", "link", forged, now=1000) is None and verify("k", "link", "garbage") is None
    stored = hash_password("correct horse")
    assert check_password("correct horse", stored) and not check_password("wrong", stored)
    assert not check_password("x", None) and not check_password("x", "md5$x$y")


async def test_card_reaches_the_robot_with_a_working_link(wecom):
    h = await wecom()
    number = await h.new_ticket("楼道灯不亮了")
    [card] = await h.cards(1)
    assert card.startswith("**") and number in card and "楼道灯不亮了" in card and len(card.encode()) <= 4096
    link = re.search(r"\((https://desk\.example\.com/staff/t/[^)]+)\)", card).group(1)
    path = urlparse(link)._replace(scheme="", netloc="").geturl()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # Without a login: a login form, and nothing can be done.
        async with http.get(h.base + path) as resp:
            assert resp.status == 200 and "员工登录" in await resp.text()
        async with http.post(h.base + path.replace("?", "/act?"), data={"action": "claim"}) as resp:
            assert resp.status == 401
        assert (await h.ticket(number)).status == "new"
        # A wrong password, then the right one.
        next_url = path
        async with http.post(h.base + "/staff/login", data={"phone": "13900000001", "password": "nope",
                                                            "next": next_url}) as resp:
            assert resp.status == 401
        async with http.post(h.base + "/staff/login", data={"phone": "13900000001", "password": "correct horse",
                                                            "next": next_url}) as resp:
            assert resp.status == 200 and number in await resp.text()
        act = h.base + path.replace("?", "/act?")
        async with http.post(act, data={"action": "claim"}) as resp:
            page = await resp.text()
            # It says what was done (not a "done" that reads as "completed"), and staff can call the owner.
            assert f"已接单：{number}" in page and "已完成" not in page
            assert "href='tel:" in page and "回复此消息" not in page
        assert (await h.ticket(number)).status == "assigned"
        async with http.post(act, data={"action": "start"}) as resp:
            assert resp.status == 200
        form = aiohttp.FormData()
        form.add_field("action", "resolve")
        form.add_field("photo", PNG, filename="done.png", content_type="image/png")
        async with http.post(act, data=form) as resp:
            assert resp.status == 200
        tk = await h.ticket(number)
        assert tk.status == "resolved"
        async with h.app.sessionmaker() as s:
            assert [a.ref for a in (await s.scalars(select(Attachment))).all()][0].startswith("web:")
        async with http.post(act, data={"action": "reject"}) as resp:  # not allowed now, and needs a reason
            assert "未完成" in await resp.text()


async def test_forged_or_expired_links_are_refused(wecom):
    h = await wecom()
    number = await h.new_ticket()
    link = urlparse(card_link(h.app, number))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{h.base}{link.path}?k=BX-20261125-0001.9999999999.AAAA") as resp:
            assert resp.status == 403
        old = sign("test-secret", "ticket-link", number, -10)
        async with http.get(f"{h.base}{link.path}", params={"k": old}) as resp:
            assert resp.status == 403
        other = await h.new_ticket("另一个")
        async with http.get(f"{h.base}/staff/t/{other}?{link.query}") as resp:  # a link for another ticket
            assert resp.status == 403


async def test_a_burst_is_merged_into_digests_within_the_robot_limit(wecom):
    h = await wecom(limit=3, period=3.0)
    numbers = [await h.new_ticket(f"灯不亮 {i}") for i in range(20)]
    began = time.monotonic()
    await h.fake.wait_for(lambda f: all(n in "\n".join(h.texts()) for n in numbers), timeout=15,
                          what="every ticket at the robot")
    elapsed = time.monotonic() - began
    messages = h.fake.messages[ROBOT]
    # Twenty tickets, a robot that takes three messages per 3 s: one card each would take seven windows (~18 s);
    # merged into digests, the backlog is out within two.
    assert len(messages) <= 6 and elapsed < 6.0
    assert any("张新工单" in m["markdown"]["content"] for m in messages)
    assert h.fake.refused == 0
    digest = next(m["markdown"]["content"] for m in messages if "张新工单" in m["markdown"]["content"])
    assert digest.count("/staff/t/") == digest.count("[处理 Open]") >= 2
