"""The staff console's ticket list: filters, search, sort, keyset pages and saved views, always within what the
staff member may see (bot.desk.access.scoped_tickets). One page is one statement over `tickets` with its look-ups
joined; a page boundary is a cursor (the last row's sort key), never an OFFSET, so page 1000 costs what page 1 does.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import Binding, Building, Estate, Identity, Person, Staff, Ticket, Unit
from models.lifecycle import OPEN_STATUSES

from bot.desk.access import StaffRef, scoped_tickets

OPEN = sorted(str(s) for s in OPEN_STATUSES)
UNCLAIMED = ["new", "rejected", "reopened"]
VIEWS = ("mine", "unassigned", "overdue", "emergencies")
SORTS = ("newest", "oldest", "due")
SLA_STATES = ("overdue", "due_soon", "met")
_NUMBER = re.compile(r"^(BX|TS)-?\d{0,8}-?\d{0,4}$", re.I)
_PHONE = re.compile(r"^\+?\d{7,15}$")
_UNIT = re.compile(r"^(\w{1,8})-(\w{1,8})-(\w{1,8})$")
MAX_PAGE = 100


@dataclass
class TicketFilter:
    estates: list[str] = field(default_factory=list)  # estate codes
    building: str = ""
    status: list[str] = field(default_factory=list)
    kind: str = ""
    category: str = ""
    urgency: str = ""
    assignee: str = ""  # a staff id, "me" or "none"
    channel: str = ""
    sla: str = ""  # overdue | due_soon | met
    q: str = ""
    view: str = ""  # mine | unassigned | overdue | emergencies
    sort: str = "newest"
    cursor: str = ""
    limit: int = 50

    @classmethod
    def from_query(cls, query: Any) -> "TicketFilter":
        """From a request's query string (a MultiDict or dict): unknown values are dropped, not errors."""
        def one(name: str, max_len: int = 64) -> str:
            return str(query.get(name, "") or "").strip()[:max_len]

        def many(name: str) -> list[str]:
            values = query.getall(name, []) if hasattr(query, "getall") else [query.get(name, "")]
            return [v.strip()[:32] for raw in values for v in str(raw or "").split(",") if v.strip()][:20]

        try:
            limit = max(1, min(MAX_PAGE, int(one("limit") or 50)))
        except ValueError:
            limit = 50
        return cls(estates=many("estate"), building=one("building", 32), status=many("status"),
                   kind=one("kind"), category=one("category"), urgency=one("urgency"), assignee=one("assignee"),
                   channel=one("channel"), sla=one("sla") if one("sla") in SLA_STATES else "",
                   q=one("q", 100), view=one("view") if one("view") in VIEWS else "",
                   sort=one("sort") if one("sort") in SORTS else "newest", cursor=one("cursor", 200), limit=limit)


def _due_at() -> Any:
    """The deadline a ticket is working towards now: claiming while unclaimed, else resolving."""
    return case((Ticket.status.in_(UNCLAIMED), Ticket.claim_due_at), else_=Ticket.resolve_due_at)


def _overdue(now: datetime) -> Any:
    return and_(Ticket.status.in_(OPEN), or_(and_(Ticket.status.in_(UNCLAIMED), Ticket.claim_due_at < now),
                                             Ticket.resolve_due_at < now))


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any] | None:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        return None
    return values if isinstance(values, list) else None


def search_clause(q: str) -> Any:
    """What a search box's text means: a ticket number, a phone, a home (3-2-1502), or words of the description,
    the subject or the owner's name."""
    q = q.strip()
    if _NUMBER.match(q) and len(q) >= 4:
        number = q.upper()
        return Ticket.number == number if len(number) == 16 else Ticket.number.like(number.replace("%", "") + "%")
    if _PHONE.match(q):
        people = select(Person.id).where(Person.phone == q).scalar_subquery()
        return or_(Ticket.contact_phone == q, Ticket.reporter_id.in_(people))
    unit = _UNIT.match(q)
    if unit:
        units = (select(Unit.id).join(Building, Building.id == Unit.building_id)
                 .where(Building.name == unit.group(1), Unit.entrance == unit.group(2), Unit.room == unit.group(3)))
        return Ticket.unit_id.in_(units)
    like = "%" + q.replace("\\", "").replace("%", "").replace("_", "") + "%"
    named = select(Person.id).where(Person.name.ilike(like))
    return or_(Ticket.description.ilike(like), Ticket.subject.ilike(like), Ticket.reporter_id.in_(named))


def filtered(staff: StaffRef, f: TicketFilter, now: datetime, estate_ids: dict[str, int]) -> Select[Any]:
    """SELECT tickets matching the filter, within the staff member's scope (no order, no page)."""
    query = scoped_tickets(staff, select(Ticket.id))
    if f.estates:
        wanted = [estate_ids[c] for c in f.estates if c in estate_ids]
        query = query.where(Ticket.estate_id.in_(wanted or [-1]))
    if f.building:
        query = query.where(Ticket.unit_id.in_(select(Unit.id).join(Building, Building.id == Unit.building_id)
                                               .where(Building.name == f.building)))
    statuses = [s for s in f.status if s in OPEN or s in ("resolved", "closed", "cancelled")]
    if f.status == ["open"]:
        statuses = OPEN
    if statuses:
        query = query.where(Ticket.status.in_(statuses))
    for column, value in ((Ticket.kind, f.kind), (Ticket.category, f.category), (Ticket.urgency, f.urgency),
                          (Ticket.channel, f.channel)):
        if value:
            query = query.where(column == value)
    if f.assignee == "me":
        query = query.where(Ticket.assignee_id == staff.id)
    elif f.assignee == "none":
        query = query.where(Ticket.assignee_id.is_(None))
    elif f.assignee.isdigit():
        query = query.where(Ticket.assignee_id == int(f.assignee))
    if f.sla == "overdue":
        query = query.where(_overdue(now))
    elif f.sla == "due_soon":
        query = query.where(Ticket.status.in_(OPEN), _due_at() >= now, _due_at() < now + timedelta(hours=1))
    elif f.sla == "met":
        query = query.where(Ticket.status.in_(["resolved", "closed"]), or_(
            Ticket.resolve_due_at.is_(None), Ticket.resolved_at <= Ticket.resolve_due_at))
    if f.view == "mine":
        query = query.where(Ticket.assignee_id == staff.id, Ticket.status.in_(OPEN))
    elif f.view == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None), Ticket.status.in_(OPEN))
    elif f.view == "overdue":
        query = query.where(_overdue(now))
    elif f.view == "emergencies":
        query = query.where(Ticket.urgency == "emergency", Ticket.status.in_(OPEN))
    if f.q:
        query = query.where(search_clause(f.q))
    return query


