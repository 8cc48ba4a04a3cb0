"""The service desk over the database: what the flows ask for (handlers.ports.Desk), scoped to one person."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Callable, Protocol, Sequence

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from config.i18n import t
from handlers.ports import BillView, EstateView, NewTicket, PaymentView, TicketView, UnitView
from models.lifecycle import OPEN_STATUSES
from models import (Action, Attachment, Binding, Bill, Building, Estate, Payment, Person, Residency, Ticket,
                    TicketEvent, TransitionError, Unit)

from bot.clock import Clock
from bot.desk import escalation
from bot.desk.routing import NO_DISPATCH, Dispatch
from bot.desk.owner_accounts import set_binding
from bot.desk.places import find_place
from bot.desk.staff_accounts import link_staff_identities
from bot.desk.ticket_service import TicketService

OPEN = frozenset(str(s) for s in OPEN_STATUSES)
RELATIONS = ("owner", "family", "tenant")  # a person's relation to a home, as Residency.role


class Classified(Protocol):
    """A classification of a message: its fields as a dict (kind, category, urgency, reasons, ...)."""

    def as_dict(self) -> dict: ...


class TextClassifier(Protocol):
    """What the desk classifies free text with: the rules' Classifier, or the Triager combining them with the model."""

    def classify(self, text: str) -> Classified: ...


def owner(person_id: int) -> str:
    return f"owner:{person_id}"


