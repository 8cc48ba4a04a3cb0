"""Service reports: a known week of tickets built through the real services with a frozen clock, every figure
checked against values worked out by hand; the exports agree; the CLI; the managers' weekly push; the demo history.

The week is Monday 2026-11-09 to Sunday 2026-11-15 (Asia/Shanghai), seen on 2026-11-20 10:00 local. Times below
are UTC (local minus 8 hours). SLA (config/sla.toml): high 30 min / 4 h / 24 h and emergency 5 / 30 / 240 min
around the clock; normal 4 h / – / 72 h and low 9 h / – / 63 h of business time (08:30–17:30, Monday to Friday).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.app import App
from bot.clock import FrozenClock
from bot.desk.demo_seed import seed_demo, seed_history
from bot.desk.owner_desk import DbDesk
from bot.desk.report_export import summary_table, breach_table, to_csv, to_xlsx
from bot.desk.reports import Period, ReportError, percentile, service_report
from bot.desk.ticket_service import TicketService
from config.settings import Settings
from models import Action, Estate, OutboxMessage, Person, Residency, Staff, Ticket, Unit, Building
from models.db import make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
U = lambda *a: datetime(2026, 11, *a)  # noqa: E731 - U(day, hour, minute): UTC
NOW = U(20, 2, 0)
WEEK = Period.days(date(2026, 11, 9), date(2026, 11, 15))


async def build_week(sm) -> dict[str, str]:
    """The tickets T1…T9 (see each one's comment); their numbers by name."""
    clock = FrozenClock(U(1, 0, 0))
    async with sm() as s, s.begin():
        await seed_demo(s, today=date(2026, 11, 1))
    numbers: dict[str, str] = {}
    async with sm() as s, s.begin():
        svc = TicketService(s, clock)
        desk = DbDesk(s, None, clock)
        staff = {name.split()[0]: sid for sid, name in (await s.execute(
            select(Staff.id, Person.name).join(Person, Person.id == Staff.person_id))).all()}
        wang, liu, chen = staff["王师傅"], staff["刘师傅"], staff["陈主管"]
        homes = {}
        for code in ("SG", "CH"):
            homes[code] = (await s.execute(
                select(Residency.person_id, Residency.unit_id, Estate.id).join(Unit, Unit.id == Residency.unit_id)
                .join(Building).join(Estate).where(Estate.code == code).limit(1))).one()

        async def new(name, at, kind, category, urgency, estate):  # noqa: ANN001, ANN202
            clock.at = at
            person, unit, estate_id = homes[estate]
            tk = await svc.create(kind=kind, category=category, urgency=urgency, description=name, channel="web",
                                  reporter_id=person, actor=f"owner:{person}", estate_id=estate_id, unit_id=unit)
            numbers[name] = tk.number
            return tk

        async def do(tk, at, action, actor="staff", note="", staff_id=None):  # noqa: ANN001, ANN202
            clock.at = at
            await svc.transition(tk, action, actor, note, assignee_id=staff_id)

        async def rate(tk, at, stars):  # noqa: ANN001, ANN202
            clock.at = at
            assert await desk.rate_ticket(tk.reporter_id, tk.number, stars, "")

        # T1 high water repair, SG: claimed, on site, 6 h on hold, resolved — late but for the hold — rated 5.
        t1 = await new("T1", U(9, 1, 0), "repair", "water", "high", "SG")
        await do(t1, U(9, 1, 10), Action.CLAIM, staff_id=wang)
        await do(t1, U(9, 2, 0), Action.START)
        await do(t1, U(9, 3, 0), Action.HOLD, note="parts")
        await do(t1, U(9, 9, 0), Action.RESUME)
        assert t1.resolve_due_at == U(10, 7, 0)  # 24 h + the 6 h on hold
        await do(t1, U(10, 6, 0), Action.RESOLVE)
        await rate(t1, U(10, 8, 0), 5)
        # T2 normal electrical repair, SG, Thursday 16:00 local: the claim is due after 4 business hours, Friday
        # 11:00 local (03:00); claimed an hour late; resolved; rated 3 (closes).
        t2 = await new("T2", U(12, 8, 0), "repair", "electrical", "normal", "SG")
        assert t2.claim_due_at == U(13, 3, 0)
        await do(t2, U(13, 4, 0), Action.CLAIM, staff_id=liu)
        await do(t2, U(13, 6, 0), Action.RESOLVE)
        await rate(t2, U(14, 2, 0), 3)
        # T3 normal door repair, CH: resolved, "not fixed" (reopened: a new clock), claimed again in time, resolved,
        # never rated: closed by the return-visit window.
        t3 = await new("T3", U(9, 2, 0), "repair", "doors_windows", "normal", "CH")
        await do(t3, U(9, 3, 0), Action.CLAIM, staff_id=chen)
        await do(t3, U(10, 3, 0), Action.RESOLVE)
        clock.at = U(10, 5, 0)
        assert await desk.not_fixed(t3.reporter_id, t3.number)
        assert t3.claim_due_at == U(10, 9, 0)  # Tuesday 13:00 local + 4 business hours
        await do(t3, U(10, 6, 0), Action.CLAIM, staff_id=chen)
        await do(t3, U(11, 2, 0), Action.RESOLVE)
        await do(t3, U(13, 2, 0), Action.CLOSE, actor="system:sla", note="auto")
        # T4 high complaint (noise), SG: claimed in time, resolved two hours late, rated 4.
        t4 = await new("T4", U(10, 1, 0), "complaint", "noise", "high", "SG")
        await do(t4, U(10, 1, 20), Action.CLAIM, staff_id=chen)
        await do(t4, U(11, 3, 0), Action.RESOLVE)
        await rate(t4, U(11, 5, 0), 4)
        # T5 emergency gas repair, SG, at night: claimed in 3 min, on site 15 min late, resolved in time, unrated.
        t5 = await new("T5", U(11, 12, 0), "repair", "gas", "emergency", "SG")
        await do(t5, U(11, 12, 3), Action.CLAIM, staff_id=wang)
        await do(t5, U(11, 12, 45), Action.START)
        await do(t5, U(11, 15, 0), Action.RESOLVE)
        await do(t5, U(13, 15, 0), Action.CLOSE, actor="system:sla", note="auto")
        # T6 low repair, CH: cancelled by the owner before any deadline.
        t6 = await new("T6", U(12, 2, 0), "repair", "other", "low", "CH")
        await do(t6, U(12, 2, 30), Action.CANCEL, actor="owner")
        # T7 high water repair, SG, Sunday 22:00 local: nobody claims it (still open on the 20th).
        await new("T7", U(15, 14, 0), "repair", "water", "high", "SG")
        # T8 normal repair, CH, the week before: claimed, on hold since, and still on hold.
        t8 = await new("T8", U(6, 2, 0), "repair", "water", "normal", "CH")
        await do(t8, U(6, 3, 0), Action.CLAIM, staff_id=wang)
        await do(t8, U(6, 4, 0), Action.HOLD, note="owner away")
        # T9 low complaint (parking), CH: claimed, rejected (退单: a new claim deadline, Tuesday 12:00 local),
        # claimed by another in time, resolved, rated 5.
        t9 = await new("T9", U(9, 3, 0), "complaint", "parking", "low", "CH")
        await do(t9, U(9, 3, 10), Action.CLAIM, staff_id=liu)
        await do(t9, U(9, 4, 0), Action.REJECT, note="not mine")
        assert t9.claim_due_at == U(10, 4, 0)
        await do(t9, U(10, 1, 0), Action.CLAIM, staff_id=chen)
        await do(t9, U(10, 8, 0), Action.RESOLVE)
        await rate(t9, U(10, 9, 0), 5)
    return numbers


def rate(count: int, of: int) -> dict:
    return {"value": round(count / of, 4) if of else None, "count": count, "of": of}


def expected_total(numbers: dict[str, str]) -> dict:
    return {
        "received": 8,  # T1-T7, T9 (T8 the week before)
        "resolved": 6, "closed": 6, "cancelled": 1, "rejected": 1, "reopened": 1,  # T1-T5, T9 / T6 / T9 / T3
        "open_at_end": 2, "overdue_at_end": 0,  # T7 (2 h old, due on Monday), T8 (230 h, on hold)
        "open_age_p50_h": 116.0, "open_age_max_h": 230.0, "oldest_open": numbers["T8"],
        # claim: T1 T3 (its second clock) T4 T5 T9 (after the rejection) in time, T2 and T7 late; T6 cancelled.
        "on_time_claim_rate": rate(5, 7),
        "on_time_arrive_rate": rate(1, 2),  # T1 (the hold began after arrival), T5 late; T7's is after the week
        "on_time_resolve_rate": rate(2, 3),  # T1 (moved by its hold), T5 in time; T4 late
        "completion_rate": rate(6, 8),
        "return_visit_rate": rate(4, 6),  # rated: T1 T2 T4 T9; T3 and T5 closed unanswered
        "satisfaction_rate": rate(3, 4), "avg_rating": 4.25, "rated": 4,  # 5, 3, 4, 5
        "reopen_rate": rate(1, 6),
        # first claims: 10, 1200 (T2, overnight), 60, 20, 3, 10 minutes
        "first_response_p50_min": 15.0, "first_response_p90_min": 630.0,
        # to the (last) resolution in the week: 29, 22, 48, 26, 3, 29 hours
        "resolution_p50_h": 27.5, "resolution_p90_h": 38.5,
        "complaints_received": 2, "complaint_on_time_rate": rate(0, 1), "complaint_satisfaction_rate": rate(2, 2),
        "breaches": 4,
    }


@pytest.fixture
async def week(db_url):
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    numbers = await build_week(sm)
    yield sm, numbers, db_url
    await engine.dispose()


async def test_every_figure_of_a_known_week(week):
    sm, numbers, _ = week
    async with sm() as s:
        report = await service_report(s, WEEK, now=NOW, by="estate")
    data = report.as_dict()
    assert data["total"] == expected_total(numbers)
    assert data["period"] == {"from": "2026-11-09", "to": "2026-11-15", "timezone": "Asia/Shanghai",
                              "start_utc": "2026-11-08T16:00:00", "end_utc": "2026-11-15T16:00:00"}
    assert data["as_of"] == "2026-11-16T00:00+08:00"
    assert [b for b in data["breaches"]] == [
        {"number": numbers["T4"], "deadline": "resolve", "due_at": "2026-11-11T09:00+08:00",
         "done_at": "2026-11-11T11:00+08:00", "late_min": 120, "assignee": "陈主管 Supervisor Chen", "estate": "SG",
         "kind": "complaint", "category": "noise", "urgency": "high", "status": "closed"},
        {"number": numbers["T5"], "deadline": "arrive", "due_at": "2026-11-11T20:30+08:00",
         "done_at": "2026-11-11T20:45+08:00", "late_min": 15, "assignee": "王师傅 Master Wang", "estate": "SG",
         "kind": "repair", "category": "gas", "urgency": "emergency", "status": "closed"},
        {"number": numbers["T2"], "deadline": "claim", "due_at": "2026-11-13T11:00+08:00",
         "done_at": "2026-11-13T12:00+08:00", "late_min": 60, "assignee": "刘师傅 Master Liu", "estate": "SG",
         "kind": "repair", "category": "electrical", "urgency": "normal", "status": "closed"},
        {"number": numbers["T7"], "deadline": "claim", "due_at": "2026-11-15T22:30+08:00", "done_at": None,
         "late_min": 6450, "assignee": None, "estate": "SG", "kind": "repair", "category": "water",
         "urgency": "high", "status": "new"},  # still unclaimed on the 20th: 4 days 11.5 hours
    ]
    assert [r.number for r in report.worst_breaches()] == [numbers[n] for n in ("T7", "T4", "T2")]
    ch, sg = data["slices"]
    assert (ch["estate"], sg["estate"]) == ("CH", "SG")
    assert (ch["received"], sg["received"]) == (3, 5)
    assert (ch["on_time_claim_rate"], sg["on_time_claim_rate"]) == (rate(2, 2), rate(3, 5))
    assert (ch["open_at_end"], ch["oldest_open"], sg["open_at_end"]) == (1, numbers["T8"], 1)
    assert (ch["breaches"], sg["breaches"]) == (0, 4)
    assert (ch["satisfaction_rate"], sg["satisfaction_rate"]) == (rate(1, 1), rate(2, 3))
    for key in ("received", "resolved", "closed", "cancelled", "rejected", "reopened", "open_at_end", "breaches"):
        assert ch[key] + sg[key] == data["total"][key]
    # One estate alone is that estate's slice.
    async with sm() as s:
        only = (await service_report(s, WEEK, now=NOW, estates=["CH"])).as_dict()
    assert only["total"] == {k: v for k, v in ch.items() if k != "estate"}
    assert only["filters"] == {"estate": ["CH"]} and only["breaches"] == []


async def test_slices_by_staff_and_urgency(week):
    sm, numbers, _ = week
    async with sm() as s:
        by_staff = (await service_report(s, WEEK, now=NOW, by="staff")).as_dict()["slices"]
        by_urgency = (await service_report(s, WEEK, now=NOW, by="urgency")).as_dict()["slices"]
        unknown = service_report(s, WEEK, now=NOW, estates=["SG", "XX"])
        with pytest.raises(ReportError, match="XX"):
            await unknown
    names = [r["staff"] for r in by_staff]
    assert names == ["王师傅 Master Wang", "刘师傅 Master Liu", "陈主管 Supervisor Chen", None]
    wang, liu, chen, nobody = by_staff
    assert (wang["received"], wang["breaches"], wang["on_time_arrive_rate"]) == (2, 1, rate(1, 2))  # T1 T5 (T8)
    assert (liu["received"], liu["on_time_claim_rate"]) == (1, rate(0, 1))  # T2 (T9 went to Chen)
    assert (chen["received"], chen["rejected"], chen["complaint_on_time_rate"]) == (3, 1, rate(0, 1))
    assert (nobody["received"], nobody["cancelled"], nobody["open_at_end"]) == (2, 1, 1)  # T6, T7
    assert [r["urgency"] for r in by_urgency] == ["emergency", "high", "low", "normal"]
    assert by_urgency[1]["on_time_resolve_rate"] == rate(1, 2)  # T1 in time, T4 late


def test_percentile_is_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.9) == 7
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([3, 10, 10, 20, 60, 1200], 0.9) == 630


