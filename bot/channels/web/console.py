"""The staff console at /console: sign in, then tickets (list, filters, search, live updates, every action), owners
and homes (roster, bindings, imports) and notices. Every /api/console route but sign-in needs a signed-in staff
session; every state change needs the session's CSRF token (header X-CSRF-Token) and a same-origin request
(bot/channels/web/security.py); what a staff member sees and may do is decided in bot/desk/access.py.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import tempfile
from functools import wraps
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from bot.app import App
from bot.channels.web.security import _with_headers, client_address, is_https
from bot.delivery.media import image_type
from bot.delivery.uploads import save_upload
from bot.desk.access import may
from bot.desk.console_queries import TicketFilter
from bot.desk.group_cards import NUMBER_RE
from bot.desk.staff_auth import Session, StaffAuth, csrf_ok
from bot.desk.staff_desk import StaffActionError

log = logging.getLogger("propdesk.console")
STATIC = Path(__file__).resolve().parent / "console_static"
COOKIE = "propdesk_console"
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLOSING = web.AppKey("console_closing", asyncio.Event)
SESSION = web.RequestKey("console_session", Session)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except Exception:  # noqa: BLE001
        return None
    return data if isinstance(data, dict) else None


class Console:
    def __init__(self, app: App):
        self.app = app
        self.desk = app.staff_desk
        self.auth = StaffAuth(app.sessionmaker, app.settings, app.clock, app.staff_desk)

    # -- the gate every route but sign-in passes -----------------------------------------------------------
    def signed_in(self, permission: str | None = None) -> Callable[[Handler], Handler]:
        def wrap(handler: Handler) -> Handler:
            @wraps(handler)
            async def guarded(request: web.Request) -> web.StreamResponse:
                session = await self.auth.session(request.cookies.get(COOKIE))
                if session is None:
                    return _error("sign in first / 请先登录", 401)
                if request.method not in ("GET", "HEAD") and not csrf_ok(session,
                                                                          request.headers.get("X-CSRF-Token")):
                    return _error("missing or wrong CSRF token", 403)
                if permission and not may(session.staff, permission):
                    return _error(f"a {session.staff.role} may not do this / 无权操作", 403)
                request[SESSION] = session
                return await handler(request)
            return guarded
        return wrap

    @staticmethod
    def _session(request: web.Request) -> Session:
        session: Session = request[SESSION]
        return session

    # -- pages and sign-in -------------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "console.html", headers={"Cache-Control": "no-store"})

    async def login(self, request: web.Request) -> web.Response:
        data = await _json(request)
        if data is None or not isinstance(data.get("phone"), str) or not isinstance(data.get("password"), str):
            return _error("expected JSON with phone and password", 400)
        result = await self.auth.sign_in(data["phone"][:32], data["password"][:200],
                                         client_address(request, self.app.settings))
        if result.locked_until is not None:
            wait = max(1, int((result.locked_until - self.app.clock.now()).total_seconds()))
            return web.json_response({"error": "too many failed sign-ins; try again later"
                                               " / 登录失败次数过多，请稍后再试",
                                      "retry_after": wait}, status=429, headers={"Retry-After": str(wait)})
        if result.staff is None:
            return _error("wrong phone or password / 手机号或密码不对", 401)
        response = web.json_response({"csrf": result.csrf, "me": {"id": result.staff.id, "name": result.staff.name,
                                                                    "role": result.staff.role}})
        response.set_cookie(COOKIE, result.token, max_age=int(self.app.settings.console_session_hours * 3600),
                            httponly=True, samesite="Lax", secure=is_https(request, self.app.settings), path="/")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        await self.auth.sign_out(request.cookies.get(COOKIE))
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def me(self, request: web.Request) -> web.Response:
        session = self._session(request)
        return web.json_response({"csrf": session.csrf, **await self.desk.console_meta(session.staff)})

    # -- tickets ---------------------------------------------------------------------------------------------
    async def tickets(self, request: web.Request) -> web.Response:
        f = TicketFilter.from_query(request.query)
        return web.json_response(await self.desk.console_list(self._session(request).staff, f))

    async def export(self, request: web.Request) -> web.Response:
        """The filtered list as CSV (up to 5,000 rows)."""
        staff = self._session(request).staff
        f = TicketFilter.from_query(request.query)
        f.limit = 100
        out = io.StringIO()
        columns = ["number", "kind", "category", "urgency", "status", "estate", "unit", "location", "owner",
                   "assignee", "channel", "created_at", "due_at", "overdue", "summary"]
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        for _ in range(50):
            page = await self.desk.console_list(staff, f)
            for row in page["tickets"]:
                writer.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v)
                                 for k, v in row.items()})
            if not page["next"]:
                break
            f.cursor = page["next"]
        return web.Response(body=out.getvalue().encode("utf-8-sig"), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": "attachment; filename=tickets.csv"})

    async def ticket(self, request: web.Request) -> web.Response:
        view = await self.desk.console_ticket(self._session(request).staff, request.match_info["number"])
        if view is None:
            return _error("no such ticket", 404)
        return web.json_response(view)

    async def photo(self, request: web.Request) -> web.Response:
        body = await self.desk.photo(self._session(request).staff, request.match_info["number"],
                                     int(request.match_info["index"]))
        if body is None:
            return _error("no such photo", 404)
        return web.Response(body=body, content_type=image_type(body) or "application/octet-stream",
                            headers={"Cache-Control": "private, max-age=3600"})

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], str] | None:
        """A JSON body, or a multipart form with an optional photo (saved, as its reference)."""
        if request.content_type.startswith("multipart/"):
            try:
                form = await request.post()
            except Exception:  # noqa: BLE001 - oversize or malformed
                return None
            photo = ""
            field = form.get("photo")
            if isinstance(field, web.FileField) and field.content_type in IMAGE_TYPES:
                body = field.file.read()
                if image_type(body) in IMAGE_TYPES:
                    photo = save_upload(self.app.settings.upload_dir, body, IMAGE_TYPES[field.content_type])
            return {k: v for k, v in form.items() if isinstance(v, str)}, photo
        data = await _json(request)
        return (data, "") if data is not None else None

    async def action(self, request: web.Request) -> web.Response:
        parsed = await self._body(request)
        if parsed is None or not isinstance(parsed[0].get("action"), str):
            return _error("expected an action", 400)
        data, photo = parsed
        staff, number, action = self._session(request).staff, request.match_info["number"], data["action"]
        note = str(data.get("note") or "")[:2000]
        try:
            assignee = int(data["assignee_id"]) if data.get("assignee_id") not in (None, "") else None
            if action == "assign":
                if assignee is None:
                    return _error("assign needs assignee_id", 400)
                view = await self.desk.assign(staff, number, assignee)
            elif action == "reopen":
                view = await self.desk.reopen(staff, number, note)
            elif action == "reclassify":
                view = await self.desk.reclassify(staff, number, str(data.get("kind", "")),
                                                  str(data.get("category", "")), str(data.get("urgency", "")))
            elif action == "note":
                await self.desk.add_note(staff, number, note)
                view = {"number": number}
            else:
                view = await self.desk.act(staff, number, action, note=note, photo=photo, assignee_id=assignee,
                                           channel="web")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, StaffActionError):
                status = 404 if str(exc).startswith("no ticket") else 409
                if "may not" in str(exc):
                    status = 403
                return _error(str(exc), status)
            return _error("assignee_id must be a number", 400)
        return web.json_response(view)

    async def bulk(self, request: web.Request) -> web.Response:
        data = await _json(request)
        numbers = data.get("numbers") if data else None
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers) or not data:
            return _error("expected numbers and an action", 400)
        try:
            assignee = int(data["assignee_id"]) if data.get("assignee_id") not in (None, "") else None
            result = await self.desk.bulk(self._session(request).staff, numbers, str(data.get("action")), assignee)
        except (TypeError, ValueError) as exc:
            return _error(str(exc), 400)
        return web.json_response({"results": result})

    # -- owners and homes --------------------------------------------------------------------------------------
    async def bindings(self, request: web.Request) -> web.Response:
        return web.json_response({"bindings": await self.desk.pending_bindings(self._session(request).staff)})

    async def decide_binding(self, request: web.Request) -> web.Response:
        data = await _json(request)
        if data is None or not isinstance(data.get("approve"), bool):
            return _error("expected JSON with approve", 400)
        decided = await self.desk.decide_binding(self._session(request).staff, int(request.match_info["id"]),
                                                 data["approve"])
        if decided is None:
            return _error("no pending binding with that id", 404)
        return web.json_response(decided)

    async def roster(self, request: web.Request) -> web.Response:
        return web.json_response({"owners": await self.desk.roster(self._session(request).staff,
                                                                   request.query.get("q", ""))})

    async def import_file(self, request: web.Request) -> web.Response:
        what = request.match_info["what"]
        try:
            form = await request.post()
        except Exception:  # noqa: BLE001
            return _error("could not read the upload", 413)
        field = form.get("file")
        if not isinstance(field, web.FileField):
            return _error("choose a file", 400)
        suffix = ".xlsx" if str(field.filename or "").lower().endswith((".xlsx", ".xlsm")) else ".csv"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(field.file.read())
            result = await self.desk.import_roster(self._session(request).staff, what, str(path))
        return web.json_response(result, status=422 if "errors" in result else 200)

    # -- notices -------------------------------------------------------------------------------------------
    @staticmethod
    def _notice_fields(data: dict[str, Any] | None) -> tuple[str, list[str], str] | None:
        if data is None or not isinstance(data.get("estate"), str):
            return None
        buildings = [str(b).strip()[:32] for b in data.get("buildings") or [] if str(b).strip()][:50]
        return data["estate"].strip(), buildings, str(data.get("text") or "").strip()

    async def notice_preview(self, request: web.Request) -> web.Response:
        fields = self._notice_fields(await _json(request))
        if fields is None:
            return _error("expected estate and buildings", 400)
        try:
            return web.json_response(await self.desk.notice_preview(self._session(request).staff, *fields[:2]))
        except LookupError:
            return _error(f"no estate {fields[0]}", 404)

    async def notice(self, request: web.Request) -> web.Response:
        fields = self._notice_fields(await _json(request))
        if fields is None or not fields[2] or len(fields[2]) > 1000:
            return _error("estate and a text of at most 1000 characters", 400)
        try:
            count = await self.desk.send_notice(self._session(request).staff, *fields)
        except LookupError:
            return _error(f"no estate {fields[0]}", 404)
        return web.json_response({"accounts": count})

    # -- live updates ----------------------------------------------------------------------------------------
    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: a `ticket` event per change on a ticket this staff member sees."""
        staff = self._session(request).staff
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        _with_headers(response)
        await response.prepare(request)
        closing = request.app[CLOSING]
        try:
            last_id = int(request.headers.get("Last-Event-ID", "") or -1)
        except ValueError:
            last_id = -1
        _, latest = await self.desk.changes_since(staff, None)
        after = last_id if 0 <= last_id <= latest else latest
        await response.write(b"retry: 2000\n\n")
        idle = 0.0
        for _ in range(600):  # about 15 minutes; the browser reconnects with Last-Event-ID
            changes, after = await self.desk.changes_since(staff, after)
            for change in changes:
                await response.write(f"id: {change['event']}\nevent: ticket\ndata: {json.dumps(change)}\n\n".encode())
            idle = 0.0 if changes else idle + 1.5
            if idle >= 15:
                await response.write(b": keep-alive\n\n")
                idle = 0.0
            try:
                await asyncio.wait_for(closing.wait(), 1.5)
                break
            except asyncio.TimeoutError:
                pass
        return response


