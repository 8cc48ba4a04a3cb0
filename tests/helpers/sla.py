"""An app with the escalation ladder's three staff groups, and ways to read what it queued."""
from __future__ import annotations

from sqlalchemy import select

from bot.app import App
from bot.desk.ticket_service import TicketService
from config.settings import StaffGroup
from models import OutboxMessage, Ticket

GROUPS = {"team": StaffGroup(channel="chat", chat_id="-1"), "supervisors": StaffGroup(channel="chat", chat_id="-2"),
          "managers": StaffGroup(channel="chat", chat_id="-3")}


async def create(app: App, urgency: str, kind: str = "repair", category: str = "water") -> str:
    async with app.sessionmaker() as s, s.begin():
        tk = await TicketService(s, app.clock, app.engine.dispatch).create(
            kind=kind, category=category, urgency=urgency, description="test", channel="test", reporter_id=None,
            actor="test")
        return tk.number


async def texts(app: App, chat_id: str) -> list[str]:
    async with app.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id,
                                                             OutboxMessage.kind == "message")
                                .order_by(OutboxMessage.id))).all()
    return [r.payload["text"] for r in rows]


async def ticket(app: App, number: str) -> Ticket:
    async with app.sessionmaker() as s:
        return await s.scalar(select(Ticket).where(Ticket.number == number))
