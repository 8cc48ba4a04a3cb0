"""The desk as staff surfaces use it: Telegram group cards, the WeCom staff page and the web pane call these and
nothing else. Each method is one transaction; what it queues reaches the delivery worker when it commits.

Adapters hold `StaffRef`s and plain views between requests, never ORM objects or sessions.
"""
from __future__ import annotations

from typing import Any

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from config.settings import Settings
from models import Attachment, Conversation, Estate, Person, PostedCard, Staff, StaffEstate, Ticket
from models.lifecycle import OPEN_STATUSES

from bot.clock import Clock
from bot.delivery.media import MediaStore
from bot.desk import bindings, staff_actions
from bot.desk.access import NoAccess, StaffRef, access_ticket, active_staff, staff_of_chat, visible_tickets
from bot.desk.group_cards import GroupCard, build_group_card
from bot.desk.routing import Dispatch
from bot.desk.signing import check_password
from bot.desk.staff_actions import StaffActionError, staff_ticket_view, staff_ticket_views
from bot.jobs.notices import send_notice

MAX_PROMPTS = 50  # reason prompts remembered per group
URGENCY_RANK = {"emergency": 0, "high": 1, "normal": 2, "low": 3}
# Checked against when the phone is unknown, so a wrong phone costs as long as a wrong password.
_NO_SUCH_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64


@dataclass(frozen=True)
class TicketLine:
    """One line of a ticket list (/open, /mine): what it is and how long until (or since) its next deadline."""

    number: str
    urgency: str
    category: str
    status: str
    due_at: datetime | None


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    hidden: bool = False


