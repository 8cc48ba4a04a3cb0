"""The staff console over real HTTP: nothing without a session, CSRF and Origin on every change, sign-in lockout,
estates and roles enforced on every route, the demo chat only on loopback, no owner data for strangers."""
from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import App
from bot.desk.access import StaffRef
from bot.desk.demo_seed import seed_demo, seed_demo_logins
from bot.desk.signing import hash_password
from bot.desk.staff_accounts import add_staff
from bot.desk.ticket_service import TicketService
from bot.server import build_app
from config.settings import Settings
from models import Building, ClassifierCorrection, Estate, Person, Staff, Unit

async def _office(client: TestClient) -> StaffRef:
    """A reader of every estate, to check what the requests under test left unchanged."""
    async with client.propdesk.sessionmaker() as s:
        estates = frozenset((await s.scalars(select(Estate.id))).all())
    return StaffRef(0, "office", "admin", None, estates)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
OWNER_DATA = ("13800000001", "13800000002", "张伟", "李娜")
ROUTES = [  # every staff route: (method, path)
    ("GET", "/api/console/me"), ("GET", "/api/console/tickets"), ("GET", "/api/console/export.csv"),
    ("GET", "/api/console/tickets/{sg}"), ("GET", "/api/console/tickets/{sg}/photos/0"),
    ("POST", "/api/console/tickets/{sg}/action"), ("POST", "/api/console/bulk"), ("GET", "/api/console/bindings"),
    ("POST", "/api/console/bindings/1"), ("GET", "/api/console/roster"), ("POST", "/api/console/import/owners"),
    ("POST", "/api/console/notices/preview"), ("POST", "/api/console/notices"), ("GET", "/api/console/events"),
    ("POST", "/api/console/logout"),
]


async def _client(settings: Settings, clock, seed: bool = True):
    app = App.create(settings, clock=clock)
    if not seed:
        client = TestClient(TestServer(build_app(app), host="127.0.0.1"))
        await client.start_server()
        client.propdesk = app
        return client
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s, today=clock.local().date())
        logins = {role: (phone, pw) for role, _n, phone, pw in await seed_demo_logins(s)}
        # Staff of one estate only (翠湖苑 CH), one per role, all with the password "password-ch".
        for role, phone in (("service", "13700000001"), ("technician", "13700000002"),
                            ("supervisor", "13700000003")):
            staff, _ = await add_staff(s, clock, name=f"CH {role}", phone=phone, role=role, estates=["CH"])
            staff.password_hash = hash_password("password-ch")
            logins["ch-" + role] = (phone, "password-ch")
        svc = TicketService(s, clock, app.engine.dispatch)
        sg_id = await s.scalar(select(Estate.id).where(Estate.code == "SG"))
        ch_id = await s.scalar(select(Estate.id).where(Estate.code == "CH"))
        unit = await s.scalar(select(Unit.id).join(Building).where(Building.estate_id == sg_id, Building.name == "3",
                                                                   Unit.entrance == "2", Unit.room == "1502"))
        sg = await svc.create(kind="repair", category="water", urgency="high", description="SG 厨房漏水 secret-sg",
                              channel="web", reporter_id=1, actor="owner:1", estate_id=sg_id, unit_id=unit,
                              location_text="", photos=["web:x.png"])
        ch = await svc.create(kind="repair", category="water", urgency="normal", description="CH 阳台漏水",
                              channel="web", reporter_id=3, actor="owner:3", estate_id=ch_id, location_text="")
        numbers = {"sg": sg.number, "ch": ch.number}
    client = TestClient(TestServer(build_app(app), host="127.0.0.1"))
    await client.start_server()
    client.propdesk, client.logins, client.numbers = app, logins, numbers
    client.origin = {"Origin": str(client.make_url("")).rstrip("/")}
    return client


@pytest.fixture
async def client(db_url, clock, tmp_path):
    c = await _client(Settings(database_url=db_url, upload_dir=str(tmp_path / "up")), clock)
    yield c
    await c.close()
    await c.propdesk.close()


async def sign_in(client, who: str) -> dict:
    """Sign in on a fresh cookie jar; the headers a page of the console would send."""
    client.session.cookie_jar.clear()
    phone, password = client.logins[who]
    resp = await client.post("/api/console/login", json={"phone": phone, "password": password},
                             headers=client.origin)
    assert resp.status == 200, await resp.text()
    return {**client.origin, "X-CSRF-Token": (await resp.json())["csrf"]}


def _path(client, path: str) -> str:
    return path.format(sg=client.numbers["sg"], ch=client.numbers["ch"])