async def list_tickets(session: AsyncSession, staff: StaffRef, f: TicketFilter, now: datetime) -> dict[str, Any]:
    """One page of tickets and the cursor of the next page (None at the end)."""
    estate_ids = dict((await session.execute(select(Estate.code, Estate.id))).all())
    query = filtered(staff, f, now, estate_ids)
    after = _decode(f.cursor) if f.cursor else None
    if f.sort == "due":
        # Open tickets by their next deadline, earliest first (no deadline last), then by id.
        due = func.coalesce(_due_at(), datetime(9999, 1, 1))
        query = query.add_columns(due.label("due"))
        if after and len(after) == 2:
            at = datetime.fromisoformat(str(after[0]))
            query = query.where(or_(due > at, and_(due == at, Ticket.id > int(after[1]))))
        query = query.order_by(due, Ticket.id)
    elif f.sort == "oldest":
        if after:
            query = query.where(Ticket.id > int(after[0]))
        query = query.order_by(Ticket.id)
    else:
        if after:
            query = query.where(Ticket.id < int(after[0]))
        query = query.order_by(Ticket.id.desc())
    page = (await session.execute(query.limit(f.limit + 1))).all()
    more = len(page) > f.limit
    page = page[:f.limit]
    ids = [row[0] for row in page]
    rows = await _rows(session, ids, now)
    cursor = None
    if more and page:
        last = page[-1]
        cursor = _encode([last[1].isoformat(), last[0]] if f.sort == "due" else [last[0]])
    return {"tickets": rows, "next": cursor}


async def _rows(session: AsyncSession, ids: list[int], now: datetime) -> list[dict[str, Any]]:
    """The list's columns for these tickets, in this order."""
    if not ids:
        return []
    assignee = aliased(Person)
    reporter = aliased(Person)
    result = await session.execute(
        select(Ticket, Estate.code, Building.name, Unit.entrance, Unit.room, assignee.name, reporter.name)
        .outerjoin(Estate, Estate.id == Ticket.estate_id)
        .outerjoin(Unit, Unit.id == Ticket.unit_id).outerjoin(Building, Building.id == Unit.building_id)
        .outerjoin(Staff, Staff.id == Ticket.assignee_id).outerjoin(assignee, assignee.id == Staff.person_id)
        .outerjoin(reporter, reporter.id == Ticket.reporter_id)
        .where(Ticket.id.in_(ids)))
    by_id = {}
    for tk, estate, building, entrance, room, assignee_name, reporter_name in result.all():
        due = tk.claim_due_at if tk.status in UNCLAIMED else tk.resolve_due_at
        is_open = tk.status in OPEN
        by_id[tk.id] = {
            "number": tk.number, "kind": tk.kind, "category": tk.category, "urgency": tk.urgency,
            "status": tk.status, "subject": tk.subject, "summary": (tk.description or "")[:160],
            "estate": estate or "", "unit": f"{building}-{entrance}-{room}" if building else "",
            "location": tk.location_text[:80], "channel": tk.channel, "assignee": assignee_name or "",
            "owner": "" if tk.anonymous else (reporter_name or ""),
            "created_at": tk.created_at.isoformat() + "Z",
            "due_at": due.isoformat() + "Z" if due and is_open else None,
            "overdue": bool(is_open and due and due < now),
            "due_soon": bool(is_open and due and now <= due < now + timedelta(hours=1)),
            "hurry_count": tk.hurry_count,
        }
    return [by_id[i] for i in ids if i in by_id]


async def notice_audience(session: AsyncSession, estate_id: int, buildings: list[str]) -> dict[str, Any]:
    """Who a notice to these buildings would reach: owners, and chat accounts by channel (what send_notice
    queues to)."""
    q = (select(Identity.channel, func.count(func.distinct(Identity.id)), func.count(func.distinct(Binding.person_id)))
         .join(Binding, Binding.person_id == Identity.person_id)
         .join(Unit, Unit.id == Binding.unit_id).join(Building, Building.id == Unit.building_id)
         .where(Building.estate_id == estate_id, Binding.status == "active", Identity.active.is_(True))
         .group_by(Identity.channel))
    if buildings:
        q = q.where(Building.name.in_(buildings))
    rows = (await session.execute(q)).all()
    owners_q = (select(func.count(func.distinct(Binding.person_id))).join(Unit, Unit.id == Binding.unit_id)
                .join(Building, Building.id == Unit.building_id)
                .where(Building.estate_id == estate_id, Binding.status == "active"))
    if buildings:
        owners_q = owners_q.where(Building.name.in_(buildings))
    return {"owners": await session.scalar(owners_q) or 0, "channels": {ch: n for ch, n, _ in rows},
            "accounts": sum(n for _, n, _ in rows)}
