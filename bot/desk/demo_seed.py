"""Demo data: two estates, owners on the roster, staff and bills, so propdesk can be tried with no setup."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Bill, Building, Estate, Payment, Person, Residency, Staff, StaffEstate, Unit, utcnow

ESTATES = [("SG", "阳光花园 Sunshine Garden", ["1", "2", "3"]), ("CH", "翠湖苑 Jade Lake", ["1", "2"])]
OWNERS = [  # name, phone, estate code, unit label
    ("张伟 Zhang Wei", "13800000001", "SG", "3-2-1502"),
    ("李娜 Li Na", "13800000002", "SG", "1-1-101"),
    ("王芳 Wang Fang", "13800000003", "CH", "2-1-801"),
]
STAFF = [  # name, phone, role, trade
    ("王师傅 Master Wang", "13900000001", "technician", "plumber"),
    ("刘师傅 Master Liu", "13900000002", "technician", "electrician"),
    ("陈主管 Supervisor Chen", "13900000003", "supervisor", None),
]


async def is_empty(session: AsyncSession) -> bool:
    return (await session.scalar(select(func.count()).select_from(Estate))) == 0


async def seed_demo(session: AsyncSession, today: date | None = None) -> None:
    today = today or date.today()
    estates: dict[str, Estate] = {}
    units: dict[tuple[str, str], Unit] = {}
    for code, name, buildings in ESTATES:
        estate = Estate(code=code, name=name)
        session.add(estate)
        await session.flush()
        estates[code] = estate
        for bname in buildings:
            building = Building(estate_id=estate.id, name=bname)
            session.add(building)
            await session.flush()
            for entrance in ("1", "2"):
                for floor in (1, 8, 15):
                    for door in ("01", "02"):
                        unit = Unit(building_id=building.id, entrance=entrance, room=f"{floor}{door}",
                                    area_m2=89.5)
                        session.add(unit)
                        units[(code, f"{bname}-{entrance}-{floor}{door}")] = unit
    await session.flush()
    for name, phone, code, label in OWNERS:
        person = Person(name=name, phone=phone)
        session.add(person)
        await session.flush()
        unit = units[(code, label)]
        session.add(Residency(unit_id=unit.id, person_id=person.id, role="owner"))
        period_due = today.replace(day=1)
        last_month = (period_due - timedelta(days=1)).replace(day=1)
        paid = Bill(unit_id=unit.id, period=f"{last_month:%Y-%m}", item="物业费", amount_due=Decimal("268.50"),
                    amount_paid=Decimal("268.50"), due_date=last_month + timedelta(days=14))
        overdue = Bill(unit_id=unit.id, period=f"{last_month:%Y-%m}", item="停车费", amount_due=Decimal("300.00"),
                       due_date=last_month + timedelta(days=14))
        current = Bill(unit_id=unit.id, period=f"{period_due:%Y-%m}", item="物业费", amount_due=Decimal("268.50"),
                       due_date=period_due + timedelta(days=27))
        session.add_all([paid, overdue, current])
        await session.flush()
        session.add(Payment(bill_id=paid.id, amount=Decimal("268.50"), paid_at=utcnow() - timedelta(days=20),
                            method="wechat"))
    for name, phone, role, trade in STAFF:
        person = Person(name=name, phone=phone)
        session.add(person)
        await session.flush()
        staff = Staff(person_id=person.id, role=role, trade=trade)
        session.add(staff)
        await session.flush()
        for estate in estates.values():
            session.add(StaffEstate(staff_id=staff.id, estate_id=estate.id))
    await session.flush()


# Demo sign-ins for the staff console: (role, name, phone, trade) — a random password each, printed at start.
DEMO_LOGINS = [
    ("admin", "管理员 Admin", "13900000000", None),
    ("service", "客服小周 Dispatcher Zhou", "13900000004", None),
    ("technician", "王师傅 Master Wang", "13900000001", "plumber"),
]


async def seed_demo_logins(session: AsyncSession) -> list[tuple[str, str, str, str]]:
    """Give the demo an admin, a dispatcher (客服, role "service") and a technician with passwords, for every
    estate: (role, name, phone, password) to print. Only `propdesk run` calls this, on a freshly seeded demo."""
    import secrets

    from bot.desk.signing import hash_password

    estates = (await session.scalars(select(Estate))).all()
    out = []
    for role, name, phone, trade in DEMO_LOGINS:
        person = await session.scalar(select(Person).where(Person.phone == phone))
        if person is None:
            person = Person(name=name, phone=phone)
            session.add(person)
            await session.flush()
        staff = await session.scalar(select(Staff).where(Staff.person_id == person.id))
        if staff is None:
            staff = Staff(person_id=person.id, role=role, trade=trade)
            session.add(staff)
            await session.flush()
            for estate in estates:
                session.add(StaffEstate(staff_id=staff.id, estate_id=estate.id))
        password = secrets.token_urlsafe(9)
        staff.password_hash = hash_password(password)
        out.append((role, name, phone, password))
    await session.flush()
    return out
