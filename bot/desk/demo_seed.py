"""Demo data: two estates, owners on the roster, staff and bills, so propdesk can be tried with no setup."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
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


# --- 90 days of history, so the service reports show something on first start ---------------------------------

REPAIR_CATEGORIES = [("water", 30), ("electrical", 20), ("doors_windows", 15), ("lift", 8), ("public_facility", 12),
                     ("building", 8), ("gas", 3), ("other", 4)]
COMPLAINT_CATEGORIES = [("noise", 30), ("sanitation", 20), ("parking", 20), ("neighbor", 15), ("service", 10),
                        ("security", 5)]
URGENCIES = {"repair": [("emergency", 5), ("high", 20), ("normal", 55), ("low", 20)],
             "complaint": [("high", 15), ("normal", 70), ("low", 15)]}
TRADES = {"water": "plumber", "gas": "plumber", "electrical": "electrician", "lift": "electrician"}
STARS = [(5, 55), (4, 28), (3, 9), (2, 5), (1, 3)]


async def seed_history(session: AsyncSession, now, days: int = 90, tickets: int = 450,  # noqa: ANN001
                       seed: int = 2026) -> int:
    """`tickets` tickets over the `days` before `now` (naive UTC) in the demo estates, each taken through the
    ticket service with a frozen clock moved step by step: claims (a few late), visits, holds, rejections,
    resolutions, ratings, reopenings, cancellations; the newest still open. Nothing is sent: there are no staff
    groups in this dispatch and owners are not notified (the history is already over). How many tickets."""
    import random

    from bot.clock import FrozenClock
    from bot.desk.ticket_service import TicketService
    from config.i18n import t
    from models import Action

    rng = random.Random(seed)
    pick = lambda pairs: rng.choices([v for v, _ in pairs], [w for _, w in pairs])[0]  # noqa: E731
    estates = dict((await session.execute(select(Estate.code, Estate.id))).all())
    units = (await session.execute(select(Unit.id, Building.estate_id).join(Building))).all()
    owners = dict((await session.execute(select(Building.estate_id, Residency.person_id)
                                         .join(Unit, Unit.id == Residency.unit_id).join(Building))).all())
    staff = (await session.execute(select(Staff.id, Staff.trade).where(Staff.active.is_(True)))).all()
    if not estates or not units or not staff:
        return 0
    clock = FrozenClock(now)
    svc = TicketService(session, clock)
    start = now - timedelta(days=days)
    created = sorted(start + timedelta(seconds=rng.uniform(0, days * 86400 - 1800)) for _ in range(tickets))
    created = [c.replace(hour=rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 22, 23]), microsecond=0)
               if rng.random() < 0.8 else c.replace(microsecond=0) for c in created]  # mostly local daytime
    created.sort()

    async def at(when: datetime, action: Action, actor: str, note: str = "", **kw: Any) -> bool:
        """Apply the action at `when`, unless that is still to come (the ticket stays where it is)."""
        if when >= now:
            return False
        clock.at = max(when, clock.at)
        await svc.transition(ticket, action, actor, note, notify_owner=False, **kw)
        return True

    def within(frm, due, late_share: float):  # noqa: ANN001, ANN202
        """A moment before `due` (or, now and then, after it)."""
        span = timedelta(seconds=max((due - frm).total_seconds(), 60))
        if rng.random() < late_share:
            return max(due, frm) + span * rng.uniform(0.05, 0.6)
        return frm + span * rng.uniform(0.05, 0.9)

    def worker(category: str) -> tuple[int, str]:
        trade = TRADES.get(category)
        fitting = [s for s, tr in staff if tr == trade] if trade else [s for s, tr in staff if tr is None]
        sid = rng.choice(fitting or [s for s, _ in staff])
        return sid, f"staff:{sid}"

    for when in created:
        if when >= now - timedelta(minutes=10):
            continue
        kind = "repair" if rng.random() < 0.8 else "complaint"
        category = pick(REPAIR_CATEGORIES if kind == "repair" else COMPLAINT_CATEGORIES)
        urgency = pick(URGENCIES[kind])
        unit_id, estate_id = rng.choice(units)
        reporter = owners.get(estate_id)
        clock.at = when
        ticket = await svc.create(kind=kind, category=category, urgency=urgency, channel=rng.choice(
            ["wechat", "wechat", "wechat", "telegram", "web"]), description=f"demo {category}",
            reporter_id=reporter, actor=f"owner:{reporter}" if reporter else "web", estate_id=estate_id,
            unit_id=unit_id)
        owner = f"owner:{reporter}" if reporter else "web"
        if rng.random() < 0.03:
            await at(when + timedelta(minutes=rng.randint(5, 90)), Action.CANCEL, owner, "no longer needed")
            continue
        sid, actor = worker(category)
        cycles = 0
        while True:
            cycles += 1
            if not await at(within(clock.at, ticket.claim_due_at, 0.06), Action.CLAIM, actor, assignee_id=sid):
                break
            if rng.random() < 0.03 and cycles == 1:  # 退单: not this worker's job; another one claims it
                if not await at(clock.at + timedelta(minutes=rng.randint(10, 120)), Action.REJECT, actor,
                                "not my trade"):
                    break
                sid, actor = worker(category)
                continue
            if kind == "repair" and (ticket.arrive_due_at or rng.random() < 0.7):
                due = ticket.arrive_due_at or clock.at + timedelta(hours=rng.randint(2, 24))
                if not await at(within(clock.at, due, 0.07), Action.START, actor):
                    break
            if rng.random() < 0.12:  # waiting for parts or for the owner
                if not await at(clock.at + timedelta(minutes=rng.randint(20, 240)), Action.HOLD, actor,
                                "waiting for parts"):
                    break
                if not await at(clock.at + timedelta(hours=rng.uniform(2, 48)), Action.RESUME, actor):
                    break
            if not await at(within(clock.at, ticket.resolve_due_at, 0.05), Action.RESOLVE, actor, "done"):
                break
            answered = clock.at + timedelta(hours=rng.uniform(1, 40))
            if rng.random() < 0.03 and cycles == 1 and answered < now:  # 没修好: the owner says it is not fixed
                await at(answered, Action.REOPEN, owner, "not fixed")
                continue
            if ticket.rating is None and rng.random() < 0.6 and answered < now:
                stars = pick(STARS)
                clock.at = answered
                ticket.rating, ticket.rating_comment = stars, ""
                await svc.event(ticket, owner, "rate", f"{stars}★")
                if stars <= 2 and cycles == 1:
                    await at(answered, Action.REOPEN, owner, f"rating {stars}")
                    continue
                await at(answered, Action.CLOSE, owner, "confirmed by owner")
            else:
                assert ticket.resolved_at is not None  # resolved above
                await at(ticket.resolved_at + svc.sla.close_after, Action.CLOSE, "system:sla",
                         t("zh", "sla.auto_closed"))
            break
    await session.flush()
    return sum(1 for when in created if when < now - timedelta(minutes=10))


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

    from bot.clock import Clock
    from bot.desk.signing import hash_password
    from bot.desk.staff_accounts import add_staff

    out = []
    for role, name, phone, trade in DEMO_LOGINS:
        staff, _code = await add_staff(session, Clock(), name=name, phone=phone, role=role, trade=trade)
        password = secrets.token_urlsafe(9)
        staff.password_hash = hash_password(password)
        out.append((role, name, phone, password))
    await session.flush()
    return out
