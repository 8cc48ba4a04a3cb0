"""Staff accounts: adding staff, one-time link codes, and which chat accounts belong to a staff member."""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Estate, Identity, Person, Staff, StaffEstate

from bot.clock import Clock
from bot.desk.access import ROLES
from bot.desk.trades import check_trade

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone
CODE_TTL = timedelta(hours=24)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


async def issue_code(session: AsyncSession, clock: Clock, staff: Staff) -> str:
    staff.link_code = new_code()
    staff.link_code_expires_at = clock.now() + CODE_TTL
    await session.flush()
    return staff.link_code


async def add_staff(session: AsyncSession, clock: Clock, *, name: str, phone: str, role: str = "technician",
                    trade: str | None = None, estates: list[str] | None = None) -> tuple[Staff, str]:
    """Create (or re-activate) a staff member by phone, give them estates, and a fresh link code. ValueError for
    an unknown role, trade or estate."""
    trade = check_trade(trade)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    person = await session.scalar(select(Person).where(Person.phone == phone))
    if person is None:
        person = Person(name=name, phone=phone, created_at=clock.now())
        session.add(person)
        await session.flush()
    staff = await session.scalar(select(Staff).where(Staff.person_id == person.id))
    if staff is None:
        staff = Staff(person_id=person.id, role=role, trade=trade)
        session.add(staff)
        await session.flush()
    staff.active, staff.role, staff.trade = True, role, trade
    person.name = name or person.name
    codes = estates or [e.code for e in (await session.scalars(select(Estate))).all()]
    for code in codes:
        estate = await session.scalar(select(Estate).where(Estate.code == code))
        if estate is None:
            raise ValueError(f"no estate with code {code!r}")
        if await session.get(StaffEstate, (staff.id, estate.id)) is None:
            session.add(StaffEstate(staff_id=staff.id, estate_id=estate.id))
    return staff, await issue_code(session, clock, staff)


async def link_staff_identities(session: AsyncSession, clock: Clock, person_id: int, channel: str,
                                code: str) -> str | None:
    """Spend a link code: this person's accounts on `channel` become the staff member's. The staff name."""
    staff = await session.scalar(select(Staff).where(Staff.link_code == code.strip().upper(),
                                                     Staff.active.is_(True)).options(selectinload(Staff.person)))
    if staff is None or staff.link_code_expires_at is None or staff.link_code_expires_at < clock.now():
        return None
    staff.link_code, staff.link_code_expires_at = None, None
    await session.execute(update(Identity).where(Identity.person_id == person_id, Identity.channel == channel)
                          .values(person_id=staff.person_id))
    await session.flush()
    return staff.person.name


async def staff_of(session: AsyncSession, channel: str, external_id: str) -> Staff | None:
    """The active staff member behind a chat account, or None (anyone else may not act on tickets)."""
    return await session.scalar(
        select(Staff).join(Identity, Identity.person_id == Staff.person_id)
        .where(Identity.channel == channel, Identity.external_id == external_id, Staff.active.is_(True))
        .options(selectinload(Staff.person)))