class DbDesk:
    def __init__(self, session: AsyncSession | Callable[[], AsyncSession], classifier: TextClassifier, clock: Clock,
                 hurry_cooldown_minutes: int = 30, dispatch: Dispatch = NO_DISPATCH, staff_lang: str = "zh",
                 execute: Callable | None = None):
        """`session`: the ORM session, or a function that opens one when a flow first needs it (most
        conversation steps never do, and a session costs more than the step's own statements). `execute`: how
        the read-only views' Core statements run in the same transaction (a conversation step's, see
        models.step_transactions); the session's by default."""
        self._session: AsyncSession | None
        self._open_session: Callable[[], AsyncSession] | None
        if isinstance(session, AsyncSession):
            self._session, self._open_session = session, None
        else:
            self._session, self._open_session = None, session
        self._execute = execute
        self._classified: dict[str, dict] = {}
        self.classifier = classifier
        self.clock = clock
        self.dispatch = dispatch
        self.staff_lang = staff_lang
        self.hurry_cooldown = timedelta(minutes=hurry_cooldown_minutes)

    @property
    def s(self) -> AsyncSession:
        if self._session is None:
            if self._open_session is None:
                raise RuntimeError("the desk has neither a session nor a way to open one")
            self._session = self._open_session()
        return self._session

    @property
    def session_opened(self) -> bool:
        return self._session is not None

    @cached_property
    def tickets(self) -> TicketService:
        return TicketService(self.s, self.clock, self.dispatch)

    async def _rows(self, stmt, params: dict) -> Sequence[Any]:  # noqa: ANN001
        if self._execute is None:
            return (await self.s.execute(stmt, params)).all()
        if self.session_opened:
            await self.s.flush()  # what the flow wrote through the ORM is read back too
        return (await self._execute(stmt, params)).all()

    def classify(self, text: str) -> dict:
        # Kept for the step: free text at the menu is classified to pick a flow, which classifies it again.
        if text not in self._classified:
            self._classified[text] = self.classifier.classify(text).as_dict()
        return dict(self._classified[text])

    async def estates(self) -> list[EstateView]:
        rows = (await self.s.scalars(select(Estate).order_by(Estate.id))).all()
        return [EstateView(e.id, e.name) for e in rows]

    async def estate_of_place(self, place_code: str) -> tuple[int | None, str]:
        place = find_place(place_code)
        if place is None:
            return None, ""
        estate = await self.s.scalar(select(Estate).where(Estate.code == place["estate"]))
        return (estate.id if estate else None), place["name"]

    async def bound_units(self, person_id: int) -> list[UnitView]:
        rows = await self._rows(_BOUND_UNITS, {"person": person_id})
        return [UnitView(r.id, Unit.make_label(r.building, r.entrance, r.room), r.estate_id, r.estate)
                for r in rows]

    async def pending_bindings(self, person_id: int) -> list[str]:
        rows = (await self.s.scalars(select(Binding).where(Binding.person_id == person_id,
                                                            Binding.status == "pending"))).all()
        return [str(b.unit_id) for b in rows]

    async def find_unit(self, estate_id: int | None, label: str) -> Unit | None:
        building, entrance, room = label.split("-")
        q = (select(Unit).join(Building).where(Building.name == building, Unit.entrance == entrance,
                                               Unit.room == room)
             .options(selectinload(Unit.building).selectinload(Building.estate)))
        if estate_id:
            q = q.where(Building.estate_id == estate_id)
        return (await self.s.scalars(q)).first()

    async def bind_unit(self, person_id: int, estate_id: int | None, unit_label: str, phone: str, name: str = "",
                        relation: str = "") -> str:
        """'active' when the unit's roster has this phone; 'needs_details' when it does not and the person has not
        yet said who they are (name, and relation: owner, family or tenant; nothing is written); then 'pending' for
        staff to decide; 'already', 'unknown_unit'."""
        unit = await self.find_unit(estate_id, unit_label)
        person = await self.s.get(Person, person_id)
        if person and not person.phone:
            person.phone = phone
        if unit is None:
            return "unknown_unit"
        existing = await self.s.scalar(select(Binding.status).where(Binding.person_id == person_id,
                                                                     Binding.unit_id == unit.id))
        if existing == "active":
            return "already"
        on_roster = (await self.s.execute(
            select(Residency.role, Person.name).join(Person, Person.id == Residency.person_id)
            .where(Residency.unit_id == unit.id, Person.phone == phone))).first()
        if on_roster:
            status, relation, name = "active", on_roster.role, on_roster.name
        elif not name.strip() or relation not in RELATIONS:
            return "needs_details"
        else:
            status, name = "pending", name.strip()[:100]
            if person:
                person.name = name  # what they call themselves, rather than a chat nickname or "访客 Guest"
        binding = await set_binding(self.s, person_id, unit.id, phone, status, self.clock.now())
        binding.name, binding.relation = name, relation
        await self.s.flush()
        return status

    async def person_phone(self, person_id: int) -> str:
        person = await self.s.get(Person, person_id)
        return (person.phone or "") if person else ""

    async def set_language(self, person_id: int, lang: str) -> None:
        person = await self.s.get(Person, person_id)
        if person:
            person.lang = lang

    async def link_staff(self, person_id: int, channel: str, code: str) -> str | None:
        """Point this person's accounts on `channel` at the staff member holding the code; the staff name."""
        return await link_staff_identities(self.s, self.clock, person_id, channel, code)

    async def create_ticket(self, person_id: int, channel: str, ticket: NewTicket) -> TicketView:
        location_text = ticket.location_text
        if ticket.at_reporter_home and ticket.unit_id:  # nobody said where: staff must know it is an assumption
            location_text = t(self.staff_lang, "location.reporter_home")
        fields = dict(subject=ticket.subject[:200], estate_id=ticket.estate_id, unit_id=ticket.unit_id,
                      location_text=location_text[:300], preferred_time=ticket.preferred_time[:100],
                      contact_phone=ticket.contact_phone, anonymous=ticket.anonymous,
                      classifier_reasons=ticket.reasons, photos=ticket.photos)
        row = await self.tickets.create(kind=ticket.kind, category=ticket.category, urgency=ticket.urgency,
                                        description=ticket.description, channel=channel, reporter_id=person_id,
                                        actor=owner(person_id), **fields)
        return await self._view(row)

    async def _mine(self, person_id: int, number: str) -> Ticket | None:
        """The ticket if this person reported it or is bound to its unit; None otherwise (privacy)."""
        return await self.s.scalar(select(Ticket).where(Ticket.number == number.strip().upper(), _MINE)
                                   .options(selectinload(Ticket.events)), {"person": person_id})

    async def _view(self, tk: Ticket, with_timeline: bool = False) -> TicketView:
        unit = None
        if tk.unit_id:
            unit = await self.s.scalar(select(Unit).where(Unit.id == tk.unit_id)
                                       .options(selectinload(Unit.building)))
        location = _location(unit.building.name, unit.entrance, unit.room, tk.location_text) if unit \
            else tk.location_text
        timeline = [(self.clock.local(e.at), *_owner_line(e)) for e in tk.events if e.action not in STAFF_ONLY] \
            if with_timeline else []
        return TicketView(tk.id, tk.number, tk.kind, tk.category, tk.urgency, tk.status, tk.description, location,
                          self.clock.local(tk.created_at), tk.rating, timeline, self._local(tk.claim_due_at))

    def _local(self, at: datetime | None) -> datetime | None:
        return self.clock.local(at) if at is not None else None

    async def update_ticket(self, person_id: int, number: str, **fields: Any) -> TicketView | None:
        tk = await self._mine(person_id, number)
        if tk is None:
            return None
        allowed = {k: v for k, v in fields.items() if k in ("location_text", "contact_phone", "estate_id")}
        if "unit_id" in fields and fields["unit_id"] is None:  # the owner says it is not at the home it was filed at
            allowed["unit_id"] = None
        for key, value in allowed.items():
            setattr(tk, key, value)
        await self.tickets.event(tk, owner(person_id), "update", ", ".join(f"{k}={v}" for k, v in allowed.items()))
        return await self._view(tk)

    async def my_tickets(self, person_id: int) -> list[TicketView]:
        """The person's latest tickets and those of the units they are bound to, open ones first."""
        rows = await self._rows(_MY_TICKETS, {"person": person_id})
        rows = sorted(rows, key=lambda r: (r.status not in OPEN, -r.id))[:10]
        return [TicketView(r.id, r.number, r.kind, r.category, r.urgency, r.status, r.description,
                           _location(r.building, r.entrance, r.room, r.location_text), self.clock.local(r.created_at),
                           r.rating) for r in rows]

    async def ticket(self, person_id: int, number: str) -> TicketView | None:
        tk = await self._mine(person_id, number)
        return await self._view(tk, with_timeline=True) if tk else None

    async def add_info(self, person_id: int, number: str, text: str = "", photo: str = "") -> bool:
        tk = await self._mine(person_id, number)
        if tk is None:
            return False
        if photo:
            self.s.add(Attachment(ticket_id=tk.id, channel=tk.channel, ref=photo, added_by=owner(person_id),
                                  created_at=self.clock.now()))
        await self.tickets.event(tk, owner(person_id), "info", text or "[photo]")
        await self.dispatch.tell_groups(self.s, tk, self.clock, t(self.staff_lang, "staff.owner_added",
                                                                  number=tk.number, text=text), photo_ref=photo)
        return True

    async def cancel_ticket(self, person_id: int, number: str) -> bool:
        tk = await self._mine(person_id, number)
        if tk is None or tk.reporter_id != person_id:
            return False
        try:
            await self.tickets.transition(tk, Action.CANCEL, owner(person_id), "owner cancelled")
        except TransitionError:
            return False
        return True

    async def hurry_ticket(self, person_id: int, number: str) -> tuple[bool, int]:
        """Record a hurry (催单) unless one was made within the cooldown; (done, minutes to wait). An emergency's hurry
        always goes through (and escalates: bot.desk.escalation.hurried)."""
        tk = await self._mine(person_id, number)
        if tk is None or tk.status not in OPEN:
            return False, 0
        now = self.clock.now()
        last = tk.last_hurry_at if tk.urgency != "emergency" else None  # no cooldown for an emergency
        if last is not None and now - last < self.hurry_cooldown:
            wait = self.hurry_cooldown - (now - last)
            return False, max(1, int(wait.total_seconds() // 60) + 1)
        tk.last_hurry_at = now
        tk.hurry_count += 1
        await self.tickets.event(tk, owner(person_id), "hurry", f"#{tk.hurry_count}")
        await self.dispatch.tell_groups(self.s, tk, self.clock, t(self.staff_lang, "staff.owner_hurried",
                                                                  number=tk.number, n=tk.hurry_count))
        await escalation.hurried(self.tickets, tk, now, self.staff_lang)
        return True, 0

    async def rate_ticket(self, person_id: int, number: str, stars: int, comment: str) -> bool:
        tk = await self._mine(person_id, number)
        if tk is None or tk.status not in ("resolved", "closed") or tk.rating is not None or not 1 <= stars <= 5:
            return False
        tk.rating, tk.rating_comment = stars, comment
        await self.tickets.event(tk, owner(person_id), "rate", f"{stars}★ {comment}".strip())
        if tk.status == "resolved":
            if stars <= 2:
                await self.tickets.transition(tk, Action.REOPEN, owner(person_id), f"rating {stars}: {comment}",
                                              notify_owner=False)
                await escalation.reopened(self.tickets, tk, stars, comment, self.clock.now(), self.staff_lang)
            else:
                await self.tickets.transition(tk, Action.CLOSE, owner(person_id), "confirmed by owner",
                                              notify_owner=False)
        return True

    async def not_fixed(self, person_id: int, number: str) -> bool:
        """The owner says a resolved ticket is not fixed: it reopens (a new clock) and the supervisors hear."""
        tk = await self._mine(person_id, number)
        if tk is None or tk.status != "resolved":
            return False
        await self.tickets.transition(tk, Action.REOPEN, owner(person_id), "not fixed", notify_owner=False)
        await escalation.reopened(self.tickets, tk, 0, t(self.staff_lang, "sla.not_fixed"), self.clock.now(),
                                  self.staff_lang)
        return True

    async def bills(self, person_id: int) -> tuple[list[BillView], list[PaymentView]]:
        """Only the units this person is bound to: never anyone else's bills."""
        units = {u.id: u.label for u in await self.bound_units(person_id)}
        if not units:
            return [], []
        today = self.clock.local().date()
        rows = (await self.s.scalars(select(Bill).where(Bill.unit_id.in_(units))
                                     .order_by(Bill.due_date, Bill.id))).all()
        bills = [BillView(units[b.unit_id], b.period, b.item, _money(b.amount_due), _money(b.outstanding),
                          b.due_date, b.due_date < today) for b in rows if b.outstanding > 0]
        since = self.clock.now() - timedelta(days=365)
        pays = (await self.s.execute(select(Payment, Bill).join(Bill, Payment.bill_id == Bill.id)
                                     .where(Bill.unit_id.in_(units), Payment.paid_at >= since)
                                     .order_by(Payment.paid_at.desc()))).all()
        payments = [PaymentView(units[b.unit_id], b.item, b.period, _money(p.amount), self.clock.local(p.paid_at))
                    for p, b in pays]
        return bills, payments


# Events about staff messages (a card or escalation that could not be delivered): nothing for the owner.
STAFF_ONLY = frozenset({"undelivered"})
# Staff's words written for the owner: their message, why the work waits, what was done. Everything else in an
# event's note (a rejection's reason, the system's own notes) stays with staff.
NOTE_FOR_OWNER = frozenset({"comment", "hold", "resolve"})


def _owner_line(event: TicketEvent) -> tuple[str, str]:
    """(action, note) as the owner's timeline shows an event: the owner's own reopening says why in their words."""
    if event.action == "reopen" and event.actor.startswith("owner:"):
        return ("reopen_rating" if event.note.startswith("rating") else "reopen_not_fixed"), ""
    return event.action, event.note if event.action in NOTE_FOR_OWNER else ""


def _location(building: str | None, entrance: str | None, room: str | None, text: str) -> str:
    """Where a ticket is: its unit's label, then what the owner wrote."""
    if building is None or entrance is None or room is None:  # no unit: the outer join's columns are all None
        return text
    label = Unit.make_label(building, entrance, room)
    return f"{label} {text}" if text else label


# The read-only views, as Core statements (a conversation step runs them on the driver: see DbDesk._rows).
_MY_UNIT_IDS = select(Binding.unit_id).where(Binding.person_id == bindparam("person"), Binding.status == "active")
_BOUND_UNITS = (select(Unit.id, Building.name.label("building"), Unit.entrance, Unit.room, Building.estate_id,
                       Estate.name.label("estate"))
                .join(Building, Building.id == Unit.building_id).join(Estate, Estate.id == Building.estate_id)
                .where(Unit.id.in_(_MY_UNIT_IDS)).order_by(Unit.id))
# Tickets a person may see: reported by them, or at a unit they are bound to (privacy: nobody else's).
_MINE = or_(Ticket.reporter_id == bindparam("person"), Ticket.unit_id.in_(_MY_UNIT_IDS))
_MY_TICKETS = (select(Ticket.id, Ticket.number, Ticket.kind, Ticket.category, Ticket.urgency, Ticket.status,
                      Ticket.description, Ticket.location_text, Ticket.created_at, Ticket.rating,
                      Building.name.label("building"), Unit.entrance, Unit.room)
               .outerjoin(Unit, Unit.id == Ticket.unit_id).outerjoin(Building, Building.id == Unit.building_id)
               .where(_MINE)
               .order_by(Ticket.id.desc()).limit(30))


def _money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"
