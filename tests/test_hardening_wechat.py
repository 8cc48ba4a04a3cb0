"""WeChat callbacks cannot be replayed: stale timestamps, reused nonces (across workers), plain bodies with a key."""
from __future__ import annotations

import time

import aiohttp
from sqlalchemy import func, select

from models.ticket import RequestNonce
from tests.fakes import wechat as wx
from tests.test_wechat import OWNER, wechat  # noqa: F401 - fixture


async def post(url: str, query: dict, body: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(url, params=query, data=body.encode()) as resp:
        return resp.status, await resp.text()


def signed_at(fake: wx.FakeWeChat, xml: str, ts: int, nonce: str, mode: str = "safe") -> tuple[dict, str]:
    """A request signed with a chosen timestamp and nonce (as captured from the wire)."""
    if mode == "plain":
        return {"signature": wx.signature(wx.TOKEN, str(ts), nonce), "timestamp": str(ts), "nonce": nonce}, xml
    import xmltodict

    envelope = xmltodict.parse(fake.crypto.encrypt_message(xml, nonce, str(ts)))["xml"]
    query = {"signature": wx.signature(wx.TOKEN, str(ts), nonce), "timestamp": str(ts), "nonce": nonce,
             "encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
    return query, f"<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"


async def test_a_year_old_signature_set_is_refused(wechat):  # noqa: F811
    h = await wechat()
    for mode, harness in (("safe", h), ("plain", await wechat(wechat_aes_key=None))):
        old = int(time.time()) - 365 * 86400
        query, body = signed_at(harness.fake, harness.fake.text("o-attacker", "电梯困人了，快来"), old, "n1", mode)
        assert (await post(harness.url, query, body))[0] == 403
        soon = int(time.time()) + 400  # beyond the 5 minutes either way
        query, body = signed_at(harness.fake, harness.fake.text("o-attacker", "电梯困人了，快来"), soon, "n2", mode)
        assert (await post(harness.url, query, body))[0] == 403
        query["timestamp"] = "not-a-number"
        assert (await post(harness.url, query, body))[0] == 403
    assert await h.tickets() == []


async def test_a_nonce_is_good_for_one_request_on_every_worker(wechat):  # noqa: F811
    first = await wechat(wechat_aes_key=None)
    second = await wechat(wechat_aes_key=None)  # another worker on the same database
    now = int(time.time())
    query, body = signed_at(first.fake, first.fake.text(OWNER, "你好"), now, "n-42", "plain")
    status, answer = await post(first.url, query, body)
    assert status == 200
    # The same signature set with another body and another openid: refused, on this worker and on the other.
    forged = first.fake.text("o-attacker", "楼道里好大一股煤气味")
    assert (await post(first.url, query, forged))[0] == 403
    assert (await post(second.url, query, forged))[0] == 403
    # The very same request again (WeChat retrying it): answered as before, nothing done twice.
    again = await post(second.url, query, body)
    assert again[0] == 200 and again[1].split("<CreateTime>")[0] == answer.split("<CreateTime>")[0]
    assert await first.tickets() == []


async def test_plain_bodies_are_refused_when_a_key_is_configured(wechat):  # noqa: F811
    h = await wechat()
    query, body = signed_at(h.fake, h.fake.text(OWNER, "电梯困人了，快来"), int(time.time()), "n-7", "plain")
    status, text = await post(h.url, query, body)
    assert status == 403 and "encrypted" in text
    assert await h.tickets() == []
    assert "水路" in await h.say("厨房水龙头一直滴水，拧紧了也滴")  # safe mode works


async def test_old_nonces_are_pruned(wechat):  # noqa: F811
    h = await wechat(wechat_aes_key=None, wechat_timestamp_tolerance_seconds=1)
    for n in range(3):
        query, body = signed_at(h.fake, h.fake.text(OWNER, "你好"), int(time.time()), f"p{n}", "plain")
        assert (await post(h.url, query, body))[0] == 200
    async with h.app.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(RequestNonce)) == 3
    time.sleep(2.5)
    query, body = signed_at(h.fake, h.fake.text(OWNER, "你好"), int(time.time()), "p-last", "plain")
    assert (await post(h.url, query, body))[0] == 200
    async with h.app.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(RequestNonce)) == 1


def test_the_access_log_never_shows_query_strings(caplog):
    import logging

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from bot.runner import PathOnlyAccessLog

    request = make_mocked_request("POST", "/wechat?signature=abc123&timestamp=1&nonce=n&msg_signature=def456",
                                  headers={"Referer": "https://desk/staff/t/BX-20261125-0001?k=LINKKEY"})
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        PathOnlyAccessLog(logging.getLogger("aiohttp.access"), "").log(request, web.Response(), 0.01)
    assert "/wechat" in caplog.text
    assert not any(secret in caplog.text for secret in ("abc123", "def456", "LINKKEY", "signature"))
