"""A photo taken in one channel, shown in another: WeChat photos in a Telegram staff group, Telegram photos on the
WeCom robots' staff page, each fetched over HTTP from its platform's fake once and then kept."""
from __future__ import annotations

import re
from urllib.parse import urlparse

import aiohttp

from bot.app import App
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.wechat.channel import WeChatChannel
from bot.channels.wecom.robots import WeComChannel
from bot.delivery.media import MediaStore
from bot.desk.signing import hash_password
from bot.desk.ticket_service import TicketService
from models import Staff
from tests.fakes import telegram_api as tg
from tests.fakes import wechat as wx
from tests.fakes.wecom import FakeWeCom
from tests.waiting import wait_for

GROUP = -1001
ROBOT = "robot-repairs"


async def new_ticket(app: App, photos: list[str], channel: str) -> str:
    async with app.sessionmaker() as s, s.begin():
        tk = await TicketService(s, app.clock, app.engine.dispatch).create(
            kind="repair", category="water", urgency="normal", description="卫生间漏水 leak", channel=channel,
            reporter_id=None, actor="owner", photos=photos)
        return tk.number


async def staff_password(s) -> None:  # noqa: ANN001
    (await s.get(Staff, 1)).password_hash = hash_password("correct horse")


async def test_a_wechat_photo_reaches_the_telegram_staff_group_after_wechat_dropped_it(propdesk, fakes):
    wechat, bot_api = await fakes.start(wx.FakeWeChat()), await fakes.start(tg.FakeBotAPI())
    run = await propdesk(
        [WeChatChannel, TelegramChannel], prepare=staff_password,
        wechat_token=wx.TOKEN, wechat_app_id=wx.APP_ID, wechat_app_secret=wx.APP_SECRET,
        wechat_api_base_url=wechat.url, telegram_token=bot_api.token, telegram_api_base_url=bot_api.url,
        staff_groups={"repairs": {"channel": "telegram", "chat_id": str(GROUP)}})
    app = run.app
    # The owner sends a photo: propdesk fetches it from WeChat at once (media/get) and keeps it.
    delivery = await wechat.push(run.base + "/wechat", wechat.image("o-owner-1", "media-77"))
    assert delivery.attempts[-1][0] == 200
    await wechat.wait_for(lambda f: any(path == "media/get" for path, _ in f.calls))
    await wait_for(lambda: any((app.media.folder / "media").glob("*")), what="the photo kept in the media folder")
    original = wechat.media.pop("media-77")  # WeChat deletes temporary media after three days
    number = await new_ticket(app, ["wx:media-77"], "wechat")
    app.wake_delivery()
    await bot_api.wait_for(lambda f: f.of("sendPhoto"))
    [upload] = bot_api.of("sendPhoto")
    assert int(upload["chat_id"]) == GROUP
    assert upload["photo"] == original  # the bytes themselves, sent as a file
    card = next(m for (c, _), m in bot_api.messages.items() if c == GROUP and number in m.get("text", ""))
    assert upload["reply_parameters"]["message_id"] == card["message_id"]  # under its card
    # An unknown media id: no photo, and a warning instead of an error.
    assert await app.media.fetch("wx:no-such-media") is None


async def test_a_telegram_photo_on_the_wecom_staff_page(propdesk, fakes):
    robot, bot_api = await fakes.start(FakeWeCom()), await fakes.start(tg.FakeBotAPI())
    run = await propdesk(
        [WeComChannel, TelegramChannel], prepare=staff_password,
        wecom_api_base_url=robot.url, telegram_token=bot_api.token, telegram_api_base_url=bot_api.url,
        secret_key="test-secret", public_base_url="https://desk.example.com",
        staff_groups={"repairs": {"channel": "wecom", "chat_id": ROBOT}})
    app = run.app
    number = await new_ticket(app, ["tg:AgADphoto42"], "telegram")
    await robot.wait_for(lambda f: f.messages.get(ROBOT))
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