def test_periods():
    p = Period.week_before(date(2026, 11, 18))
    assert (p.first, p.last) == (date(2026, 11, 9), date(2026, 11, 15))
    assert (p.start, p.end) == (U(8, 16, 0), U(15, 16, 0))
    p = Period.month_before(date(2026, 12, 1))
    assert (p.first, p.last) == (date(2026, 11, 1), date(2026, 11, 30))
    with pytest.raises(ReportError):
        Period.days(date(2026, 11, 2), date(2026, 11, 1))


async def test_json_csv_and_excel_agree(week, tmp_path):
    sm, numbers, _ = week
    async with sm() as s:
        report = await service_report(s, WEEK, now=NOW, by="staff")
    data = json.loads(json.dumps(report.as_dict(), ensure_ascii=False))
    columns, rows = summary_table(data)
    bcols, brows = breach_table(data)
    assert rows[0]["slice"] == "total" and rows[0]["on_time_claim_rate_count"] == 5
    assert rows[-1]["slice"] == "(none)"
    # CSV: the same table, text.
    summary_csv, breaches_csv = to_csv(report)
    as_text = lambda v: "" if v is None else str(v)  # noqa: E731
    parsed = list(csv.DictReader(summary_csv.splitlines()))
    assert list(parsed[0]) == columns
    assert parsed == [{k: as_text(v) for k, v in r.items()} for r in rows]
    assert list(csv.DictReader(breaches_csv.splitlines())) == [{k: as_text(v) for k, v in r.items()} for r in brows]
    # Excel: opens cleanly, two header rows (Chinese, English) frozen, percentages, the same values.
    path = tmp_path / "week.xlsx"
    to_xlsx(report, path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["汇总 Summary", "超时明细 Breaches", "说明 About"]
    ws = wb["汇总 Summary"]
    assert ws.freeze_panes == "B3"
    head_zh = [c.value for c in ws[1]]
    assert head_zh[:3] == ["范围", "员工编号", "受理数"] and "接单及时率" in head_zh
    assert [c.value for c in ws[2]] == columns
    got = [dict(zip(columns, (c.value for c in row), strict=False)) for row in ws.iter_rows(min_row=3)]
    assert got == rows
    claim = columns.index("on_time_claim_rate") + 1
    assert ws.cell(3, claim).number_format == "0.0%" and ws.cell(3, claim).value == round(5 / 7, 4)
    assert ws.column_dimensions["A"].width >= 8
    wsb = wb["超时明细 Breaches"]
    assert [c.value for c in wsb[2]] == bcols
    assert [dict(zip(bcols, (c.value for c in row), strict=False)) for row in wsb.iter_rows(min_row=3)] == brows


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


async def test_cli_end_to_end(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    numbers = await build_week(make_sessionmaker(engine))
    await engine.dispose()
    env = {"PROPDESK_DATABASE_URL": sqlite_url}
    r = _cli("report", "--from", "2026-11-09", "--to", "2026-11-15", "--by", "estate", env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    # Seen today (after the 20th): T7's claim is later still, everything else as on the 20th.
    assert data["by"] == "estate" and [s["estate"] for s in data["slices"]] == ["CH", "SG"]
    total = data["total"]
    want = expected_total(numbers)
    assert {k: total[k] for k in want} == want
    out = tmp_path / "week.xlsx"
    r = _cli("report", "--from", "2026-11-09", "--to", "2026-11-15", "--estate", "SG", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert load_workbook(out)["汇总 Summary"]["B3"].value == 5  # SG received 5
    out = tmp_path / "week.csv"
    r = _cli("report", "--from", "2026-11-09", "--to", "2026-11-15", "--format", "csv", "--out", str(out), env=env)
    assert r.returncode == 0 and (tmp_path / "week_breaches.csv").exists()
    assert out.read_text(encoding="utf-8-sig").startswith("slice,received,")
    for args, message in [(("--estate", "ZZ"), "unknown estate code(s): ZZ"), ((), None)]:
        r = _cli("report", "--from", "2026-11-09", "--to", "2026-11-15", *args, env=env)
        if message:
            assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    for bad in (["--from", "2026-11-31", "--to", "2026-12-01"], ["--from", "2026-11-15", "--to", "2026-11-09"],
                ["--from", "yesterday", "--to", "2026-11-09"]):
        r = _cli("report", *bad, env=env)
        assert r.returncode == 2 and "bad period" in r.stderr and "Traceback" not in r.stderr
    r = _cli("report", "--from", "2026-11-09", "--to", "2026-11-15", "--format", "xlsx", env=env)
    assert r.returncode == 2 and "--out" in r.stderr


async def test_weekly_push_lands_in_the_managers_outbox(week):
    from bot.jobs.sweeps import managers_digest, managers_report

    sm, numbers, url = week
    clock = FrozenClock(U(16, 0, 30))  # Monday 08:30 local
    settings = Settings(database_url=url, staff_groups={"managers": {"channel": "telegram", "chat_id": "-77"}})
    app = App.create(settings, clock=clock)
    try:
        assert await managers_report(app, "weekly") is True
        assert await managers_report(app, "weekly") is False  # once per week, whichever worker comes first
        assert await managers_digest(app) is True
        async with app.sessionmaker() as s:
            texts = [m.payload["text"] for m in (await s.scalars(
                select(OutboxMessage).where(OutboxMessage.chat_id == "-77").order_by(OutboxMessage.id))).all()]
    finally:
        await app.close()
    weekly, daily = texts
    assert weekly.startswith("📈 服务周报 2026-11-09 至 2026-11-15")
    assert "受理 8｜完成 6｜完成率 75.0% (6/8)" in weekly
    assert "接单及时率 71.4% (5/7)" in weekly and "满意率 75.0% (3/4)｜平均评分 4.25" in weekly
    assert "投诉处理及时率 0.0% (0/1)" in weekly
    worst = weekly.split("超时最久：\n")[1].splitlines()
    # Seen on the 16th at 08:30 local, T7's claim is 10 hours late so far.
    assert worst == [f"· {numbers['T7']} 接单超时 10小时0分（-）",
                     f"· {numbers['T4']} 完成超时 2小时0分（陈主管 Supervisor Chen）",
                     f"· {numbers['T2']} 接单超时 1小时0分（刘师傅 Master Liu）"]
    # The daily digest reads the same figures: the last 24 hours (Sunday 08:30 to Monday 08:30 local).
    assert "日报 2026-11-16" in daily and "新工单：1" in daily and f"最久未完成：{numbers['T8']} 238h" in daily
    assert "接单 0.0% (0/1)" in daily  # T7's claim, due Sunday 22:30


async def test_demo_history_through_the_services(sqlite_url):
    engine = make_engine(sqlite_url)
    sm = make_sessionmaker(engine)
    now = U(25, 2, 0)
    try:
        async with sm() as s, s.begin():
            await seed_demo(s, today=date(2026, 11, 25))
            n = await seed_history(s, now)
        async with sm() as s:
            assert n == await s.scalar(select(func.count()).select_from(Ticket)) >= 300
            assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0  # nobody is told
            assert await s.scalar(select(func.min(Ticket.created_at))) >= now - timedelta(days=90)
            month = (await service_report(s, Period.days(date(2026, 10, 1), date(2026, 10, 31)), now=now,
                                          by="estate")).as_dict()
    finally:
        await engine.dispose()
    total = month["total"]
    assert total["received"] > 100 and {s["estate"] for s in month["slices"]} == {"SG", "CH"}
    for key in ("on_time_claim_rate", "on_time_arrive_rate", "on_time_resolve_rate", "satisfaction_rate"):
        assert 0.5 < total[key]["value"] < 1, key  # mostly in time, a few breaches
    assert total["reopened"] > 0 and total["complaints_received"] > 0 and total["breaches"] > 0
    assert total["rated"] > 0 and total["cancelled"] + total["rejected"] > 0
