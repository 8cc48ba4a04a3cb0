"""Service reports in the industry's own terms: one computation for the CLI exports, the managers' weekly and
monthly pushes, the daily digest and (later) the staff console.

`service_report(session, period, ...)` returns a `Report`: the figures for the whole selection (`total`), one set
per slice when asked (`by`), and the breach list. Every figure is defined once, here:

- counts in the period [start, end): `received` (created), `resolved`, `closed` (confirmed, auto-closed or merged),
  `cancelled`, `rejected` (退单), `reopened` — each the number of tickets with such an event in the period;
- `open_at_end`: tickets open (new, assigned, in progress, on hold, rejected, reopened) at the end of the period
  (or now, for a period not over yet), their age (`open_age_p50_h`, `open_age_max_h`, `oldest_open`) and
  `overdue_at_end`: those past their resolve deadline (the clock of a ticket on hold stands still);
- 及时率 `on_time_claim_rate`, `on_time_arrive_rate` (repairs), `on_time_resolve_rate`: of the tickets whose
  deadline fell in the period (and has passed), the share that met it. The deadlines are the ticket's stored ones,
  which the SLA clock set in business or calendar time and moved for holds; a hold that began after a deadline was
  met does not move that deadline back into the future here. A ticket cancelled or merged before a deadline it had
  not met is not counted for it. Arrival is the start of work (到场) the ticket records, or the resolution when work
  was never marked started. A ticket carries the deadlines of its latest cycle (a reopening or, for the claim, a
  rejection starts a new one); deadlines are looked for among the tickets whose clock (re)started within LOOKBACK
  (45 days) before the period, or that were active in it or are open;
- 完成率 `completion_rate`: of the tickets received in the period, those resolved by its end;
- 回访率 `return_visit_rate`: of the tickets resolved in the period, those the owner rated or confirmed;
- 满意率 `satisfaction_rate`: of the ratings given in the period, the 4 and 5 star ones; `avg_rating`, `rated`;
- `reopen_rate`: reopened in the period ÷ resolved in the period;
- `first_response_p50_min` / `_p90_min`: creation to first claim, wall-clock minutes, for the tickets received in
  the period that have been claimed; `resolution_p50_h` / `_p90_h`: creation to resolution, wall-clock hours, for
  the tickets resolved in the period (percentiles interpolated as PostgreSQL's percentile_cont);
- complaints (投诉) apart: `complaints_received`, `complaint_on_time_rate` (投诉处理及时率: the resolve deadline),
  `complaint_satisfaction_rate` (投诉满意率);
- `breaches`: every missed deadline that fell in the period: which one, due when, done when, how late, who held it.

A rate is a `Rate`: {"value": count/of (None when of is 0), "count": tickets that met it, "of": tickets counted}.

The tickets that can matter to the period are selected in SQL (a union of index scans) and read once with their
events aggregated per ticket in SQL (plus one statement for the holds); the slices are summed in Python, where the
percentiles are computed too.
"""
from __future__ import annotations

import math
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, any_, bindparam, case, func, or_, select, text, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from models import Building, Estate, Person, Staff, Ticket, TicketEvent, Unit
from models.db import dialect_name
from models.lifecycle import OPEN_STATUSES

DIMENSIONS = ("estate", "building", "kind", "category", "urgency", "staff", "trade", "channel")
DEADLINES = ("claim", "arrive", "resolve")
OPEN = frozenset(str(s) for s in OPEN_STATUSES)
# A row class whose fields are the query's columns, known only at run time (mypy types literal field lists only).
_record_type: Callable[[str, list[str]], Any] = namedtuple


