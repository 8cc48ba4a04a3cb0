"""Who may see and change which ticket: one place for every staff surface (Telegram cards, WeCom page, web pane).

A staff member works for the estates they are given (staff_estates). `access_ticket` fetches a ticket as seen by
one staff member and raises `NoAccess` when they may not see it, so no surface filters tickets on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Identity, Staff, StaffEstate, Ticket

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


def visible_tickets(staff: StaffRef, query: Select[Any]) -> Select[Any]:
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
