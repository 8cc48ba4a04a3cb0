"""The desk as staff surfaces use it: Telegram group cards, the WeCom staff page and the staff console call these and
nothing else. Each method is one transaction; what it queues reaches the delivery worker when it commits.

Adapters hold `StaffRef`s and plain views between requests, never ORM objects or sessions.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from config.settings import Settings
from models import (Attachment, Binding, Building, ClassifierCorrection, Conversation, Estate, Person, PostedCard,
                    Residency, Staff, StaffEstate, Status, Ticket, TicketEvent, TicketNote, Unit)
from models.lifecycle import OPEN_STATUSES

from bot.clock import Clock
from bot.delivery.media import MediaStore
from bot.desk import bindings, console_queries, staff_actions
from bot.desk.access import (NoAccess, StaffRef, access_ticket_as, active_staff, may, may_act,
                             PERMISSIONS, scoped_tickets, staff_of_chat, visible_tickets)
from bot.desk.console_queries import TicketFilter
from bot.desk.ticket_service import TicketService
from bot.desk.group_cards import GroupCard, build_group_card
from bot.desk.routing import Dispatch
from bot.desk.signing import check_password
from bot.desk.staff_actions import StaffActionError, staff_ticket_view
from bot.jobs.notices import send_notice

MAX_PROMPTS = 50  # reason prompts remembered per group
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
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 dispatch: Dispatch, media: MediaStore, on_queued: Callable[[], None]):
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

    # -- reading tickets -----------------------------------------------------------------------------------
    async def ticket_view(self, staff: StaffRef, number: str) -> dict[str, Any] | None:
        """Everything a staff surface shows about a ticket, or None when it does not exist for this staff member."""
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket_as(s, staff, number)
            except NoAccess:
                return None
            return await _view_for(s, staff, ticket, self.clock)

    async def group_card(self, staff: StaffRef, number: str, lang: str | None = None) -> GroupCard | None:
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket_as(s, staff, number)
            except NoAccess:
                return None
            return await build_group_card(s, ticket, self.clock, lang or self.settings.staff_lang)

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
                ticket = await access_ticket_as(s, staff, number)
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
                ticket = await access_ticket_as(s, staff, number)
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
                ticket = await access_ticket_as(s, staff, number)
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
            if staff.id:  # the role's rules (the office view of a test harness, id 0, has none to apply)
                try:
                    current = await access_ticket_as(s, staff, number)
                except NoAccess:
                    raise StaffActionError(f"no ticket {number}") from None
                if not may_act(staff, action, current):
                    raise StaffActionError(f"a {staff.role} may not {action} this ticket / 无权执行此操作")
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


    # -- the staff console ----------------------------------------------------------------------------------
    async def console_list(self, staff: StaffRef, f: "TicketFilter") -> dict[str, Any]:
        """A page of the console's ticket list (see bot.desk.console_queries)."""
        async with self.sessionmaker() as s:
            return await console_queries.list_tickets(s, staff, f, self.clock.now())

    async def console_meta(self, staff: StaffRef) -> dict[str, Any]:
        """What the console's filters and forms offer this staff member: their estates with buildings, their
        colleagues (to assign to), the labels, and what their role permits."""
        from handlers.common import COMPLAINT_CATEGORIES, REPAIR_CATEGORIES, URGENCIES

        async with self.sessionmaker() as s:
            estates = (await s.scalars(select(Estate).where(Estate.id.in_(sorted(staff.estate_ids)))
                                       .options(selectinload(Estate.buildings)).order_by(Estate.code))).all()
            colleagues = (await s.scalars(
                select(Staff).where(Staff.active.is_(True), Staff.id.in_(
                    select(StaffEstate.staff_id).where(StaffEstate.estate_id.in_(sorted(staff.estate_ids)))))
                .options(selectinload(Staff.person)).order_by(Staff.id))).all()
        return {
            "me": {"id": staff.id, "name": staff.name, "role": staff.role, "trade": staff.trade},
            "permissions": sorted(PERMISSIONS.get(staff.role, frozenset())),
            "estates": [{"code": e.code, "name": e.name, "buildings": sorted(b.name for b in e.buildings)}
                        for e in estates],
            "staff": [{"id": st.id, "name": st.person.name, "role": st.role, "trade": st.trade} for st in colleagues],
            "kinds": ["repair", "complaint"], "urgencies": URGENCIES,
            "categories": {"repair": REPAIR_CATEGORIES, "complaint": COMPLAINT_CATEGORIES},
            "statuses": [str(x) for x in Status], "channels": ["web", "telegram", "wechat"],
        }

    async def console_ticket(self, staff: StaffRef, number: str) -> dict[str, Any] | None:
        """A ticket's page: the staff view plus its timeline (events, internal notes, deadlines met or missed), the
        owner with their bound homes and earlier tickets, and the actions this staff member may take."""
        async with self.sessionmaker() as s:
            try:
                ticket = await access_ticket_as(s, staff, number)
            except NoAccess:
                return None
            view = await _view_for(s, staff, ticket, self.clock)
            extra = [a for a in ("assign", "reopen", "reclassify", "note") if may_act(staff, a, ticket)]
            if "reopen" in extra and ticket.status not in ("resolved", "closed"):
                extra.remove("reopen")
            if "assign" in extra and ticket.status not in OPEN_STATUSES:
                extra.remove("assign")
            view["console_actions"] = extra
            view["estate"] = await s.scalar(select(Estate.code).where(Estate.id == ticket.estate_id)) or ""
            view["assignee_id"] = ticket.assignee_id
            names = dict((await s.execute(select(Staff.id, Person.name).join(Person, Person.id == Staff.person_id)
                                          )).all())
            timeline: list[dict[str, Any]] = []
            for e in view["events"]:
                who = e["actor"]
                if who.startswith("staff:") and who[6:].isdigit():
                    who = names.get(int(who[6:]), who)
                timeline.append({**e, "type": "event", "who": who,
                                 "direction": "to_owner" if e["action"] == "comment" and e["actor"].startswith(
                                     "staff:") else ("from_owner" if e["actor"].startswith("owner") else "")})
            for note in (await s.scalars(select(TicketNote).where(TicketNote.ticket_id == ticket.id)
                                         .order_by(TicketNote.id))).all():
                timeline.append({"type": "note", "at": note.created_at.isoformat() + "Z",
                                 "who": names.get(note.staff_id, ""), "note": note.text, "action": "note"})
            now = self.clock.now()
            done_at = {"claim_due_at": ticket.claimed_at, "arrive_due_at": ticket.started_at,
                       "resolve_due_at": ticket.resolved_at}
            for field_name, done in done_at.items():
                due = getattr(ticket, field_name)
                if due is None:
                    continue
                state = ("met" if done <= due else "missed") if done else ("missed" if now > due else "pending")
                timeline.append({"type": "deadline", "at": due.isoformat() + "Z", "action": field_name[:-7],
                                 "state": state, "who": "", "note": ""})
            timeline.sort(key=lambda x: x["at"])
            view["timeline"] = timeline
            view["owner"] = None
            if ticket.reporter_id and not ticket.anonymous:
                person = await s.get(Person, ticket.reporter_id)
                homes = or_(Unit.id.in_(select(Binding.unit_id).where(Binding.person_id == ticket.reporter_id,
                                                                      Binding.status == "active")),
                            Unit.id.in_(select(Residency.unit_id).where(Residency.person_id == ticket.reporter_id)))
                units = (await s.execute(select(Unit.entrance, Unit.room, Building.name, Estate.code)
                                         .join(Building, Building.id == Unit.building_id)
                                         .join(Estate, Estate.id == Building.estate_id)
                                         .where(homes).order_by(Unit.id))).all()
                earlier = (await s.execute(scoped_tickets(staff, select(Ticket.number, Ticket.status,
                                                                         Ticket.category, Ticket.created_at))
                                           .where(Ticket.reporter_id == ticket.reporter_id, Ticket.id != ticket.id)
                                           .order_by(Ticket.id.desc()).limit(10))).all()
                view["owner"] = {
                    "name": person.name if person else "", "phone": ticket.contact_phone or (
                        person.phone if person else "") or "",
                    "units": [f"{e} {b}-{en}-{r}" for en, r, b, e in units],
                    "earlier": [{"number": n, "status": st, "category": c, "created_at": at.isoformat() + "Z"}
                                for n, st, c, at in earlier]}
            view["photo_count"] = len(view["photos"])
            view["photos"] = list(range(len(view["photos"])))  # fetched through the signed-in photo route
            return view

    async def assign(self, staff: StaffRef, number: str, assignee_id: int) -> dict[str, Any]:
        """Dispatch an unclaimed ticket to a colleague, or transfer a claimed one (转派)."""
        async with self.sessionmaker() as s, s.begin():
            ticket = await _ticket_for(s, staff, number, "assign",
                                       f"a {staff.role} may not assign tickets / 无权派单")
            assignee = await active_staff(s, assignee_id)
            if assignee is None or (ticket.estate_id is not None and ticket.estate_id not in assignee.estate_ids):
                raise StaffActionError("the new assignee does not work for this ticket's estate")
            if ticket.status in ("new", "rejected", "reopened"):
                await TicketService(s, self.clock, self.dispatch).transition(
                    ticket, "claim", f"staff:{staff.id}", f"→ {assignee.name}", assignee_id=assignee.id)
            else:
                await staff_actions.act(s, self.clock, number=number, staff_id=staff.id, action="reassign",
                                        assignee_id=assignee.id, dispatch=self.dispatch)
            view = await staff_ticket_view(s, ticket, self.clock)
        self.on_queued()
        return view

    async def reopen(self, staff: StaffRef, number: str, note: str) -> dict[str, Any]:
        note = note.strip()[:1000]
        if not note:
            raise StaffActionError("reopening needs a reason / 重开需要原因")
        async with self.sessionmaker() as s, s.begin():
            ticket = await _ticket_for(s, staff, number, "reopen",
                                       f"a {staff.role} may not reopen tickets / 无权重开")
            try:
                await TicketService(s, self.clock, self.dispatch).transition(ticket, "reopen", f"staff:{staff.id}",
                                                                             note)
            except ValueError as exc:
                raise StaffActionError(str(exc)) from None
            view = await staff_ticket_view(s, ticket, self.clock)
        self.on_queued()
        return view

    async def reclassify(self, staff: StaffRef, number: str, kind: str, category: str,
                         urgency: str) -> dict[str, Any]:
        """Correct a ticket's labels; the owner's text with the old and new labels is kept for the classifier."""
        from handlers.common import COMPLAINT_CATEGORIES, REPAIR_CATEGORIES, URGENCIES

        if kind not in ("repair", "complaint") or urgency not in URGENCIES or category not in (
                REPAIR_CATEGORIES if kind == "repair" else COMPLAINT_CATEGORIES):
            raise StaffActionError("unknown kind, category or urgency")
        async with self.sessionmaker() as s, s.begin():
            ticket = await _ticket_for(s, staff, number, "reclassify",
                                       f"a {staff.role} may not reclassify tickets / 无权修改分类")
            old = (ticket.kind, ticket.category, ticket.urgency)
            if old == (kind, category, urgency):
                return await staff_ticket_view(s, ticket, self.clock)
            s.add(ClassifierCorrection(ticket_id=ticket.id, estate_id=ticket.estate_id, staff_id=staff.id,
                                       text=ticket.description or ticket.subject, old_kind=old[0],
                                       old_category=old[1], old_urgency=old[2], kind=kind, category=category,
                                       urgency=urgency, created_at=self.clock.now()))
            ticket.kind, ticket.category, ticket.urgency = kind, category, urgency
            ticket.updated_at = self.clock.now()
            await TicketService(s, self.clock, self.dispatch).event(
                ticket, f"staff:{staff.id}", "reclassify", f"{'/'.join(old)} → {kind}/{category}/{urgency}")
            view = await staff_ticket_view(s, ticket, self.clock)
        return view

    async def add_note(self, staff: StaffRef, number: str, text: str) -> None:
        """An internal note: on the ticket's timeline for staff, never sent to the owner."""
        text = text.strip()[:2000]
        if not text:
            raise StaffActionError("a note needs text")
        async with self.sessionmaker() as s, s.begin():
            try:
                ticket = await access_ticket_as(s, staff, number)
            except NoAccess:
                raise StaffActionError(f"no ticket {number}") from None
            if not may_act(staff, "note", ticket):
                raise StaffActionError("may not add notes")
            s.add(TicketNote(ticket_id=ticket.id, staff_id=staff.id, text=text, created_at=self.clock.now()))

    async def bulk(self, staff: StaffRef, numbers: list[str], action: str,
                   assignee_id: int | None = None) -> dict[str, str]:
        """Assign or close several tickets; each one's outcome ("ok" or the reason it was not done)."""
        if not may(staff, "bulk"):
            raise StaffActionError(f"a {staff.role} may not change tickets in bulk")
        out: dict[str, str] = {}
        for number in numbers[:100]:
            try:
                if action == "assign" and assignee_id is not None:
                    await self.assign(staff, number, assignee_id)
                elif action == "close":
                    await self._close(staff, number)
                else:
                    raise StaffActionError(f"unknown bulk action {action}")
                out[number] = "ok"
            except StaffActionError as exc:
                out[number] = str(exc)
        return out

    async def _close(self, staff: StaffRef, number: str) -> None:
        async with self.sessionmaker() as s, s.begin():
            try:
                ticket = await access_ticket_as(s, staff, number, lock=True)
            except NoAccess:
                raise StaffActionError(f"no ticket {number}") from None
            try:
                await TicketService(s, self.clock, self.dispatch).transition(ticket, "close", f"staff:{staff.id}",
                                                                             "closed by staff")
            except ValueError as exc:
                raise StaffActionError(str(exc)) from None
        self.on_queued()

    async def notice_preview(self, staff: StaffRef, estate: str, buildings: list[str]) -> dict[str, Any]:
        """How many owners and chat accounts (by channel) a notice would reach. LookupError as send_notice."""
        async with self.sessionmaker() as s:
            estate_id = await s.scalar(select(Estate.id).where(Estate.code == estate))
            if estate_id is None or estate_id not in staff.estate_ids:
                raise LookupError(f"no estate {estate}")
            return await console_queries.notice_audience(s, estate_id, buildings)

    async def import_roster(self, staff: StaffRef, what: str, path: str) -> dict[str, Any]:
        """Import owners or bills from a file, all or nothing (bot.desk.roster_import); rows of estates the staff
        member does not work for are errors too. {"rows", "created", "updated"} or {"errors": [[row, message]]}."""
        from bot.desk.roster_import import ImportError_, import_bills, import_owners, read_rows

        async with self.sessionmaker() as s:
            mine = set((await s.scalars(select(Estate.code).where(Estate.id.in_(sorted(staff.estate_ids))))).all())
        try:
            foreign = [(n, f"estate {row.get('estate', '')!r} is not one of yours")
                       for n, row in read_rows(path) if (row.get("estate") or "").strip() not in mine]
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return {"errors": [[0, f"cannot read the file: {exc}"]]}
        if foreign:
            return {"errors": [list(e) for e in foreign[:200]]}
        fn = import_owners if what == "owners" else import_bills
        try:
            async with self.sessionmaker() as s, s.begin():
                result = await fn(s, path)
        except ImportError_ as exc:
            return {"errors": [list(e) for e in exc.errors[:200]]}
        except (OSError, UnicodeDecodeError, ValueError, KeyError) as exc:
            return {"errors": [[0, f"cannot read the file: {exc}"]]}
        return {"rows": result.rows, "created": result.created, "updated": result.updated}

    async def roster(self, staff: StaffRef, q: str, limit: int = 50) -> list[dict[str, Any]]:
        """Owners on the roster of the staff member's estates, by name, phone or home."""
        q = q.strip()[:50]
        query = (select(Person.id, Person.name, Person.phone, Residency.role, Building.name, Unit.entrance,
                        Unit.room, Estate.code)
                 .join(Residency, Residency.person_id == Person.id).join(Unit, Unit.id == Residency.unit_id)
                 .join(Building, Building.id == Unit.building_id).join(Estate, Estate.id == Building.estate_id)
                 .where(Estate.id.in_(sorted(staff.estate_ids))))
        if q:
            like = "%" + q.replace("%", "").replace("_", "") + "%"
            parts = q.split("-")
            clause = or_(Person.name.ilike(like), Person.phone == q)
            if len(parts) == 3:
                clause = or_(clause, and_(Building.name == parts[0], Unit.entrance == parts[1],
                                          Unit.room == parts[2]))
            query = query.where(clause)
        async with self.sessionmaker() as s:
            rows = (await s.execute(query.order_by(Person.id).limit(limit))).all()
        return [{"person_id": pid, "name": name, "phone": phone or "", "role": role,
                 "unit": f"{b}-{e}-{r}", "estate": code} for pid, name, phone, role, b, e, r, code in rows]

    async def changes_since(self, staff: StaffRef, after_event: int | None,
                            limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Ticket events after `after_event` (None: none, just the latest id) on tickets this staff member sees:
        what the console's live stream sends."""
        async with self.sessionmaker() as s:
            if after_event is None:
                return [], int(await s.scalar(select(func.max(TicketEvent.id))) or 0)
            rows = (await s.execute(scoped_tickets(staff, select(
                TicketEvent.id, TicketEvent.action, TicketEvent.to_status, Ticket.number, Ticket.urgency,
                Ticket.status).join(Ticket, Ticket.id == TicketEvent.ticket_id))
                .where(TicketEvent.id > after_event).order_by(TicketEvent.id).limit(limit))).all()
            last = int(await s.scalar(select(func.max(TicketEvent.id))) or 0) if len(rows) < limit else rows[-1][0]
        return ([{"event": eid, "action": action, "number": number, "urgency": urgency, "status": status}
                 for eid, action, _to, number, urgency, status in rows], max(last, after_event))


async def _view_for(s: AsyncSession, staff: StaffRef, ticket: Ticket, clock: Clock) -> dict[str, Any]:
    """The staff view of a ticket with only the actions this staff member may take on it."""
    view = await staff_ticket_view(s, ticket, clock)
    view["actions"] = [a for a in view["actions"] if may_act(staff, a, ticket)]
    return view


async def _ticket_for(s: AsyncSession, staff: StaffRef, number: str, action: str, refusal: str) -> Ticket:
    """The ticket, locked, when this staff member may see it and may take `action` on it; StaffActionError otherwise
    (with `refusal` when it is their role that forbids it)."""
    try:
        ticket = await access_ticket_as(s, staff, number, lock=True)
    except NoAccess:
        raise StaffActionError(f"no ticket {number}") from None
    if not may_act(staff, action, ticket):
        raise StaffActionError(refusal)
    return ticket


__all__ = ["Contact", "StaffActionError", "StaffDesk", "StaffRef", "TicketLine"]