class ReportError(ValueError):
    """A report that cannot be made as asked (an unknown estate, a period that ends before it starts)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in naive UTC, as stored; `first` and `last` the local days it covers, when it is whole days."""

    start: datetime
    end: datetime
    tz: str = "Asia/Shanghai"
    first: date | None = None
    last: date | None = None

    @classmethod
    def days(cls, first: date, last: date, tz: str = "Asia/Shanghai") -> "Period":
        """The local days first..last, both included."""
        if last < first:
            raise ReportError(f"the period ends ({last}) before it starts ({first})")
        zone = ZoneInfo(tz)
        start, end = (datetime.combine(d, time(0), zone).astimezone(timezone.utc).replace(tzinfo=None)
                      for d in (first, last + timedelta(days=1)))
        return cls(start, end, tz, first, last)

    @classmethod
    def week_before(cls, today: date, tz: str = "Asia/Shanghai") -> "Period":
        """The last whole week (Monday to Sunday) before `today`."""
        monday = today - timedelta(days=today.weekday() + 7)
        return cls.days(monday, monday + timedelta(days=6), tz)

    @classmethod
    def month_before(cls, today: date, tz: str = "Asia/Shanghai") -> "Period":
        """The last whole calendar month before `today`."""
        last = today.replace(day=1) - timedelta(days=1)
        return cls.days(last.replace(day=1), last, tz)

    def as_dict(self) -> dict:
        return {"from": self.first.isoformat() if self.first else None,
                "to": self.last.isoformat() if self.last else None, "timezone": self.tz,
                "start_utc": self.start.isoformat(), "end_utc": self.end.isoformat()}


@dataclass(frozen=True)
class Rate:
    count: int
    of: int

    @property
    def value(self) -> float | None:
        return round(self.count / self.of, 4) if self.of else None

    def as_dict(self) -> dict:
        return {"value": self.value, "count": self.count, "of": self.of}


@dataclass
class Breach:
    number: str
    deadline: str  # claim | arrive | resolve
    due_at: datetime  # naive UTC
    done_at: datetime | None  # None: not done yet
    late_min: int
    assignee: str | None  # who holds the ticket (None: nobody claimed it)
    estate: str | None
    kind: str
    category: str
    urgency: str
    status: str

    def as_dict(self, tz: tzinfo) -> dict:
        def local(at: datetime | None) -> str | None:
            return at.replace(tzinfo=timezone.utc).astimezone(tz).isoformat(timespec="minutes") if at else None
        return {"number": self.number, "deadline": self.deadline, "due_at": local(self.due_at),
                "done_at": local(self.done_at), "late_min": self.late_min, "assignee": self.assignee,
                "estate": self.estate, "kind": self.kind, "category": self.category, "urgency": self.urgency,
                "status": self.status}


# The figures of a slice, in the order the exports show them.
FIGURES = ("received", "resolved", "closed", "cancelled", "rejected", "reopened", "open_at_end", "overdue_at_end",
           "open_age_p50_h", "open_age_max_h", "oldest_open", "on_time_claim_rate", "on_time_arrive_rate",
           "on_time_resolve_rate", "completion_rate", "return_visit_rate", "satisfaction_rate", "avg_rating", "rated",
           "reopen_rate", "first_response_p50_min", "first_response_p90_min", "resolution_p50_h", "resolution_p90_h",
           "complaints_received", "complaint_on_time_rate", "complaint_satisfaction_rate", "breaches")


