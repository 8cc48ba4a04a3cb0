"""The aiohttp transport under python-telegram-bot: real Bot objects over HTTP to the fake Bot API on loopback."""
from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.channels.telegram.transport import AiohttpRequest
from tests.fakes import telegram_api as tg
from tests.fakes.loopback import serve
from tests.waiting import wait_for


@pytest.fixture
async def fake(fakes):
    return await fakes.start(tg.FakeBotAPI())


def bot_for(base: str, token: str, **request) -> Bot:
    return Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot", request=AiohttpRequest(**request))


async def test_calls_texts_and_uploads(fake):
    async with bot_for(fake.url, fake.token) as bot:
        me = await bot.get_me()
        assert me.username == tg.BOT["username"]
        sent = await bot.send_message(501, "你好 hello", reply_markup=None)
        assert sent.text == "你好 hello" and sent.chat.id == 501
        photo = await bot.send_photo(501, b"\xff\xd8jpeg-bytes", caption="现场照片")
        assert photo.caption == "现场照片"
    upload = [c for c in fake.calls if c.method == "sendPhoto"][0]
    assert upload.params["photo"] == b"\xff\xd8jpeg-bytes"  # sent as a multipart file, byte for byte
    assert upload.params["caption"] == "现场照片"


async def test_a_slow_api_times_out_and_a_dead_one_is_a_network_error():
    timed_out = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        if request.match_info["method"] == "getMe":
            return web.json_response({"ok": True, "result": tg.BOT})
        await wait_for(timed_out.wait(), what="the client to give up")  # answers only after it did
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", slow)
    runner, url = await serve(app)
    try:
        async with bot_for(url, "1:x", read_timeout=0.2) as bot:
            with pytest.raises(TimedOut):
                await bot.delete_webhook()
    finally:
        timed_out.set()
        await runner.cleanup()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bot = Bot("1:x", base_url=f"http://127.0.0.1:{port}/bot", request=AiohttpRequest())
    await bot._request[1].initialize()  # noqa: SLF001 - initialize() would call getMe first
    try:
        with pytest.raises(NetworkError):
            await bot.delete_webhook()
    finally:
        await bot._request[1].shutdown()  # noqa: SLF001


async def test_through_a_proxy(fake):
    """With a proxy set, every call goes through it (an HTTP forward proxy on loopback)."""
    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        async with aiohttp.ClientSession() as http, http.request(
                request.method, str(request.url), data=await request.read(),
                headers={"Content-Type": request.headers["Content-Type"]}) as upstream:
            return web.Response(status=upstream.status, body=await upstream.read(),
                                content_type=upstream.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner, proxy = await serve(app)
    try:
        async with bot_for(fake.url, fake.token, proxy=proxy) as bot:
            await bot.send_message(501, "经代理 via proxy")
    finally:
        await runner.cleanup()
    assert any(u.endswith("/sendMessage") and u.startswith(fake.url) for u in seen)
    assert [c.params["text"] for c in fake.calls if c.method == "sendMessage"] == ["经代理 via proxy"]
