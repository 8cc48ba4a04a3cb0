"""Import the office's roster (owners) and bills from CSV or .xlsx: all rows or none, errors by row number."""
from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common import parse_phone, parse_unit
from models import Bill, Building, Estate, Person, Residency, Unit

OWNER_COLUMNS = ["estate", "unit", "name", "phone"]  # optional: role
BILL_COLUMNS = ["estate", "unit", "period", "item", "amount_due", "due_date"]  # optional: amount_paid
ROLES = {"owner", "family", "tenant", "业主", "家属", "租户"}
ROLE_NAMES = {"业主": "owner", "家属": "family", "租户": "tenant"}


class ImportError_(Exception):
    """The file was not imported; `errors` lists (row number, message)."""

    def __init__(self, errors: list[tuple[int, str]]):
        super().__init__("; ".join(f"row {n}: {m}" for n, m in errors[:20]))
        self.errors = errors


@dataclass
class ImportResult:
    rows: int
    created: int
    updated: int


def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, {column: value}) for CSV (UTF-8, BOM ok) and .xlsx."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        rows = wb.active.iter_rows(values_only=True)
        header = [str(h or "").strip().lower() for h in next(rows, [])]
        for n, values in enumerate(rows, start=2):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            yield n, {h: _cell(v) for h, v in zip(header, values, strict=False)}
        wb.close()
        return
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
        for n, row in enumerate(reader, start=2):
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield n, {k: (v or "").strip() if isinstance(v, str) else "" for k, v in row.items() if k}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "date") and callable(value.date):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _progress(total: int) -> Callable[[int], None]:
    """A progress bar on stderr for big files; silent for small ones and when not a terminal."""
    if total < 1000 or not sys.stderr.isatty():
        return lambda done: None

    def show(done: int) -> None:
        if done % 500 == 0 or done == total:
            width = 30
            filled = width * done // total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
    return show


class Importer:
    def __init__(self, session: AsyncSession):
        self.s = session
        self._estates: dict[str, Estate] = {}
        self._buildings: dict[tuple[int, str], Building] = {}
        self._units: dict[tuple[int, str], Unit] = {}

    async def estate(self, key: str) -> Estate:
        if key not in self._estates:
            estate = await self.s.scalar(select(Estate).where((Estate.code == key) | (Estate.name == key)))
            if estate is None:
                estate = Estate(code=key[:32], name=key[:100])
                self.s.add(estate)
                await self.s.flush()
            self._estates[key] = estate
        return self._estates[key]

    async def unit(self, estate: Estate, label: str) -> Unit:
        key = (estate.id, label)
        if key in self._units:
            return self._units[key]
        bname, entrance, room = label.split("-")
        building = self._buildings.get((estate.id, bname)) or await self.s.scalar(
            select(Building).where(Building.estate_id == estate.id, Building.name == bname))
        if building is None:
            building = Building(estate_id=estate.id, name=bname)
            self.s.add(building)
            await self.s.flush()
        self._buildings[(estate.id, bname)] = building
        unit = await self.s.scalar(select(Unit).where(Unit.building_id == building.id, Unit.entrance == entrance,
                                                      Unit.room == room))
        if unit is None:
            unit = Unit(building_id=building.id, entrance=entrance, room=room)
            self.s.add(unit)
            await self.s.flush()
        self._units[key] = unit
        return unit


def _check_columns(rows: list[tuple[int, dict]], required: list[str]) -> None:
    if not rows:
        raise ImportError_([(1, "the file has no data rows")])
    missing = [c for c in required if c not in rows[0][1]]
    if missing:
        raise ImportError_([(1, f"missing column(s): {', '.join(missing)}")])


def _validate_owner(row: dict) -> tuple[str, str, str, str, str]:
    if not row.get("estate"):
        raise ValueError("estate is empty")
    unit = parse_unit(row.get("unit", ""))
    if not unit:
        raise ValueError(f"unit {row.get('unit')!r} is not building-entrance-room")
    phone = parse_phone(row.get("phone", ""))
    if not phone:
        raise ValueError(f"phone {row.get('phone')!r} is not a phone number")
    role = (row.get("role") or "owner").strip().lower()
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of owner, family, tenant")
    name = row.get("name", "")
    if len(name) > 100:
        raise ValueError("name is longer than 100 characters")
    return row["estate"], unit, name, phone, ROLE_NAMES.get(role, role)