async def test_every_staff_route_needs_a_session(client):
    for method, path in ROUTES + [("GET", "/api/staff/tickets"), ("POST", "/api/staff/tickets/{sg}/action")]:
        resp = await client.request(method, _path(client, path), json={"action": "claim", "staff_id": 1},
                                    headers=client.origin)
        assert resp.status in (401, 404, 405), (method, path, resp.status)
        assert resp.status == 401 or path.startswith("/api/staff"), (method, path)  # the old open pane is gone
    view = await client.propdesk.staff_desk.ticket_view(await _office(client), client.numbers["sg"])
    assert view["status"] == "new"  # nothing changed
    # A forged cookie is no session either.
    client.session.cookie_jar.update_cookies({"propdesk_console": "forged"})
    assert (await client.get("/api/console/tickets")).status == 401


async def test_state_changes_need_csrf_and_same_origin(client):
    headers = await sign_in(client, "service")
    act = f"/api/console/tickets/{client.numbers['sg']}/action"
    no_csrf = {k: v for k, v in headers.items() if k != "X-CSRF-Token"}
    assert (await client.post(act, json={"action": "claim"}, headers=no_csrf)).status == 403
    assert (await client.post(act, json={"action": "claim"}, headers={**headers, "X-CSRF-Token": "x"})).status == 403
    assert (await client.post(act, json={"action": "claim"},
                              headers={**headers, "Origin": "https://evil.example"})).status == 403
    no_origin = {"X-CSRF-Token": headers["X-CSRF-Token"]}
    assert (await client.post(act, json={"action": "claim"}, headers=no_origin)).status == 403
    assert (await client.post(act, json={"action": "claim"},
                              headers={**headers, "Host": "evil.example"})).status == 403
    resp = await client.post(act, json={"action": "claim"}, headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "assigned"
    # Sign-in itself refuses another site's page (login CSRF).
    phone, password = client.logins["service"]
    assert (await client.post("/api/console/login", json={"phone": phone, "password": password},
                              headers={"Origin": "https://evil.example"})).status == 403
    # Logout ends the session on the server.
    assert (await client.post("/api/console/logout", json={}, headers=headers)).status == 200
    assert (await client.get("/api/console/tickets")).status == 401


async def test_session_cookie_flags_and_https(db_url, clock, tmp_path):
    c = await _client(Settings(database_url=db_url, upload_dir=str(tmp_path / "up"), trust_proxy_headers=True),
                      clock)
    try:
        phone, password = c.logins["admin"]
        resp = await c.post("/api/console/login", json={"phone": phone, "password": password},
                            headers={**c.origin, "X-Forwarded-Proto": "https"})
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie and "Max-Age" in cookie
        resp = await c.post("/api/console/login", json={"phone": phone, "password": password}, headers=c.origin)
        assert "Secure" not in resp.headers["Set-Cookie"]
    finally:
        await c.close()
        await c.propdesk.close()


async def test_lockout_after_repeated_failures_is_logged_and_refuses_the_right_password(client, caplog):
    phone, password = client.logins["admin"]
    caplog.set_level(logging.WARNING, logger="propdesk.auth")

    async def attempt(pw: str) -> int:
        resp = await client.post("/api/console/login", json={"phone": phone, "password": pw},
                                 headers=client.origin)
        return resp.status

    # A burst in parallel: no more than the allowed five are even checked.
    statuses = await asyncio.gather(*(attempt(f"wrong-{i}") for i in range(30)))
    assert statuses.count(401) <= 5 and statuses.count(429) >= 25
    assert await attempt(password) == 429  # the right password, during the lockout
    assert any("locked out" in r.getMessage() for r in caplog.records)
    # Another account from the same address is not locked yet (address limit 20 wrong within the window)...
    other_phone, other_pw = client.logins["service"]
    resp = await client.post("/api/console/login", json={"phone": other_phone, "password": other_pw},
                             headers=client.origin)
    assert resp.status == 429  # ...but 30 failures from one address lock the address too
    # After the lockout ends, the right password works again.
    client.propdesk.clock.advance(minutes=16)
    assert await attempt(password) == 200


async def test_demo_chat_off_on_a_public_address(db_url, clock, tmp_path):
    c = await _client(Settings(database_url=db_url, upload_dir=str(tmp_path / "up"), http_host="0.0.0.0"), clock)
    try:
        assert (await c.get("/api/web/owners")).status == 404
        assert (await c.post("/api/web/session", json={"person_id": 1}, headers=c.origin)).status in (404, 405)
        resp = await c.get("/", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/console"
        assert (await c.get("/console")).status == 200
    finally:
        await c.close()
        await c.propdesk.close()
    c = await _client(Settings(database_url=db_url, upload_dir=str(tmp_path / "up"), http_host="0.0.0.0",
                               web_demo=True), clock, seed=False)
    try:
        assert (await c.get("/api/web/owners")).status == 200
    finally:
        await c.close()
        await c.propdesk.close()


async def test_no_owner_data_from_unauthenticated_routes(client):
    for path in ["/", "/console", "/api/web/owners", "/healthz", "/console/static/console.js",
                 "/api/web/poll?user=w-abcdefgh"] + [_path(client, p) for m, p in ROUTES if m == "GET"]:
        resp = await client.get(path)
        body = await resp.text()
        assert not any(x in body for x in OWNER_DATA[:2]), path  # no phone anywhere
        if path != "/api/web/owners":  # the loopback demo's picker shows roster names, never phones
            assert not any(x in body for x in OWNER_DATA), path
        assert "secret-sg" not in body


async def test_security_headers_on_every_page(client):
    for path in ["/", "/console", "/console/static/console.js", "/api/console/tickets", "/healthz", "/nope"]:
        resp = await client.get(path)
        h = resp.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"] and "script-src 'self'" in h[
            "Content-Security-Policy"], path
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY", path
        assert h["Referrer-Policy"] == "same-origin", path


async def test_staff_of_one_estate_reach_nothing_of_another(client):
    sg, ch = client.numbers["sg"], client.numbers["ch"]
    for who in ("ch-service", "ch-supervisor", "ch-technician"):
        headers = await sign_in(client, who)
        listed = (await (await client.get("/api/console/tickets")).json())["tickets"]
        assert [t["number"] for t in listed] == [ch], who
        for q in (sg, "secret-sg", "3-2-1502", "13800000001", "张伟"):
            found = (await (await client.get("/api/console/tickets", params={"q": q})).json())["tickets"]
            assert found == [], (who, q)
        assert (await (await client.get("/api/console/tickets", params={"estate": "SG"})).json())["tickets"] == []
        export = await (await client.get("/api/console/export.csv")).text()
        assert sg not in export and ch in export
        assert (await client.get(f"/api/console/tickets/{sg}")).status == 404
        assert (await client.get(f"/api/console/tickets/{sg}/photos/0")).status == 404
        for body in ({"action": "claim"}, {"action": "comment", "note": "x"}, {"action": "note", "note": "x"},
                     {"action": "reclassify", "kind": "repair", "category": "gas", "urgency": "low"},
                     {"action": "assign", "assignee_id": 1}, {"action": "reopen", "note": "x"}):
            resp = await client.post(f"/api/console/tickets/{sg}/action", json=body, headers=headers)
            assert resp.status in (403, 404), (who, body)
        resp = await client.post("/api/console/bulk", json={"numbers": [sg], "action": "close"}, headers=headers)
        assert resp.status == 403 or (await resp.json())["results"][sg] != "ok"
        assert (await client.post("/api/console/notices/preview", json={"estate": "SG", "buildings": []},
                                  headers=headers)).status in (403, 404)
        assert (await client.post("/api/console/notices", json={"estate": "SG", "text": "停水"},
                                  headers=headers)).status in (403, 404)
        roster = await client.get("/api/console/roster", params={"q": "张伟"})
        assert roster.status == 403 or (await roster.json())["owners"] == []
    view = await client.propdesk.staff_desk.ticket_view(await _office(client), sg)
    assert view["status"] == "new" and len(view["events"]) == 1  # untouched


async def test_roles(client):
    sg = client.numbers["sg"]
    act = f"/api/console/tickets/{sg}/action"
    tech = await sign_in(client, "technician")  # 王师傅, plumber: a water ticket is his trade's
    assert (await client.post(act, json={"action": "reclassify", "kind": "repair", "category": "gas",
                                         "urgency": "low"}, headers=tech)).status == 403
    assert (await client.post(act, json={"action": "assign", "assignee_id": 1}, headers=tech)).status == 403
    assert (await client.get("/api/console/bindings")).status == 403
    assert (await client.post("/api/console/notices", json={"estate": "SG", "text": "x"}, headers=tech)).status == 403
    assert (await client.post(act, json={"action": "claim"}, headers=tech)).status == 200
    assert (await client.post(act, json={"action": "resolve"}, headers=tech)).status == 200

    service = await sign_in(client, "service")
    assert (await client.post(act, json={"action": "reopen", "note": "没修好"}, headers=service)).status == 403
    resp = await client.post(act, json={"action": "reclassify", "kind": "repair", "category": "gas",
                                        "urgency": "emergency"}, headers=service)
    assert resp.status == 200 and (await resp.json())["category"] == "gas"
    async with client.propdesk.sessionmaker() as s:
        [c] = (await s.scalars(select(ClassifierCorrection))).all()
        assert (c.text, c.old_category, c.category, c.urgency) == ("SG 厨房漏水 secret-sg", "water", "gas", "emergency")
        assert c.estate_id is not None
    note = await client.post(act, json={"action": "note", "note": "内部：业主很急"}, headers=service)
    assert note.status == 200
    detail = await (await client.get(f"/api/console/tickets/{sg}")).json()
    assert any(e["type"] == "note" and "业主很急" in e["note"] for e in detail["timeline"])
    assert detail["owner"]["name"].startswith("张伟") and detail["owner"]["units"]

    supervisor_headers = await _supervisor(client)
    resp = await client.post(act, json={"action": "reopen", "note": "没修好"}, headers=supervisor_headers)
    assert resp.status == 200 and (await resp.json())["status"] == "reopened"


async def _supervisor(client) -> dict:
    async with client.propdesk.sessionmaker() as s, s.begin():
        chen = await s.scalar(select(Staff).join(Person).where(Person.phone == "13900000003"))
        chen.password_hash = hash_password("password-chen")
    client.logins["supervisor"] = ("13900000003", "password-chen")
    return await sign_in(client, "supervisor")


async def test_filters_search_and_keyset_pages(client):
    app = client.propdesk
    async with app.sessionmaker() as s, s.begin():
        svc = TicketService(s, app.clock, app.engine.dispatch)
        for i in range(7):
            await svc.create(kind="repair", category="electrical", urgency="emergency" if i == 3 else "normal",
                             description=f"灯 {i} https://example.com/{'x' * 300}", channel="telegram",
                             reporter_id=None, actor="test", estate_id=1, location_text="")
    await sign_in(client, "service")
    seen, cursor = [], None
    while True:
        params = {"limit": "3", "category": "electrical", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/api/console/tickets", params=params)).json()
        seen += [t["number"] for t in page["tickets"]]
        cursor = page["next"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7 and seen == sorted(seen, reverse=True)
    emergencies = await (await client.get("/api/console/tickets", params={"view": "emergencies"})).json()
    assert [t["urgency"] for t in emergencies["tickets"]] == ["emergency"]
    by_number = await (await client.get("/api/console/tickets", params={"q": client.numbers["sg"]})).json()
    assert [t["number"] for t in by_number["tickets"]] == [client.numbers["sg"]]
    for q in ("3-2-1502", "13800000001", "张伟", "厨房漏水"):
        found = await (await client.get("/api/console/tickets", params={"q": q})).json()
        assert client.numbers["sg"] in [t["number"] for t in found["tickets"]], q
    app.clock.advance(hours=5)
    assert (await client.get("/api/console/tickets")).status == 401  # idle for longer than allowed
    await sign_in(client, "service")
    overdue = await (await client.get("/api/console/tickets", params={"view": "overdue"})).json()
    assert overdue["tickets"] and all(t["overdue"] for t in overdue["tickets"])
    unassigned = await (await client.get("/api/console/tickets", params={"view": "unassigned", "channel": "telegram"})).json()
    assert len(unassigned["tickets"]) == 7


async def test_import_from_the_page_shows_bad_rows(client):
    headers = await sign_in(client, "service")
    form = FormData()
    form.add_field("file", "estate,unit,name,phone\nSG,3-2-1502,新业主,13811112222\nSG,bad,坏行,123\n".encode(),
                   filename="owners.csv", content_type="text/csv")
    resp = await client.post("/api/console/import/owners", data=form, headers=headers)
    body = await resp.json()
    assert resp.status == 422 and body["errors"] and body["errors"][0][0] == 3
    form = FormData()
    form.add_field("file", "estate,unit,name,phone\nSG,3-2-1502,新业主,13811112222\n".encode(),
                   filename="owners.csv", content_type="text/csv")
    resp = await client.post("/api/console/import/owners", data=form, headers=headers)
    assert resp.status == 200 and (await resp.json())["rows"] == 1
    roster = await (await client.get("/api/console/roster", params={"q": "新业主"})).json()
    assert roster["owners"][0]["unit"] == "3-2-1502"