@dataclass
class Report:
    period: Period
    as_of: datetime  # naive UTC: the period's end, or now if sooner
    by: str | None
    filters: dict[str, list]
    total: dict[str, Any]
    slices: list[dict[str, Any]]  # each: {by: key, (staff_id), **figures}
    breaches: list[Breach]

    def as_dict(self) -> dict:
        """JSON-ready: rates as {"value", "count", "of"}, times in the report's time zone."""
        tz = ZoneInfo(self.period.tz)
        plain = lambda row: {k: (v.as_dict() if isinstance(v, Rate) else v) for k, v in row.items()}  # noqa: E731
        return {"period": self.period.as_dict(),
                "as_of": self.as_of.replace(tzinfo=timezone.utc).astimezone(tz).isoformat(timespec="minutes"),
                "filters": self.filters, "by": self.by, "total": plain(self.total),
                "slices": [plain(s) for s in self.slices], "breaches": [b.as_dict(tz) for b in self.breaches]}

    def worst_breaches(self, n: int = 3) -> list[Breach]:
        return sorted(self.breaches, key=lambda b: -b.late_min)[:n]


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    values = sorted(values)
    pos = q * (len(values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


# --- reading -------------------------------------------------------------------------------------------------

def _window(col, start: datetime, end: datetime):  # noqa: ANN001, ANN202
    return and_(col >= start, col < end)


async def _estate_ids(session: AsyncSession, codes: Iterable[str]) -> list[int]:
    codes = list(dict.fromkeys(codes))
    found = dict((await session.execute(select(Estate.code, Estate.id).where(Estate.code.in_(codes)))).all())
    unknown = [c for c in codes if c not in found]
    if unknown:
        known = (await session.scalars(select(Estate.code).order_by(Estate.code))).all()
        raise ReportError(f"unknown estate code(s): {', '.join(unknown)} (known: {', '.join(known) or 'none'})")
    return [found[c] for c in codes]


LOOKBACK = timedelta(days=45)  # a deadline is looked for in tickets whose clock (re)started this long before


def _selection(period: Period, estate_ids: list[int], where: dict[str, list], now: datetime):  # noqa: ANN202
    """The ids of the tickets that can matter to the period, as a union of index scans: created in it or in the
    LOOKBACK before it (deadlines that fall in it), open now, with an event in it, whose clock restarted (reopened,
    rejected, resumed) in the LOOKBACK, or that left the open statuses after it (open at its end)."""
    t, e = Ticket.__table__.c, TicketEvent.__table__.c
    start, end = period.start, period.end
    parts = [
        select(t.id).where(t.created_at >= start, t.created_at < end),
        select(t.id).where(t.created_at >= start - LOOKBACK, t.created_at < start, or_(
            t.claim_due_at >= start, t.arrive_due_at >= start, t.resolve_due_at >= start)),
        select(t.id).where(t.status.in_(sorted(OPEN)), t.created_at < end),
        select(e.ticket_id).where(e.at >= start, e.at < end),
        select(e.ticket_id).where(e.at >= start - LOOKBACK, e.at < start, e.action.in_(["reopen", "reject", "resume"])),
    ]
    if period.end <= now:  # open at the end and resolved, cancelled or merged since
        parts.append(select(e.ticket_id).where(e.at >= end, e.action.in_(["resolve", "cancel", "merge"])))
    ids = union(*parts)
    if not estate_ids and not where:
        return ids  # a ticket created after the period (an event after it) changes no figure of it
    q = select(t.id).where(t.id.in_(select(ids.subquery("candidates").c[0])))
    if estate_ids:
        q = q.where(t.estate_id.in_(estate_ids))
    for dim, values in where.items():
        if dim in ("kind", "category", "urgency", "channel"):
            q = q.where(t[dim].in_(values))
        elif dim == "staff_id":
            q = q.where(t.assignee_id.in_(values))
        elif dim == "trade":
            q = q.where(t.assignee_id.in_(select(Staff.id).where(Staff.trade.in_(values))))
        elif dim == "building_id":
            q = q.where(t.unit_id.in_(select(Unit.id).where(Unit.building_id.in_(values))))
        else:
            raise ReportError(f"cannot filter by {dim!r}")
    return q


def _member(col, selection, ids: list[int] | None):  # noqa: ANN001, ANN202
    """`col` is one of the selected tickets: the selection as a subquery, or (PostgreSQL) its ids as one array
    parameter, whose size the planner knows (it cannot estimate the union well, and would scan every event)."""
    return col.in_(selection) if ids is None else col == any_(bindparam("ids", ids, type_=ARRAY(Integer)))


async def _rows(session: AsyncSession, period: Period, selection, ids: list[int] | None):  # noqa: ANN001, ANN202
    """One row per selected ticket: its columns, its dimensions and its events aggregated."""
    t, e = Ticket.__table__.c, TicketEvent.__table__
    start, end = period.start, period.end
    ev = e.c
    in_p = _window(ev.at, start, end)

    def when(cond, value=ev.at):  # noqa: ANN001, ANN202
        return case((cond, value))

    flag = lambda cond: func.max(case((cond, 1), else_=0))  # noqa: E731
    agg = (select(ev.ticket_id.label("tid"),
                  func.max(when(ev.action.in_(["create", "reopen"]))).label("c0"),
                  func.max(when(ev.action.in_(["create", "reopen", "reject"]))).label("cc"),
                  func.min(when(ev.action == "claim")).label("first_claim"),
                  func.max(when(ev.action == "claim")).label("last_claim"),
                  flag(ev.at >= end).label("changed_after"),
                  func.max(when(and_(ev.action == "resolve", in_p))).label("resolved_in_p"),
                  flag(and_(ev.to_status == "closed", ev.from_status != "closed", in_p)).label("closed_in_p"),
                  flag(and_(ev.action == "cancel", in_p)).label("cancelled_in_p"),
                  flag(and_(ev.action == "reject", in_p)).label("rejected_in_p"),
                  flag(and_(ev.action == "reopen", in_p)).label("reopened_in_p"),
                  flag(and_(ev.action == "rate", in_p)).label("rated_in_p"),
                  flag(and_(ev.action == "close", ev.actor.like("owner:%"))).label("confirmed"),
                  func.max(when(ev.action.in_(["cancel", "merge"]))).label("withdrawn_at"),
                  func.max(when(and_(ev.to_status.is_not(None), ev.at < end), ev.id)).label("last_status_event"))
           .where(_member(ev.ticket_id, selection, ids)).group_by(ev.ticket_id).subquery("agg"))
    x = e.alias("x")
    # A claim cycle (created, rejected, reopened) has one claim at most: a claim leaves the statuses it comes from.
    claim_at = case((agg.c.last_claim >= agg.c.cc, agg.c.last_claim))
    # The status at the period's end: the ticket's own, unless it changed after the end.
    status_at_end = case((agg.c.changed_after == 0, t.status), else_=select(x.c.to_status).where(
        x.c.id == agg.c.last_status_event).scalar_subquery())
    assignee = Staff.__table__.alias("assignee")
    who = Person.__table__.alias("who")
    q = (select(t.id, t.number, t.kind, t.category, t.urgency, t.channel, t.status, t.created_at, t.resolved_at,
                t.claim_due_at, t.arrive_due_at, t.resolve_due_at, t.held_at, t.rating, t.assignee_id,
                Estate.code.label("estate"), Building.name.label("building"),
                assignee.c.trade, who.c.name.label("staff"), agg.c.c0, agg.c.cc, agg.c.first_claim,
                agg.c.resolved_in_p, agg.c.closed_in_p, agg.c.cancelled_in_p, agg.c.rejected_in_p,
                agg.c.reopened_in_p, agg.c.rated_in_p, agg.c.confirmed, agg.c.withdrawn_at,
                claim_at.label("claim_at"), t.started_at.label("start_at"),
                status_at_end.label("status_at_end"))
         .select_from(Ticket.__table__)
         .join(agg, agg.c.tid == t.id)
         .outerjoin(Estate, Estate.id == t.estate_id)
         .outerjoin(Unit, Unit.id == t.unit_id).outerjoin(Building, Building.id == Unit.building_id)
         .outerjoin(assignee, assignee.c.id == t.assignee_id).outerjoin(who, who.c.id == assignee.c.person_id)
         .where(_member(t.id, selection, ids)))
    result = await (await session.connection()).execute(q)  # Core rows: no ORM layer over 10^4–10^5 of them
    row = _record_type("TicketFacts", list(result.keys()))  # attribute access at C speed, for the loop in _compute
    return [row._make(r) for r in result.all()]


async def _holds(session: AsyncSession, selection, ids: list[int] | None  # noqa: ANN001
                 ) -> dict[int, list[tuple[datetime, datetime]]]:
    """Each finished hold of the selected tickets: (held, resumed); the SLA clock moved the deadlines by its length."""
    e = TicketEvent.__table__
    r, h = e.alias("r"), e.alias("h")
    held = (select(func.max(h.c.at)).where(h.c.ticket_id == r.c.ticket_id, h.c.action == "hold", h.c.at <= r.c.at)
            .scalar_subquery())
    q = select(r.c.ticket_id, held, r.c.at).where(r.c.action == "resume", _member(r.c.ticket_id, selection, ids))
    out: dict[int, list] = defaultdict(list)
    for tid, held_at, resumed_at in (await (await session.connection()).execute(q)).all():
        if held_at is not None:
            out[tid].append((held_at, resumed_at))
    return out


# --- computing -----------------------------------------------------------------------------------------------

@dataclass
class _Acc:
    """The sums behind one slice's figures."""

    received: int = 0
    resolved: int = 0
    closed: int = 0
    cancelled: int = 0
    rejected: int = 0
    reopened: int = 0
    completed: int = 0
    visited: int = 0
    rated: int = 0
    satisfied: int = 0
    rating_sum: int = 0
    complaints: int = 0
    complaints_rated: int = 0
    complaints_satisfied: int = 0
    met: dict = field(default_factory=lambda: {d: 0 for d in DEADLINES})
    due: dict = field(default_factory=lambda: {d: 0 for d in DEADLINES})
    complaint_met: int = 0
    complaint_due: int = 0
    open_ages: list = field(default_factory=list)
    oldest: tuple | None = None  # (age_h, number)
    overdue: int = 0
    first_response: list = field(default_factory=list)
    resolution: list = field(default_factory=list)
    breaches: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "received": self.received, "resolved": self.resolved, "closed": self.closed,
            "cancelled": self.cancelled, "rejected": self.rejected, "reopened": self.reopened,
            "open_at_end": len(self.open_ages), "overdue_at_end": self.overdue,
            "open_age_p50_h": _round(percentile(self.open_ages, 0.5), 1),
            "open_age_max_h": _round(max(self.open_ages), 1) if self.open_ages else None,
            "oldest_open": self.oldest[1] if self.oldest else None,
            "on_time_claim_rate": Rate(self.met["claim"], self.due["claim"]),
            "on_time_arrive_rate": Rate(self.met["arrive"], self.due["arrive"]),
            "on_time_resolve_rate": Rate(self.met["resolve"], self.due["resolve"]),
            "completion_rate": Rate(self.completed, self.received),
            "return_visit_rate": Rate(self.visited, self.resolved),
            "satisfaction_rate": Rate(self.satisfied, self.rated),
            "avg_rating": round(self.rating_sum / self.rated, 2) if self.rated else None,
            "rated": self.rated,
            "reopen_rate": Rate(self.reopened, self.resolved),
            "first_response_p50_min": _round(percentile(self.first_response, 0.5), 1),
            "first_response_p90_min": _round(percentile(self.first_response, 0.9), 1),
            "resolution_p50_h": _round(percentile(self.resolution, 0.5), 2),
            "resolution_p90_h": _round(percentile(self.resolution, 0.9), 2),
            "complaints_received": self.complaints,
            "complaint_on_time_rate": Rate(self.complaint_met, self.complaint_due),
            "complaint_satisfaction_rate": Rate(self.complaints_satisfied, self.complaints_rated),
            "breaches": self.breaches,
        }


def _deadline(row, which: str, holds: list[tuple[datetime, datetime]], now: datetime):  # noqa: ANN001, ANN202
    """(due, done_at) of one deadline as the SLA clock counts it, or None when the ticket has no such deadline."""
    stored = {"claim": row.claim_due_at, "arrive": row.arrive_due_at, "resolve": row.resolve_due_at}[which]
    if stored is None:
        return None
    since = row.cc if which == "claim" else row.c0
    if which == "claim":
        done = row.claim_at
    elif which == "arrive":
        done = row.start_at or row.resolved_at
    else:
        done = row.resolved_at
    due = stored
    if done is not None:
        # Holds that began once the deadline was met moved it too (the clock moves every deadline): undo them.
        due -= sum((resumed - held for held, resumed in holds if held >= done and (since is None or held >= since)),
                   timedelta())
    elif row.status == "on_hold" and row.held_at is not None:
        due += now - row.held_at  # on hold now: the clock stands still
    return due, done


def _compute(rows: Sequence[Any], holds: Mapping[int, Any], period: Period, now: datetime,
             by: str | None) -> tuple[_Acc, dict[Any, tuple[Any, _Acc]], list[Breach]]:
    start, end = period.start, period.end
    as_of = min(end, now)
    total = _Acc()
    slices: dict[Any, _Acc] = defaultdict(_Acc)
    names: dict[Any, Any] = {}
    breaches: list[Breach] = []
    for row in rows:
        accs = [total]
        if by:
            key = _slice_key(row, by)
            accs.append(slices[key[0]])
            names[key[0]] = key[1]
        received = start <= row.created_at < end
        resolved = row.resolved_in_p is not None
        ticket_holds = holds.get(row.id, [])
        deadlines = {}
        for which in DEADLINES:
            got = _deadline(row, which, ticket_holds, now)
            if got is None:
                continue
            due, done = got
            if not start <= due < as_of:
                continue  # not in the period, or not passed yet
            if done is None and row.withdrawn_at is not None and row.withdrawn_at <= due:
                continue  # cancelled or merged before the deadline
            met = done is not None and done <= due
            deadlines[which] = met
            if not met:
                late = int(((done or now) - due).total_seconds() // 60)
                breaches.append(Breach(row.number, which, due, done, late, row.staff, row.estate, row.kind,
                                       row.category, row.urgency, row.status))
        open_at_end = row.created_at < end and row.status_at_end in OPEN
        for acc in accs:
            acc.received += received
            acc.resolved += resolved
            acc.closed += row.closed_in_p
            acc.cancelled += row.cancelled_in_p
            acc.rejected += row.rejected_in_p
            acc.reopened += row.reopened_in_p
            if received:
                acc.completed += row.resolved_at is not None and row.resolved_at < end
                if row.first_claim is not None:
                    acc.first_response.append((row.first_claim - row.created_at).total_seconds() / 60)
                if row.kind == "complaint":
                    acc.complaints += 1
            if resolved:
                acc.visited += row.rating is not None or bool(row.confirmed)
                acc.resolution.append((row.resolved_in_p - row.created_at).total_seconds() / 3600)
            if row.rated_in_p and row.rating is not None:
                acc.rated += 1
                acc.rating_sum += row.rating
                acc.satisfied += row.rating >= 4
                if row.kind == "complaint":
                    acc.complaints_rated += 1
                    acc.complaints_satisfied += row.rating >= 4
            for which, met in deadlines.items():
                acc.due[which] += 1
                acc.met[which] += met
                acc.breaches += not met
                if which == "resolve" and row.kind == "complaint":
                    acc.complaint_due += 1
                    acc.complaint_met += met
            if open_at_end:
                age = (as_of - row.created_at).total_seconds() / 3600
                acc.open_ages.append(age)
                if acc.oldest is None or age > acc.oldest[0]:
                    acc.oldest = (age, row.number)
                if (row.status_at_end != "on_hold" and row.resolve_due_at is not None
                        and row.resolve_due_at < as_of):
                    acc.overdue += 1
    return total, {k: (names[k], acc) for k, acc in slices.items()}, breaches


def _slice_key(row, by: str) -> tuple:  # noqa: ANN001
    """(sort key, {column: value}) of the row's slice."""
    if by == "staff":
        return (row.assignee_id or 0, {"staff": row.staff, "staff_id": row.assignee_id})
    if by == "building":
        label = f"{row.estate}/{row.building}" if row.building is not None else None
        return (label or "", {"building": label})
    value = getattr(row, by)
    return (value or "", {by: value})


async def service_report(session: AsyncSession, period: Period, *, now: datetime, by: str | None = None,
                         estates: Iterable[str] = (), where: dict[str, list] | None = None) -> Report:
    """The figures of `period` (as seen at `now`, naive UTC) for the tickets of `estates` (codes; all when empty)
    and `where` ({"kind"|"category"|"urgency"|"channel"|"trade"|"staff_id"|"building_id": [values]}), sliced `by`
    one of DIMENSIONS when given. ReportError for an unknown estate or dimension."""
    if by is not None and by not in DIMENSIONS:
        raise ReportError(f"cannot slice by {by!r} (choose from {', '.join(DIMENSIONS)})")
    estates = list(estates)
    where = {k: list(v) for k, v in (where or {}).items() if v}
    selection = _selection(period, await _estate_ids(session, estates) if estates else [], where, now)
    ids = None
    if dialect_name(session) == "postgresql":
        # The planner cannot estimate the selection; over its cost threshold PostgreSQL would spend seconds
        # compiling the plan (JIT) for a query that runs in a fraction of one.
        await session.execute(text("SET LOCAL jit = off"))
        ids = list((await (await session.connection()).execute(selection)).scalars().all())
    rows = await _rows(session, period, selection, ids)
    holds = await _holds(session, selection, ids)
    total, slices, breaches = _compute(rows, holds, period, now, by)
    breaches.sort(key=lambda b: (b.due_at, b.number, DEADLINES.index(b.deadline)))
    filters = {"estate": estates} if estates else {}
    filters.update(where)
    return Report(period=period, as_of=min(period.end, now), by=by, filters=filters, total=total.figures(),
                  slices=[{**key, **acc.figures()} for _, (key, acc) in sorted(slices.items(), key=lambda kv: (
                      kv[0] is None or kv[0] == "" or kv[0] == 0, kv[0]))],
                  breaches=breaches)
