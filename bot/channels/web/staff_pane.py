"""The staff pane beside the web chat: tickets as they arrive, and claim / start / resolve / reject / comment."""
from __future__ import annotations

from aiohttp import web

from bot.app import App
from bot.delivery.media import image_type
from bot.desk.staff_desk import StaffActionError, StaffRef


class StaffPane:
    def __init__(self, app: App):
        self.app = app
        self.desk = app.staff_desk

    async def _viewer(self) -> StaffRef:
        """Who the pane reads as. The demo pane has no sign-in: it reads as the office (every estate) and acts as
        the staff member picked in it."""
        return await self.desk.office_view()

    async def staff(self, request: web.Request) -> web.Response:
        return web.json_response([{"id": st.id, "name": st.name, "role": st.role, "trade": st.trade}
                                  for st in await self.desk.members()])

    async def tickets(self, request: web.Request) -> web.Response:
        """Open tickets (emergencies first) and the last resolved ones."""
        return web.json_response({"tickets": await self.desk.pane_tickets(await self._viewer())})

    async def ticket(self, request: web.Request) -> web.Response:
        view = await self.desk.ticket_view(await self._viewer(), request.match_info["number"])
        if view is None:
            return web.json_response({"error": "no such ticket"}, status=404)
        return web.json_response(view)

    async def photo(self, request: web.Request) -> web.Response:
        """A ticket's photo, whichever channel it came through (fetched from there once, then kept)."""
        body = await self.desk.photo(await self._viewer(), request.match_info["number"],
                                     int(request.match_info["index"]))
        if body is None:
            return web.json_response({"error": "no such photo"}, status=404)
        return web.Response(body=body, content_type=image_type(body), headers={"Cache-Control": "max-age=3600"})

    async def action(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            staff_id = int(data["staff_id"])
            action = str(data["action"])
            note = str(data.get("note") or "")
            assignee = int(data["assignee_id"]) if data.get("assignee_id") is not None else None
        except Exception:  # noqa: BLE001
            return web.json_response({"error": "expected JSON with staff_id and action"}, status=400)
        staff = await self.desk.staff_by_id(staff_id)
        if staff is None:
            return web.json_response({"error": "not an active staff member"}, status=409)
        try:
            view = await self.desk.act(staff, request.match_info["number"], action, note=note, assignee_id=assignee)
        except StaffActionError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(view)

    async def notice(self, request: web.Request) -> web.Response:
        """A notice (a water or power cut) to the owners of the chosen buildings."""
        try:
            data = await request.json()
            estate = str(data["estate"]).strip()
            buildings = [str(b).strip() for b in data.get("buildings") or [] if str(b).strip()]
            text = str(data["text"]).strip()
        except Exception:  # noqa: BLE001
            return web.json_response({"error": "expected JSON with estate, buildings and text"}, status=400)
        if not estate or not text or len(text) > 1000:
            return web.json_response({"error": "estate and a text of at most 1000 characters"}, status=400)
        try:
            count = await self.desk.send_notice(await self._viewer(), estate, buildings, text)
        except LookupError:
            return web.json_response({"error": f"no estate {estate}"}, status=404)
        return web.json_response({"accounts": count})

    async def bindings(self, request: web.Request) -> web.Response:
        return web.json_response({"bindings": await self.desk.pending_bindings(await self._viewer())})

    async def decide_binding(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            approve = bool(data["approve"])
            binding_id = int(request.match_info["id"])
        except Exception:  # noqa: BLE001
            return web.json_response({"error": "expected JSON with approve"}, status=400)
        decided = await self.desk.decide_binding(await self._viewer(), binding_id, approve)
        if decided is None:
            return web.json_response({"error": "no pending binding with that id"}, status=404)
        return web.json_response(decided)


def setup(webapp: web.Application, app: App) -> None:
    pane = StaffPane(app)
    webapp.router.add_get("/api/staff/members", pane.staff)
    webapp.router.add_get("/api/staff/tickets", pane.tickets)
    webapp.router.add_get("/api/staff/tickets/{number}", pane.ticket)
    webapp.router.add_get(r"/api/staff/tickets/{number}/photos/{index:\d{1,3}}", pane.photo)
    webapp.router.add_post("/api/staff/tickets/{number}/action", pane.action)
    webapp.router.add_get("/api/staff/bindings", pane.bindings)
    webapp.router.add_post("/api/staff/notice", pane.notice)
    webapp.router.add_post("/api/staff/bindings/{id}", pane.decide_binding)