def _validate_bill(row: dict) -> tuple:
    if not row.get("estate"):
        raise ValueError("estate is empty")
    unit = parse_unit(row.get("unit", ""))
    if not unit:
        raise ValueError(f"unit {row.get('unit')!r} is not building-entrance-room")
    period, item = row.get("period", ""), row.get("item", "")
    if not re.fullmatch(r"\d{4}(-\d{2}|H[12]|Q[1-4])?", period):
        raise ValueError(f"period {period!r} is not YYYY, YYYY-MM, YYYYH1 or YYYYQ1")
    if not item or len(item) > 32:
        raise ValueError("item is empty or longer than 32 characters")
    try:
        due = Decimal(row.get("amount_due", ""))
        paid = Decimal(row.get("amount_paid") or "0")
    except InvalidOperation:
        raise ValueError("amount_due / amount_paid must be numbers") from None
    if due < 0 or paid < 0 or paid > due or due >= Decimal("1e10"):
        raise ValueError("amounts must be 0 <= amount_paid <= amount_due")
    try:
        due_date = date.fromisoformat(row.get("due_date", ""))
    except ValueError:
        raise ValueError(f"due_date {row.get('due_date')!r} is not YYYY-MM-DD") from None
    return row["estate"], unit, period, item, due, paid, due_date


async def _validated(session: AsyncSession, path: str | Path, required: list[str], validate: Callable[[dict], tuple],
                     create_estates: bool) -> list[tuple]:
    """Every row checked before anything is written: one bad row and the whole file is refused. A row's estate
    (its code or name) must exist, unless `create_estates`: a typo must not found a new estate."""
    rows = list(read_rows(path))
    _check_columns(rows, required)
    valid, errors = [], []
    for n, row in rows:
        try:
            valid.append((n, validate(row)))
        except ValueError as e:
            errors.append((n, str(e)))
    if not create_estates:
        estates = (await session.execute(select(Estate.code, Estate.name).order_by(Estate.code))).all()
        known = {e.code for e in estates} | {e.name for e in estates}
        listing = ", ".join(f"{e.code} ({e.name})" for e in estates) or "none yet"
        errors += [(n, f"unknown estate {values[0]!r} (known: {listing}); --create-estates creates it")
                   for n, values in valid if values[0] not in known]
    if errors:
        raise ImportError_(sorted(errors))
    return [values for _, values in valid]


async def import_owners(session: AsyncSession, path: str | Path, create_estates: bool = False) -> ImportResult:
    valid = await _validated(session, path, OWNER_COLUMNS, _validate_owner, create_estates)
    imp, created, updated = Importer(session), 0, 0
    progress = _progress(len(valid))
    for i, (estate_key, label, name, phone, role) in enumerate(valid, start=1):
        unit = await imp.unit(await imp.estate(estate_key), label)
        person = await session.scalar(select(Person).where(Person.phone == phone))
        if person is None:
            person = Person(name=name, phone=phone)
            session.add(person)
            await session.flush()
        elif name and person.name != name:
            person.name = name
        res = await session.scalar(select(Residency).where(Residency.unit_id == unit.id,
                                                           Residency.person_id == person.id))
        if res is None:
            session.add(Residency(unit_id=unit.id, person_id=person.id, role=role))
            created += 1
        else:
            res.role = role
            updated += 1
        progress(i)
    await session.flush()
    return ImportResult(len(valid), created, updated)


async def import_bills(session: AsyncSession, path: str | Path, create_estates: bool = False) -> ImportResult:
    valid = await _validated(session, path, BILL_COLUMNS, _validate_bill, create_estates)
    imp, created, updated = Importer(session), 0, 0
    progress = _progress(len(valid))
    for i, (estate_key, label, period, item, due, paid, due_date) in enumerate(valid, start=1):
        unit = await imp.unit(await imp.estate(estate_key), label)
        bill = await session.scalar(select(Bill).where(Bill.unit_id == unit.id, Bill.period == period,
                                                       Bill.item == item))
        if bill is None:
            session.add(Bill(unit_id=unit.id, period=period, item=item, amount_due=due, amount_paid=paid,
                             due_date=due_date))
            created += 1
        else:
            bill.amount_due, bill.amount_paid, bill.due_date = due, paid, due_date
            updated += 1
        progress(i)
    await session.flush()
    return ImportResult(len(valid), created, updated)