def setup(webapp: web.Application, app: App) -> None:
    console = Console(app)
    webapp[CLOSING] = asyncio.Event()

    async def on_shutdown(webapp: web.Application) -> None:
        webapp[CLOSING].set()

    webapp.on_shutdown.append(on_shutdown)
    g = console.signed_in
    r = webapp.router
    r.add_get("/console", console.page)
    r.add_static("/console/static", STATIC)
    r.add_post("/api/console/login", console.login)
    r.add_post("/api/console/logout", g()(console.logout))
    r.add_get("/api/console/me", g()(console.me))
    r.add_get("/api/console/tickets", g()(console.tickets))
    r.add_get("/api/console/export.csv", g()(console.export))
    r.add_get(rf"/api/console/tickets/{{number:{NUMBER_RE}}}", g()(console.ticket))
    r.add_get(rf"/api/console/tickets/{{number:{NUMBER_RE}}}/photos/{{index:\d{{1,3}}}}", g()(console.photo))
    r.add_post(rf"/api/console/tickets/{{number:{NUMBER_RE}}}/action", g()(console.action))
    r.add_post("/api/console/bulk", g("bulk")(console.bulk))
    r.add_get("/api/console/bindings", g("bindings")(console.bindings))
    r.add_post(r"/api/console/bindings/{id:\d{1,18}}", g("bindings")(console.decide_binding))
    r.add_get("/api/console/roster", g("bindings")(console.roster))
    r.add_post("/api/console/import/{what:owners|bills}", g("import")(console.import_file))
    r.add_post("/api/console/notices/preview", g("notices")(console.notice_preview))
    r.add_post("/api/console/notices", g("notices")(console.notice))
    r.add_get("/api/console/events", g()(console.events))
