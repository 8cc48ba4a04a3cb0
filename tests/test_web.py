"""The web chat and staff pane end to end over real HTTP on loopback, plus /healthz."""
from __future__ import annotations

import io

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.desk.demo_seed import seed_demo, seed_demo_logins
from bot.server import build_app
from config.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def client(db_url, clock, tmp_path):
    settings = Settings(database_url=db_url, upload_dir=str(tmp_path / "uploads"))
    app = App.create(settings, clock=clock)
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s, today=clock.local().date())
        logins = {role: (phone, password) for role, _name, phone, password in await seed_demo_logins(s)}
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as c:
        c.propdesk = app
        c.logins = logins
        yield c
    await app.close()


async def post(client, path, body):
    resp = await client.post(path, json=body, headers=getattr(client, "staff_headers", {}))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def choose(client, user, replies, prefix):
    cid = next(c["id"] for r in replies for c in r["choices"] if c["id"].startswith(prefix))
    return (await post(client, "/api/web/send", {"user": user, "choice": cid}))["replies"]


async def sign_in(client, role: str) -> None:
    """Sign the test client in to the staff console; later posts carry the CSRF token and an Origin."""
    phone, password = client.logins[role]
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    resp = await client.post("/api/console/login", json={"phone": phone, "password": password}, headers=origin)
    assert resp.status == 200, await resp.text()
    client.staff_headers = {**origin, "X-CSRF-Token": (await resp.json())["csrf"]}


def texts(replies):
    return "\n".join(r["text"] for r in replies)