class StaffDesk:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, dispatch: Dispatch,
                 media: MediaStore, on_queued: Callable[[], None]):
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.dispatch = dispatch
        self.media = media
        self.on_queued = on_queued

    # -- who is acting -------------------------------------------------------------------------------------
    async def staff_by_chat(self, channel: str, external_id: str) -> StaffRef | None:
        async with self.sessionmaker() as s:
            return await staff_of_chat(s, channel, external_id)

    async def staff_by_id(self, staff_id: int) -> StaffRef | None:
        async with self.sessionmaker() as s:
            return await active_staff(s, staff_id)

    async def sign_in(self, phone: str, password: str) -> StaffRef | None:
        """The staff member with this phone and password; the hash is checked off the event loop, and as long for
        an unknown phone as for a known one."""
        async with self.sessionmaker() as s:
            staff = await s.scalar(select(Staff).join(Person, Person.id == Staff.person_id)
                                   .where(Person.phone == phone, Staff.active.is_(True))
                                   .options(selectinload(Staff.person)))
            ref = await active_staff(s, staff.id) if staff is not None else None
            stored = staff.password_hash if staff is not None else None
        ok = await asyncio.to_thread(check_password, password, stored or _NO_SUCH_HASH)
        return ref if ok and stored else None

    async def office_view(self) -> StaffRef:
        """The whole office, every estate: what the demo web pane reads as (it has no sign-in)."""
        async with self.sessionmaker() as s:
            estates = frozenset((await s.scalars(select(Estate.id))).all())
        return StaffRef(0, "office", "admin", None, estates)

    async def members(self) -> list[StaffRef]:
        async with self.sessionmaker() as s:
            rows = (await s.scalars(select(Staff).where(Staff.active.is_(True))
                                    .options(selectinload(Staff.person)).order_by(Staff.id))).all()
            estates = await _estates_by_staff(s, [st.id for st in rows])
        return [StaffRef(st.id, st.person.name, st.role, st.trade, estates.get(st.id, frozenset())) for st in rows]

    # -- reading tickets -----------------------------------------------------------------------------------
    async def ticket_view(self, staff: StaffRef, number: str) -> dict[str, Any] | None:
        """Everything a staff surface shows about a ticket, or None when it does not exist for this staff member."""
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket(s, staff, number)
            except NoAccess:
                return None
            return await staff_ticket_view(s, ticket, self.clock)

    async def group_card(self, staff: StaffRef, number: str, lang: str | None = None) -> GroupCard | None:
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket(s, staff, number)
            except NoAccess:
                return None
            return await build_group_card(s, ticket, self.clock, lang or self.settings.staff_lang)

    async def pane_tickets(self, staff: StaffRef, limit: int = 100) -> list[dict[str, Any]]:
        """Open tickets (emergencies first) and those changed today, as the web pane lists them."""
        cutoff = self.clock.now().replace(hour=0, minute=0, second=0)
        open_statuses = [str(x) for x in OPEN_STATUSES]
        async with self.sessionmaker() as s:
            query = visible_tickets(staff, select(Ticket).where(
                or_(Ticket.status.in_(open_statuses), Ticket.updated_at >= cutoff)))
            rows = (await s.scalars(query.order_by(Ticket.id.desc()).limit(limit))).all()
            rows = sorted(rows, key=lambda t: (t.status not in open_statuses, URGENCY_RANK.get(t.urgency, 9), -t.id))
            return await staff_ticket_views(s, list(rows), self.clock)

    async def open_in_group(self, staff: StaffRef, channel: str, chat_id: str, limit: int = 50) -> list[TicketLine]:
        """Open tickets whose card is in this group."""
        query = (select(Ticket).join(PostedCard, PostedCard.ticket_id == Ticket.id)
                 .where(PostedCard.channel == channel, PostedCard.chat_id == chat_id))
        return await self._lines(staff, query, limit)

    async def assigned_to(self, staff: StaffRef, limit: int = 50) -> list[TicketLine]:
        return await self._lines(staff, select(Ticket).where(Ticket.assignee_id == staff.id), limit)

    async def _lines(self, staff: StaffRef, query: Select[Any], limit: int) -> list[TicketLine]:
        query = visible_tickets(staff, query.where(Ticket.status.in_([str(x) for x in OPEN_STATUSES])))
        async with self.sessionmaker() as s:
            tickets = (await s.scalars(query.order_by(Ticket.id).limit(limit))).all()
        return [TicketLine(tk.number, tk.urgency, tk.category, tk.status,
                           tk.claim_due_at if tk.status in ("new", "rejected", "reopened") else tk.resolve_due_at)
                for tk in tickets]

    async def ticket_of_card(self, channel: str, chat_id: str, message_id: str) -> str | None:
        """The ticket a posted card is about, from the group and the card's message."""
        async with self.sessionmaker() as s:
            number: str | None = await s.scalar(
                select(Ticket.number).join(PostedCard, PostedCard.ticket_id == Ticket.id)
                .where(PostedCard.channel == channel, PostedCard.chat_id == chat_id,
                       PostedCard.message_id == message_id))
        return number

    async def contact(self, staff: StaffRef, number: str) -> Contact | None:
        """The reporter's name and phone in full (cards mask them); None when there is no such ticket."""
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket(s, staff, number)
            except NoAccess:
                return None
            if ticket.anonymous:
                return Contact("", "", hidden=True)
            person = await s.get(Person, ticket.reporter_id) if ticket.reporter_id else None
            return Contact(person.name if person else "",
                           ticket.contact_phone or (person.phone if person else "") or "")

    async def assignee_choices(self, staff: StaffRef, number: str, limit: int = 20) -> list[StaffRef]:
        """Who a ticket can be passed to: active staff of its estate."""
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket(s, staff, number)
            except NoAccess:
                return []
            query = (select(Staff).where(Staff.active.is_(True)).options(selectinload(Staff.person))
                     .order_by(Staff.id))
            if ticket.estate_id:
                query = query.join(StaffEstate, StaffEstate.staff_id == Staff.id).where(
                    StaffEstate.estate_id == ticket.estate_id)
            rows = (await s.scalars(query.limit(limit))).all()
        return [StaffRef(st.id, st.person.name, st.role, st.trade, frozenset()) for st in rows]

    async def photo(self, staff: StaffRef, number: str, index: int) -> bytes | None:
        """The ticket's `index`-th photo (in the order added), whichever channel it came through; None if none."""
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket(s, staff, number)
            except NoAccess:
                return None
            refs = (await s.scalars(select(Attachment.ref).where(Attachment.ticket_id == ticket.id)
                                    .order_by(Attachment.id))).all()
        return await self.media.fetch(refs[index]) if 0 <= index < len(refs) else None

    # -- changing tickets ----------------------------------------------------------------------------------
    async def act(self, staff: StaffRef, number: str, action: str, *, note: str = "", photo: str = "",
                  assignee_id: int | None = None, channel: str = "web") -> dict[str, Any]:
        """Apply a staff action; the ticket as staff now see it. Raises StaffActionError with a readable reason."""
        async with self.sessionmaker() as s, s.begin():
            ticket = await staff_actions.act(s, self.clock, number=number, staff_id=staff.id, action=action,
                                             note=note, photo=photo, assignee_id=assignee_id, channel=channel,
                                             dispatch=self.dispatch)
            view = await staff_ticket_view(s, ticket, self.clock)
        self.on_queued()
        return view

    # -- a group's pending questions (e.g. "why do you reject BX-…?") ----------------------------------------
    async def remember_prompt(self, channel: str, chat_id: str, message_id: str, number: str) -> None:
        """Which prompt asks about which ticket, kept with the group's conversation row."""
        async with self.sessionmaker() as s, s.begin():
            conv = await s.get(Conversation, (channel, chat_id), with_for_update=True)
            if conv is None:
                conv = Conversation(channel=channel, chat_id=chat_id, flow="staff", state="group", data={},
                                    updated_at=self.clock.now())
                s.add(conv)
            prompts = dict((conv.data or {}).get("reject_prompts", {}))
            prompts[message_id] = number
            conv.data = {**(conv.data or {}), "reject_prompts": dict(list(prompts.items())[-MAX_PROMPTS:])}
            conv.updated_at = self.clock.now()

    async def prompted(self, channel: str, chat_id: str, message_id: str) -> str | None:
        async with self.sessionmaker() as s:
            conv = await s.get(Conversation, (channel, chat_id))
        prompts: dict[str, str] = (conv.data or {}).get("reject_prompts", {}) if conv else {}
        return prompts.get(message_id)

    # -- homes and notices -------------------------------------------------------------------------------
    async def pending_bindings(self, staff: StaffRef) -> list[dict[str, Any]]:
        async with self.sessionmaker() as s:
            return await bindings.pending(s, staff.estate_ids)

    async def decide_binding(self, staff: StaffRef, binding_id: int, approve: bool) -> dict[str, Any] | None:
        async with self.sessionmaker() as s, s.begin():
            binding = await bindings.decide(s, self.clock, binding_id, approve, staff.estate_ids)
            result = {"id": binding.id, "status": binding.status} if binding is not None else None
        if result is not None:
            self.on_queued()
        return result

    async def send_notice(self, staff: StaffRef | None, estate: str, buildings: list[str], text: str) -> int:
        """Queue a notice to the owners of the buildings; how many chat accounts. LookupError for an estate the
        staff member does not work for (or that does not exist)."""
        async with self.sessionmaker() as s, s.begin():
            estate_id = await s.scalar(select(Estate.id).where(Estate.code == estate))
            if estate_id is None or (staff is not None and estate_id not in staff.estate_ids):
                raise LookupError(f"no estate {estate}")
            count = await send_notice(s, self.settings, self.clock, estate=estate, buildings=buildings, text=text)
        self.on_queued()
        return count


async def _estates_by_staff(session: AsyncSession, staff_ids: list[int]) -> dict[int, frozenset[int]]:
    rows = (await session.execute(select(StaffEstate.staff_id, StaffEstate.estate_id)
                                  .where(StaffEstate.staff_id.in_(staff_ids)))).all() if staff_ids else []
    out: dict[int, set[int]] = {}
    for staff_id, estate_id in rows:
        out.setdefault(staff_id, set()).add(estate_id)
    return {k: frozenset(v) for k, v in out.items()}


__all__ = ["Contact", "StaffActionError", "StaffDesk", "StaffRef", "TicketLine"]
