"""WeChat official account end to end: propdesk's /wechat route against a fake WeChat that signs, encrypts, retries
and serves the API, with wechatpy on propdesk's side and aiohttp over real HTTP."""
from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.channels.wechat.channel import WeChatChannel, split_bytes
from bot.desk.staff_actions import act
from models import Identity, InboundReceipt, Ticket, TicketEvent
from tests.fakes import wechat as wx
from tests.helpers.cli import run_cli
from tests.waiting import wait_for

OWNER = "o-owner-0001"
NUMBER = re.compile(r"(?:BX|TS)-\d{8}-\d{4}")


class Harness:
    def __init__(self, fake: wx.FakeWeChat, app: App, url: str):
        self.fake, self.app, self.url = fake, app, url
        self.mode = "safe"  # with an AES key, WeChat's safe (or compatible) mode is the only one taken

    async def send(self, xml: str, mode: str | None = None) -> str:
        """Push a message as WeChat would; the passive reply's text ("" for `success`)."""
        delivery = await self.fake.push(self.url, xml, mode or self.mode)
        assert delivery.attempts[-1][0] == 200, delivery.attempts
        return delivery.content

    async def say(self, text: str, openid: str = OWNER, mode: str | None = None) -> str:
        return await self.send(self.fake.text(openid, text), mode)

    async def pick(self, reply: str, label: str, openid: str = OWNER) -> str:
        """Answer a numbered list with the digit of the option whose label contains `label`."""
        digit = next(m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", reply, re.M) if label in m.group(2))
        return await self.say(digit, openid)

    async def tickets(self) -> list[Ticket]:
        async with self.app.sessionmaker() as s:
            return (await s.scalars(select(Ticket).order_by(Ticket.id))).all()


@pytest.fixture
async def wechat(propdesk, fakes):
    """Harnesses over one database (SQLite and PostgreSQL): several make a second worker."""

    async def make(**overrides) -> Harness:
        fake = await fakes.start(wx.FakeWeChat(timeout=overrides.pop("fake_timeout", 3.0)))
        run = await propdesk([WeChatChannel], **{
            "wechat_token": wx.TOKEN, "wechat_app_id": wx.APP_ID, "wechat_app_secret": wx.APP_SECRET,
            "wechat_aes_key": wx.AES_KEY, "wechat_api_base_url": fake.url, "wechat_mp_base_url": fake.url,
            "wechat_reply_within_seconds": 1.0, **overrides})
        h = Harness(fake, run.app, run.base + "/wechat")
        h.channel = run.channel(WeChatChannel)
        return h

    return make


async def test_url_verification_echoes_only_with_a_valid_signature(wechat):
    h = await wechat()
    ts, nonce = "1700000000", "abc"
    async with aiohttp.ClientSession() as http:
        good = {"signature": wx.signature(wx.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "e-42"}
        async with http.get(h.url, params=good) as resp:
            assert resp.status == 200 and await resp.text() == "e-42"
        async with http.get(h.url, params={**good, "signature": "0" * 40}) as resp:
            assert resp.status == 403


@pytest.mark.parametrize("mode", ["plain", "safe", "compat"])
async def test_repair_by_numbered_choices(wechat, mode):
    h = await wechat(**({"wechat_aes_key": None} if mode == "plain" else {}))
    h.mode = mode
    out = await h.say("厨房水龙头一直滴水，拧紧了也滴", mode=mode)
    assert "水路" in out and re.search(r"^1\. 正确$", out, re.M)
    out = await h.pick(out, "正确")
    out = await h.pick(out, "公共区域")
    out = await h.pick(out, "阳光花园")
    out = await h.say("3栋2单元5楼楼道")
    assert "照片" in out
    out = await h.send(h.fake.image(OWNER, "media-123"), mode)
    assert "第 1 张" in out
    out = await h.pick(out, "完成")
    out = await h.say("明天上午")
    out = await h.say("13912345678")
    assert "请确认" in out
    out = await h.pick(out, "提交")
    number = NUMBER.search(out).group(0)
    [tk] = await h.tickets()
    assert tk.number == number and tk.channel == "wechat" and tk.location_text == "3栋2单元5楼楼道"
    async with h.app.sessionmaker() as s:
        from models import Attachment

        assert (await s.scalars(select(Attachment.ref))).all() == ["wx:media-123"]


async def test_emergency_in_safe_mode_creates_the_ticket_first(wechat):
    h = await wechat()
    out = await h.say("楼道里好大一股煤气味", mode="safe")
    assert NUMBER.search(out) and "不要开关任何电器" in out and "400-800-1234" in out
    [tk] = await h.tickets()
    assert tk.urgency == "emergency"


async def test_forged_or_broken_requests_are_refused_and_change_nothing(wechat):
    h = await wechat()
    plain_h = await wechat(wechat_aes_key=None)  # an account in plain mode
    xml = h.fake.text(OWNER, "楼道里好大一股煤气味")
    async with aiohttp.ClientSession() as http:
        query, body = h.fake.signed_request(xml, "plain", token="not-the-token")
        async with http.post(h.url, params=query, data=body) as resp:
            assert resp.status == 403
        # Safe mode with a tampered ciphertext: msg_signature no longer matches.
        query, body = h.fake.signed_request(xml, "safe")
        async with http.post(h.url, params=query, data=body.replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AA")) \
                as resp:
            assert resp.status == 403
        # With an AES key, a plain body is refused even when signed: its signature does not cover it.
        query, body = h.fake.signed_request(xml, "plain")
        async with http.post(h.url, params=query, data=body) as resp:
            assert resp.status == 403
        query, _ = plain_h.fake.signed_request(xml, "plain")
        async with http.post(plain_h.url, params=query, data=b"<xml><oops") as resp:
            assert resp.status == 400
        async with http.post(plain_h.url, params=query, data=b"<xml><MsgType>text</MsgType></xml>") as resp:
            assert resp.status == 400
        async with http.post(plain_h.url, params=query, data=b"x" * (70 * 1024)) as resp:
            assert resp.status == 413
        query, _ = h.fake.signed_request(xml, "safe")  # safe mode, but a broken envelope or none at all
        for body in (b"<xml><Encrypt><![CDATA[abc", b"<xml><ToUserName>gh</ToUserName></xml>", b"not xml"):
            async with http.post(h.url, params=query, data=body) as resp:
                assert resp.status == 400, body
    assert await h.tickets() == []


async def test_other_message_types_get_a_clear_answer(wechat):
    h = await wechat()
    assert "voice" in await h.send(h.fake.voice(OWNER))
    out = await h.send(h.fake.voice(OWNER, recognition="电梯困人了，快来"))
    assert NUMBER.search(out)
    video = h.fake._xml(OWNER, "video", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId>")  # noqa: SLF001
    assert "video" in await h.send(video)
    assert "太长" in await h.say("漏" * 5000)


async def test_a_retried_message_never_makes_a_second_ticket(wechat):
    h = await wechat()
    xml = h.fake.text(OWNER, "电梯困人了，快来", msg_id=4242)
    first = await h.send(xml)
    again = await h.send(xml)
    assert NUMBER.search(first) and again == first
    assert len(await h.tickets()) == 1


async def test_two_workers_receiving_the_same_message_make_one_ticket(wechat):
    first, second = await wechat(), await wechat()
    xml = first.fake.text(OWNER, "电梯困人了，快来", msg_id=777)
    a, b = await asyncio.gather(first.send(xml), second.send(xml))
    assert len(await first.tickets()) == 1
    winner = a if NUMBER.search(a) else b
    # The one that lost the race answered with the winner's reply (or `success`, had it not been ready).
    assert NUMBER.search(winner) and {a, b} - {winner} <= {""}


async def test_slow_answer_goes_through_the_customer_service_api(wechat):
    h = await wechat(wechat_reply_within_seconds=0.2)
    real = h.app.engine.handle
    answered = asyncio.Event()

    async def slow(sender, msg, hooks=None):  # noqa: ANN001
        await wait_for(answered.wait(), what="WeChat's request to be answered")  # the flow outlasts the request
        return await real(sender, msg, hooks)

    h.app.engine.handle = slow
    delivery = await h.fake.push(h.url, h.fake.text(OWNER, "电梯困人了，快来"), "safe")
    answered.set()
    assert delivery.attempts == [(200, "success")]  # answered in time, so WeChat does not retry
    sent = await h.fake.wait_for(lambda f: f.sent(OWNER), what="the reply through the customer-service API")
    assert NUMBER.search(sent[0]) and len(await h.tickets()) == 1
    assert h.fake.tokens_issued == 1

    async def receipt() -> str:
        async with h.app.sessionmaker() as s:
            return await s.scalar(select(InboundReceipt.status))

    async def queued() -> bool:
        return await receipt() == "queued"

    # The receipt is marked once the reply is queued; the worker may have sent it a moment before that commits.
    await wait_for(queued, what="the receipt marked queued", show=receipt)


async def test_retry_while_the_first_is_still_running_gets_the_original_answer(wechat):
    # WeChat gives up on the first request before propdesk is done, and retries: the retry waits for the
    # original and answers with its reply; the flow ran once.
    h = await wechat(wechat_reply_within_seconds=2.0, fake_timeout=0.5)
    real = h.app.engine.handle
    runs = []
    calls = []
    retried = asyncio.Event()

    async def slow(sender, msg, hooks=None):  # noqa: ANN001
        calls.append(msg)
        if len(calls) == 1:  # only the first delivery is slow: it goes on once WeChat has retried
            await wait_for(retried.wait(), what="WeChat to retry the message")
        else:
            retried.set()
        result = await real(sender, msg, hooks)
        runs.append(result is not None)
        return result

    h.app.engine.handle = slow
    delivery = await h.fake.push(h.url, h.fake.text(OWNER, "电梯困人了，快来"), "safe")
    assert delivery.attempts[0] == (0, "timeout") and delivery.attempts[-1][0] == 200
    assert NUMBER.search(delivery.content)
    assert runs.count(True) == 1 and len(await h.tickets()) == 1


async def test_quota_then_template_and_45015(wechat):
    h = await wechat(wechat_templates={"status": "TPL-status"})
    out = await h.say("电梯困人了，快来")
    number = NUMBER.search(out).group(0)
    # Six staff comments: five fit the owner's 48-hour window, the sixth (a status update) goes as a template.
    for i in range(6):
        async with h.app.sessionmaker() as s, s.begin():
            await act(s, h.app.clock, number=number, staff_id=1, action="comment", note=f"进展 {i}")
        h.app.wake_delivery()
    await h.fake.wait_for(lambda f: len(f.sent(OWNER)) == 5 and f.templates(OWNER),
                          what="five customer-service messages and a template", show=lambda: h.fake.calls)
    assert len(h.fake.sent(OWNER)) == 5 and "进展 4" in h.fake.sent(OWNER)[-1]
    [template] = h.fake.templates(OWNER)
    assert template["template_id"] == "TPL-status" and "进展 5" in template["data"]["content"]["value"]

    # The owner writes again (a new window), but WeChat refuses with 45015: the template takes over.
    await h.say("好的")
    h.fake.fail("message/custom/send", 45015)
    async with h.app.sessionmaker() as s, s.begin():
        await act(s, h.app.clock, number=number, staff_id=1, action="claim")
    h.app.wake_delivery()
    await h.fake.wait_for(lambda f: len(f.templates(OWNER)) == 2, what="a second template after 45015")
    assert "接单" in h.fake.templates(OWNER)[-1]["data"]["content"]["value"]


async def test_refusal_without_a_template_is_recorded_on_the_ticket(wechat):
    h = await wechat()
    number = NUMBER.search(await h.say("电梯困人了，快来")).group(0)
    h.fake.fail("message/custom/send", 45015)
    async with h.app.sessionmaker() as s, s.begin():
        await act(s, h.app.clock, number=number, staff_id=1, action="claim")
    h.app.wake_delivery()

    async def undelivered() -> list[TicketEvent]:
        async with h.app.sessionmaker() as s:
            return (await s.scalars(select(TicketEvent).where(TicketEvent.action == "undelivered"))).all()

    events = await wait_for(undelivered, what="the refusal recorded on the ticket")
    assert "45015" in events[0].note


async def test_events_follow_scan_click_unfollow(wechat):
    h = await wechat()
    out = await h.send(h.fake.event(OWNER, "subscribe"))
    assert "欢迎" in out and re.search(r"^1\. .*报修", out, re.M)
    out = await h.send(h.fake.event(OWNER, "SCAN", "sg-lift-3a"))
    assert "电梯轿厢" in out
    out = await h.send(h.fake.event("o-new-2", "subscribe", "qrscene_sg-garage-b1"))
    assert "地下车库" in out
    out = await h.send(h.fake.event(OWNER, "CLICK", "complaint"))
    assert "投诉" in out
    assert await h.send(h.fake.event(OWNER, "VIEW", "https://example.com")) == ""
    assert await h.send(h.fake.event(OWNER, "unsubscribe")) == ""
    async with h.app.sessionmaker() as s:
        ident = await s.scalar(select(Identity).where(Identity.external_id == OWNER))
        assert ident.active is False
    # Following again (events are told apart by sender and time) re-activates the account; nothing was deleted.
    await h.send(h.fake.event(OWNER, "subscribe", at=int(time.time()) + 5))
    async with h.app.sessionmaker() as s:
        assert (await s.scalar(select(Identity).where(Identity.external_id == OWNER))).active is True
        assert await s.scalar(select(func.count()).select_from(Identity)) == 2


async def test_access_token_is_shared_and_replaced_when_refused(wechat):
    h = await wechat()
    api = h.channel.api
    await api.send_text(OWNER, "a")
    await api.send_text(OWNER, "b")
    assert h.fake.tokens_issued == 1
    # A second worker (another WeChatAPI over the same database) reuses the stored token.
    from bot.channels.wechat.api import WeChatAPI

    other = WeChatAPI(h.app)
    await other.start()
    await other.send_text(OWNER, "c")
    assert h.fake.tokens_issued == 1
    h.fake.valid_token = "rotated-elsewhere"  # WeChat no longer accepts ours
    await other.send_text(OWNER, "d")
    await other.close()
    assert h.fake.tokens_issued == 2 and h.fake.sent(OWNER) == ["a", "b", "c", "d"]


def test_split_bytes_respects_the_byte_limit():
    text = "\n".join("第{}行：".format(i) + "漏水" * 100 for i in range(20))
    pieces = split_bytes(text)
    assert all(len(p.encode()) <= 2040 for p in pieces) and "".join(pieces).replace("\n", "") == \
        text.replace("\n", "")
    assert split_bytes("短") == ["短"]


async def test_wechat_cli_menu_and_qrcodes(wechat, tmp_path):
    h = await wechat()
    env = {"PROPDESK_DATABASE_URL": h.app.settings.database_url, "PROPDESK_WECHAT_APP_ID": wx.APP_ID,
           "PROPDESK_WECHAT_APP_SECRET": wx.APP_SECRET, "PROPDESK_WECHAT_API_BASE_URL": h.fake.url,
           "PROPDESK_WECHAT_MP_BASE_URL": h.fake.url}
    r = await asyncio.to_thread(run_cli, "wechat", "menu", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    [(path, menu)] = [c for c in h.fake.calls if c[0] == "menu/create"]
    assert [b["name"] for b in menu["button"]][0] == "🔧 报修"
    r = await asyncio.to_thread(run_cli, "wechat", "qrcode", "sg-lift-3a", "--out", str(tmp_path / "qr"),
                                cwd=tmp_path, env=env)
    assert r.returncode == 0 and "http://weixin.qq.com/q/sg-lift-3a" in r.stdout
    assert (tmp_path / "qr" / "sg-lift-3a.png").read_bytes().startswith(b"\x89PNG")
    h.fake.fail("menu/create", 48001)
    r = await asyncio.to_thread(run_cli, "wechat", "menu", cwd=tmp_path, env=env)
    assert r.returncode == 1 and "48001" in r.stderr