async def test_healthz(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["database"] == "ok"


async def test_healthz_503_when_database_unreachable(clock, tmp_path):
    settings = Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = App.create(settings, clock=clock)
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as c:
        resp = await c.get("/healthz")
        assert resp.status == 503
    await app.close()


async def test_owner_to_staff_loop(client):
    page = await client.get("/")
    assert page.status == 200 and "propdesk" in await page.text()
    owners = await (await client.get("/api/web/owners")).json()
    zhang = next(o for o in owners if o["unit"] == "3-2-1502")
    start = await post(client, "/api/web/session", {"person_id": zhang["person_id"]})
    user = start["user"]
    assert "欢迎" in texts(start["replies"])
    r = (await post(client, "/api/web/send", {"user": user, "text": "厨房水龙头一直滴水，关不紧"}))["replies"]
    assert "水路" in texts(r)
    r = await choose(client, user, r, "ok")
    r = await choose(client, user, r, "unit:")  # a roster owner is bound to their home already
    form = {"user": user, "file": io.BytesIO(PNG)}
    resp = await client.post("/api/web/photo", data=_multipart(user, PNG, "image/png"))
    body = await resp.json()
    assert resp.status == 200 and "第 1 张" in texts(body["replies"]) and body["photo"].startswith("/uploads/")
    assert (await client.get(body["photo"])).status == 200
    r = body["replies"]
    r = await choose(client, user, r, "done")
    r = await choose(client, user, r, "vt:today")
    r = await choose(client, user, r, "use_known")
    r = await choose(client, user, r, "submit")
    assert "BX-20261125-0001" in texts(r)
    del form

    assert (await client.get("/api/console/tickets")).status == 401  # staff sign in first
    await sign_in(client, "technician")  # 王师傅, the plumber
    cards = (await (await client.get("/api/console/tickets")).json())["tickets"]
    assert [c["number"] for c in cards] == ["BX-20261125-0001"]
    card = await (await client.get("/api/console/tickets/BX-20261125-0001")).json()
    assert card["status"] == "new" and "claim" in card["actions"] and card["location"].startswith("3-2-1502")
    assert card["photo_count"] == 1
    act = "/api/console/tickets/BX-20261125-0001/action"
    assert (await post(client, act, {"action": "claim"}))["status"] == "assigned"
    resp = await client.post(act, json={"action": "reject", "note": ""}, headers=client.staff_headers)
    assert resp.status == 409 and "reason" in (await resp.json())["error"]
    await post(client, act, {"action": "start"})
    await post(client, act, {"action": "comment", "note": "已到门口，请开门"})
    done = await post(client, act, {"action": "resolve", "note": "换了阀芯"})
    assert done["status"] == "resolved"

    polled = await (await client.get(f"/api/web/poll?user={user}&after=0")).json()
    msgs = polled["messages"]
    assert len(msgs) == 4 and "王师傅" in msgs[0]["text"] and "已到门口" in msgs[2]["text"]
    assert "已处理完成" in msgs[3]["text"]
    # The owner rates from the notice's button: a 5 closes the ticket.
    r = (await post(client, "/api/web/send", {"user": user, "choice": msgs[3]["choices"][0]["id"]}))["replies"]
    r = await choose(client, user, r, "star:5")
    r = await choose(client, user, r, "skip")
    assert "感谢" in texts(r)
    card = await (await client.get("/api/console/tickets/BX-20261125-0001")).json()
    assert card["status"] == "closed" and card["rating"] == 5
    again = await (await client.get(f"/api/web/poll?user={user}&after={msgs[-1]['id']}")).json()
    assert again["messages"] == []


async def test_emergency_over_http_creates_ticket_first(client):
    start = await post(client, "/api/web/session", {})
    r = (await post(client, "/api/web/send", {"user": start["user"], "text": "救命！电梯困人了，我老公在里面"}))["replies"]
    assert "BX-20261125-0001" in texts(r) and "切勿强行扒门" in texts(r)
    await sign_in(client, "service")
    cards = (await (await client.get("/api/console/tickets")).json())["tickets"]
    assert cards[0]["urgency"] == "emergency"


@pytest.mark.parametrize("body,status", [
    ("not json", 400), ('{"user": "w-../../x", "text": "hi"}', 400), ('[1,2]', 400), ('{"text": "hi"}', 400),
])
async def test_bad_requests_get_clear_errors(client, body, status):
    resp = await client.post("/api/web/send", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status and "error" in await resp.json()


async def test_wrong_message_types_and_files(client):
    user = (await post(client, "/api/web/session", {}))["user"]
    r = (await post(client, "/api/web/send", {"user": user, "type": "sticker"}))["replies"]
    assert "无法处理" in texts(r)
    resp = await client.post("/api/web/photo", data=_multipart(user, b"MZ\x90\x00 not an image", "image/png"))
    assert resp.status == 200 and "无法处理" in texts((await resp.json())["replies"])
    r = (await post(client, "/api/web/send", {"user": user, "text": "长" * 10000}))["replies"]
    assert "太长" in texts(r)
    assert (await client.get("/uploads/..%2F..%2Fetc%2Fpasswd")).status == 404
    await sign_in(client, "service")
    resp = await client.post("/api/console/tickets/BX-20261125-0001/action", data="{",
                             headers={"Content-Type": "application/json", **client.staff_headers})
    assert resp.status == 400


def _multipart(user: str, content: bytes, ctype: str):
    from aiohttp import FormData

    fd = FormData()
    fd.add_field("user", user)
    fd.add_field("file", content, filename="x.png", content_type=ctype)
    return fd


async def test_pending_binding_approved_by_staff(client):
    user = (await post(client, "/api/web/session", {}))["user"]
    r = (await post(client, "/api/web/send", {"user": user, "text": "/bind"}))["replies"]
    r = await choose(client, user, r, "estate:")
    await post(client, "/api/web/send", {"user": user, "text": "3-2-1502"})
    r = (await post(client, "/api/web/send", {"user": user, "text": "13122223333"}))["replies"]
    assert "审核" in texts(r)
    r = (await post(client, "/api/web/send", {"user": user, "text": "李雷"}))["replies"]  # who asks
    await choose(client, user, r, "rel:tenant")
    await sign_in(client, "service")
    pending = (await (await client.get("/api/console/bindings")).json())["bindings"]
    assert [(b["unit"], b["phone"]) for b in pending] == [("3-2-1502", "13122223333")]
    assert (await client.post("/api/console/bindings/999", json={"approve": True},
                              headers=client.staff_headers)).status == 404
    assert (await post(client, f"/api/console/bindings/{pending[0]['id']}", {"approve": True}))["status"] == "active"
    msgs = (await (await client.get(f"/api/web/poll?user={user}")).json())["messages"]
    assert "审核通过" in msgs[-1]["text"]
    r = (await post(client, "/api/web/send", {"user": user, "text": "/fees"}))["replies"]
    assert "3-2-1502" in texts(r) and "待缴" in texts(r)


async def test_console_sends_a_notice_to_the_web_owner(client):
    owners = await (await client.get("/api/web/owners")).json()
    zhang = next(o for o in owners if o["unit"] == "3-2-1502")
    user = (await post(client, "/api/web/session", {"person_id": zhang["person_id"]}))["user"]
    client.propdesk.clock.at = client.propdesk.clock.at.replace(hour=2)  # 10:00 in Shanghai, outside quiet hours
    await sign_in(client, "service")
    preview = await post(client, "/api/console/notices/preview", {"estate": "SG", "buildings": ["3"]})
    assert preview["accounts"] == 1 and preview["channels"] == {"web": 1} and preview["owners"] >= 1
    sent = await post(client, "/api/console/notices", {"estate": "SG", "buildings": ["3"], "text": "明天9点至12点停水"})
    assert sent == {"accounts": 1}
    assert (await post(client, "/api/console/notices", {"estate": "SG", "buildings": ["1"], "text": "x"}))["accounts"] == 0
    polled = await (await client.get("/api/web/poll", params={"user": user})).json()
    assert any("停水" in m["text"] for m in polled["messages"])
    for bad, status in (({"estate": "SG"}, 400), ({"estate": "NOPE", "text": "x"}, 404),
                        ({"estate": "SG", "text": "x" * 1001}, 400)):
        assert (await client.post("/api/console/notices", json=bad, headers=client.staff_headers)).status == status


async def test_console_shows_photos_from_any_channel(client):
    """A photo another channel took is fetched from that channel once and served to the pane."""
    from bot.desk.ticket_service import TicketService

    app = client.propdesk
    fetched: list[str] = []

    async def from_elsewhere(value: str) -> bytes:
        fetched.append(value)
        return PNG

    app.media.register("xx", from_elsewhere)
    async with app.sessionmaker() as s, s.begin():
        tk = await TicketService(s, app.clock).create(kind="repair", category="water", urgency="normal",
                                                      description="漏水", channel="xx", reporter_id=None,
                                                      actor="owner", photos=["xx:photo-1"])
    await sign_in(client, "service")
    card = await (await client.get(f"/api/console/tickets/{tk.number}")).json()
    assert card["photo_count"] == 1
    for _ in range(2):
        resp = await client.get(f"/api/console/tickets/{tk.number}/photos/0")
        assert resp.status == 200 and resp.content_type == "image/png" and await resp.read() == PNG
    assert fetched == ["photo-1"]  # once: then kept under the upload folder
    assert (await client.get(f"/api/console/tickets/{tk.number}/photos/1")).status == 404
    assert (await client.get("/api/console/tickets/BX-20990101-0001/photos/0")).status == 404


async def test_upload_errors_say_what_went_wrong_in_both_languages(db_url, clock, tmp_path):
    settings = Settings(database_url=db_url, upload_dir=str(tmp_path / "uploads"), max_upload_bytes=1024 * 1024)
    app = App.create(settings, clock=clock)
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as c:
        user = (await (await c.post("/api/web/session", json={})).json())["user"]
        big = await c.post("/api/web/photo", data=_multipart(user, PNG + b"\0" * (2 * 1024 * 1024), "image/png"))
        error = (await big.json())["error"]
        assert big.status == 413 and "照片太大了" in error and "too large" in error and "malformed" not in error
        text = await c.post("/api/web/photo", data=_multipart(user, b"just text", "text/plain"))
        body = await text.json()
        # Not a photo: the bot says so, and no photo is shown (the page draws no empty bubble for it).
        assert text.status == 200 and "photo" not in body and body["replies"]
    await app.close()
