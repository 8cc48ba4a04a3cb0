"""The staff pane beside the web chat: tickets as they arrive, and claim / start / resolve / reject / comment."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from bot.desk import bindings
from bot.app import App
from bot.jobs.notices import send_notice
from bot.delivery.media import image_type
from bot.desk.staff_actions import StaffActionError, act, staff_ticket_view, ticket_photo
from models import Estate, Staff, Ticket

OPEN = ("new", "assigned", "in_progress", "on_hold", "rejected", "reopened")


class StaffPane:
    def __init__(self, app: App):
        self.app = app

    async def staff(self, request: web.Request) -> web.Response:
        async with self.app.sessionmaker() as s:
            rows = (await s.scalars(select(Staff).where(Staff.active.is_(True))
                                    .options(selectinload(Staff.person)).order_by(Staff.id))).all()
        return web.json_response([{"id": st.id, "name": st.person.name, "role": st.role, "trade": st.trade}
                                  for st in rows])

    async def tickets(self, request: web.Request) -> web.Response:
        """Open tickets (emergencies first) and the last resolved ones."""
        async with self.app.sessionmaker() as s:
            cutoff = self.app.clock.now().replace(hour=0, minute=0, second=0)
            rows = (await s.scalars(select(Ticket).where(or_(Ticket.status.in_(OPEN), Ticket.updated_at >= cutoff))
                                    .order_by(Ticket.id.desc()).limit(100))).all()
            urgency = {"emergency": 0, "high": 1, "normal": 2, "low": 3}
            rows = sorted(rows, key=lambda t: (t.status not in OPEN, urgency.get(t.urgency, 9), -t.id))
            cards = [await staff_ticket_view(s, t, self.app.clock) for t in rows]
        return web.json_response({"tickets": cards})

    async def ticket(self, request: web.Request) -> web.Response:
        async with self.app.sessionmaker() as s:
            tk = await s.scalar(select(Ticket).where(Ticket.number == request.match_info["number"]))
            if tk is None:
                return web.json_response({"error": "no such ticket"}, status=404)
            return web.json_response(await staff_ticket_view(s, tk, self.app.clock))

    async def photo(self, request: web.Request) -> web.Response:
        """A ticket's photo, whichever channel it came through (fetched from there once, then kept)."""
        body = await ticket_photo(self.app, request.match_info["number"], int(request.match_info["index"]))
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
        try:
            async with self.app.sessionmaker() as s, s.begin():
                tk = await act(s, self.app.clock, number=request.match_info["number"], staff_id=staff_id,
                               action=action, note=note, assignee_id=assignee,
                               dispatch=self.app.engine.dispatch)
                card = await staff_ticket_view(s, tk, self.app.clock)
        except StaffActionError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(card)


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
        async with self.app.sessionmaker() as s, s.begin():
            if await s.scalar(select(Estate.id).where(Estate.code == estate)) is None:
                return web.json_response({"error": f"no estate {estate}"}, status=404)
            count = await send_notice(s, self.app.settings, self.app.clock, estate=estate, buildings=buildings,
                                      text=text)
        self.app.wake_delivery()
        return web.json_response({"accounts": count})

    async def bindings(self, request: web.Request) -> web.Response:
        async with self.app.sessionmaker() as s:
            return web.json_response({"bindings": await bindings.pending(s)})

    async def decide_binding(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            approve = bool(data["approve"])
            binding_id = int(request.match_info["id"])
        except Exception:  # noqa: BLE001
            return web.json_response({"error": "expected JSON with approve"}, status=400)
        async with self.app.sessionmaker() as s, s.begin():
            binding = await bindings.decide(s, self.app.clock, binding_id, approve)
            if binding is None:
                return web.json_response({"error": "no pending binding with that id"}, status=404)
            return web.json_response({"id": binding.id, "status": binding.status})


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
