"""Who may see and change which ticket: one place for every staff surface (Telegram cards, WeCom page, console).

A staff member works for the estates they are given (staff_estates). `access_ticket` fetches a ticket as seen by
one staff member and raises `NoAccess` when they may not see it, so no surface filters tickets on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Identity, Staff, StaffEstate, Ticket

_Ts = TypeVarTuple("_Ts")  # the columns of a SELECT, kept through the scoping

ROLES = ("technician", "service", "supervisor", "manager", "admin")


class NoAccess(LookupError):
    """The ticket does not exist, or this staff member may not see it (the two look the same from outside)."""


@dataclass(frozen=True)
class StaffRef:
    """A signed-in or linked staff member, as the surfaces hold them between requests (no ORM object)."""

    id: int
    name: str
    role: str
    trade: str | None
    estate_ids: frozenset[int]


async def staff_ref(session: AsyncSession, staff: Staff) -> StaffRef:
    estates = (await session.scalars(select(StaffEstate.estate_id).where(StaffEstate.staff_id == staff.id))).all()
    person = staff.person if "person" in staff.__dict__ else None
    name = person.name if person is not None else ""
    return StaffRef(staff.id, name, staff.role, staff.trade, frozenset(estates))


async def active_staff(session: AsyncSession, staff_id: int) -> StaffRef | None:
    staff = await session.scalar(select(Staff).where(Staff.id == staff_id, Staff.active.is_(True))
                                 .options(selectinload(Staff.person)))
    return await staff_ref(session, staff) if staff is not None else None


async def staff_of_chat(session: AsyncSession, channel: str, external_id: str) -> StaffRef | None:
    """The active staff member behind a chat account, or None (anyone else may not act on tickets)."""
    staff = await session.scalar(
        select(Staff).join(Identity, Identity.person_id == Staff.person_id)
        .where(Identity.channel == channel, Identity.external_id == external_id, Staff.active.is_(True))
        .options(selectinload(Staff.person)))
    return await staff_ref(session, staff) if staff is not None else None


def visible_tickets(staff: StaffRef, query: Select[*_Ts]) -> Select[*_Ts]:
    """`query` over tickets, limited to what this staff member may see: the tickets of their estates, and those
    not yet placed in any estate (an unbound owner's report: whoever sees it first places it)."""
    return query.where(or_(Ticket.estate_id.in_(sorted(staff.estate_ids)), Ticket.estate_id.is_(None)))


async def access_ticket(session: AsyncSession, staff: StaffRef, number: str, *, lock: bool = False) -> Ticket:
    """The ticket `number` as `staff` may see it; `lock` takes the row for a change (SELECT … FOR UPDATE)."""
    query = visible_tickets(staff, select(Ticket).where(Ticket.number == number.strip().upper()))
    ticket: Ticket | None = await session.scalar(query.with_for_update() if lock else query)
    if ticket is None:
        raise NoAccess(number)
    return ticket


# -- roles ------------------------------------------------------------------------------------------------------
# Each role may do what the roles before it may, plus its own; always only on the estates the staff member is given.
#   technician 维修工: work their tickets and their trade's open ones (claim, on site, hold, resolve, reject,
#                      reply to the owner, internal notes; hand their own ticket to a colleague)
#   service 客服:      every ticket of their estates: assign, transfer, reclassify, reply; bindings, notices, imports
#   supervisor 主管:   plus reopen, merge, escalations, reports
#   manager 经理:      reports (and what a supervisor does) across the estates they are given
#   admin:            staff, estates, groups
_GRANTS: dict[str, frozenset[str]] = {
    "technician": frozenset({"work", "reply", "note", "transfer_own"}),
    "service": frozenset({"see_all", "assign", "transfer", "reclassify", "bindings", "notices", "import", "bulk"}),
    "supervisor": frozenset({"reopen", "merge", "escalations", "reports"}),
    "manager": frozenset({"reports"}),
    "admin": frozenset({"staff", "estates", "groups"}),
}
PERMISSIONS: dict[str, frozenset[str]] = {}
_acc: frozenset[str] = frozenset()
for _role in ROLES:
    _acc = _acc | _GRANTS[_role]
    PERMISSIONS[_role] = _acc

# Ticket actions (staff_actions' and the console's) and the permission each needs.
ACTION_PERMISSION = {
    "claim": "work", "start": "work", "hold": "work", "resume": "work", "resolve": "work", "reject": "work",
    "comment": "reply", "note": "note", "reassign": "transfer", "assign": "assign", "reclassify": "reclassify",
    "reopen": "reopen", "merge": "merge", "close": "bulk",
}


def may(staff: StaffRef, permission: str) -> bool:
    """Whether the staff member's role grants `permission` (see PERMISSIONS)."""
    return permission in PERMISSIONS.get(staff.role, frozenset())


def may_act(staff: StaffRef, action: str, ticket: Ticket) -> bool:
    """Whether the staff member may apply `action` to this ticket (one they can see): a technician passes on only
    a ticket that is theirs."""
    if action == "reassign" and not may(staff, "transfer"):
        return may(staff, "transfer_own") and ticket.assignee_id == staff.id
    permission = ACTION_PERMISSION.get(action)
    return permission is not None and may(staff, permission)


def trade_categories(trade: str) -> list[str]:
    """The ticket categories a trade works on."""
    from bot.desk.trades import _table

    return sorted(c for c, t in _table()["category_trade"].items() if t == trade)


def scoped_tickets(staff: StaffRef, query: Select[*_Ts]) -> Select[*_Ts]:
    """`query` over tickets limited by estate (visible_tickets) and role: a technician with a trade sees the
    tickets assigned to them and the open ones of their trade (and general maintenance, e.g. a corridor lamp, which
    any technician may take), and every open emergency (whoever is on duty answers a lift entrapment); a
    technician without a trade, and every other role, every ticket of their estates."""
    from models.lifecycle import OPEN_STATUSES

    query = visible_tickets(staff, query)
    if may(staff, "see_all") or not staff.trade:
        return query
    return query.where(or_(Ticket.assignee_id == staff.id,
                           and_(Ticket.status.in_(sorted(str(s) for s in OPEN_STATUSES)),
                                or_(Ticket.urgency == "emergency",
                                    Ticket.category.in_(sorted({*trade_categories(staff.trade),
                                                                *trade_categories("general")}))))))


async def access_ticket_as(session: AsyncSession, staff: StaffRef, number: str, *, lock: bool = False) -> Ticket:
    """access_ticket with the role's scope too: what the staff surfaces fetch a ticket with."""
    query = scoped_tickets(staff, select(Ticket).where(Ticket.number == number.strip().upper()))
    ticket: Ticket | None = await session.scalar(query.with_for_update() if lock else query)
    if ticket is None:
        raise NoAccess(number)
    return ticket
