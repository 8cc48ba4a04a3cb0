"""A photo taken in one channel, shown in another: WeChat photos in a Telegram staff group, Telegram photos on the
WeCom robots' staff page, each fetched over HTTP from its platform's fake once and then kept."""
from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlparse

import aiohttp
import pytest

from bot.app import App
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.wechat.channel import WeChatChannel
from bot.channels.wecom.robots import WeComChannel
from bot.clock import Clock
from bot.delivery.media import MediaStore
from bot.desk.demo_seed import seed_demo
from bot.desk.signing import hash_password
from bot.desk.ticket_service import TicketService
from config.settings import Settings
from models import Staff
from tests.fakes import telegram_api as tg
from tests.fakes import wechat as wx
from tests.fakes.wecom import FakeWeCom
from tests.running import Running

GROUP = -1001
ROBOT = "robot-repairs"


async def new_ticket(app: App, photos: list[str], channel: str) -> str:
    async with app.sessionmaker() as s, s.begin():
        tk = await TicketService(s, app.clock, app.engine.dispatch).create(
            kind="repair", category="water", urgency="normal", description="卫生间漏水 leak", channel=channel,
            reporter_id=None, actor="owner", photos=photos)
        return tk.number


async def until(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def running(tmp_path, sqlite_url):
    started = []

    async def start(settings: dict, channels, fakes: list) -> App:  # noqa: ANN001
        """propdesk with these channels; the platform fakes are stopped after it."""
        app = App.create(Settings(database_url=sqlite_url, upload_dir=str(tmp_path / "up"),
                                  delivery_backoff_seconds=0.1, **settings), clock=Clock())
        async with app.sessionmaker() as s, s.begin():
            await seed_demo(s)
            (await s.get(Staff, 1)).password_hash = hash_password("correct horse")
        run = await Running(app, [c(app) for c in channels], fakes=tuple(fakes)).start()
        started.append(run)
        return app, run

    yield start
    for run in started:
        await run.stop()


async def test_a_wechat_photo_reaches_the_telegram_staff_group_after_wechat_dropped_it(running):
    wechat, bot_api = await wx.FakeWeChat().start(), await tg.FakeBotAPI().start()
    app, run = await running(
        {"wechat_token": wx.TOKEN, "wechat_app_id": wx.APP_ID, "wechat_app_secret": wx.APP_SECRET,
         "wechat_api_base_url": wechat.url, "telegram_token": bot_api.token,
         "telegram_api_base_url": bot_api.url,
         "staff_groups": {"repairs": {"channel": "telegram", "chat_id": str(GROUP)}}},
        [WeChatChannel, TelegramChannel], [wechat, bot_api])
    # The owner sends a photo: propdesk fetches it from WeChat at once (media/get) and keeps it.
    delivery = await wechat.push(run.base + "/wechat", wechat.image("o-owner-1", "media-77"))
    assert delivery.attempts[-1][0] == 200
    await until(lambda: any(path == "media/get" for path, _ in wechat.calls))
    await until(lambda: any((app.media.folder / "media").glob("*")))
    original = wechat.media.pop("media-77")  # WeChat deletes temporary media after three days
    number = await new_ticket(app, ["wx:media-77"], "wechat")
    app.wake_delivery()
    await until(lambda: bot_api.of("sendPhoto"))
    [upload] = bot_api.of("sendPhoto")
    assert int(upload["chat_id"]) == GROUP
    assert upload["photo"] == original  # the bytes themselves, sent as a file
    card = next(m for (c, _), m in bot_api.messages.items() if c == GROUP and number in m.get("text", ""))
    assert upload["reply_parameters"]["message_id"] == card["message_id"]  # under its card
    # An unknown media id: no photo, and a warning instead of an error.
    assert await app.media.fetch("wx:no-such-media") is None


async def test_a_telegram_photo_on_the_wecom_staff_page(running):
    robot, bot_api = await FakeWeCom().start(), await tg.FakeBotAPI().start()
    app, run = await running(
        {"wecom_api_base_url": robot.url, "telegram_token": bot_api.token, "telegram_api_base_url": bot_api.url,
         "secret_key": "test-secret", "public_base_url": "https://desk.example.com",
         "staff_groups": {"repairs": {"channel": "wecom", "chat_id": ROBOT}}},
        [WeComChannel, TelegramChannel], [robot, bot_api])
    number = await new_ticket(app, ["tg:AgADphoto42"], "telegram")
    await until(lambda: robot.messages.get(ROBOT))
    card = robot.messages[ROBOT][0]["markdown"]["content"]
    link = re.search(r"\((https://desk\.example\.com/staff/t/[^)]+)\)", card).group(1)
    path = urlparse(link)._replace(scheme="", netloc="").geturl()
    photo = path.replace("?", "/photo/0?")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(run.base + photo) as resp:
            assert resp.status == 403  # not logged in
        async with http.post(run.base + "/staff/login", data={"phone": "13900000001",
                                                             "password": "correct horse", "next": path}) as resp:
            page = await resp.text()
            assert resp.status == 200 and f"/staff/t/{number}/photo/0?" in page
        async with http.get(run.base + photo) as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
            body = await resp.read()
        assert body == bot_api.files["photos/AgADphoto42.jpg"]
        async with http.get(run.base + path.replace("?", "/photo/1?")) as resp:
            assert resp.status == 404
        forged = re.sub(r"k=[^&]+", "k=forged", photo)
        async with http.get(run.base + forged) as resp:
            assert resp.status == 403
    assert len(bot_api.of("getFile")) == 1
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await http.post(run.base + "/staff/login", data={"phone": "13900000001", "password": "correct horse",
                                                         "next": path})
        async with http.get(run.base + photo) as resp:
            assert await resp.read() == body
    assert len(bot_api.of("getFile")) == 1  # kept after the first fetch


async def test_web_uploads_stay_in_their_folder(tmp_path):
    store = MediaStore(tmp_path)
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0x")
    (tmp_path.parent / "secret.jpg").write_bytes(b"\xff\xd8\xff\xe0secret")
    assert await store.fetch("web:a.jpg") == b"\xff\xd8\xff\xe0x"
    assert await store.fetch("web:../secret.jpg") is None
    assert await store.fetch("xx:unknown-kind") is None

    async def not_an_image(value: str) -> bytes:
        return b"<html>error page</html>"

    store.register("xx", not_an_image)
    assert await store.fetch("xx:1") is None
