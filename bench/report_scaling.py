"""A month's service report among 1,000,000 tickets on PostgreSQL.

    .venv/bin/python bench/report_scaling.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/reports \
        [--tickets 1000000] [--months 24]

The database's schema is dropped and recreated. The tickets are spread evenly over the last `--months` months
(two years by default: about 42,000 a month), each with the timeline a real one has (created, claimed, on site,
some on hold, resolved, rated or auto-closed; a few late on each deadline; the newest 1% still open), written
with INSERT … SELECT generate_series, then ANALYZE (autovacuum may be off). The report of the last whole month
is timed three times (the median is reported), once for the whole company and once sliced by estate and by staff.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.common import fresh_database  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.desk.demo_seed import seed_demo  # noqa: E402
from bot.desk.reports import Period, service_report  # noqa: E402
from models.db import make_engine, make_sessionmaker  # noqa: E402

TICKETS = """
INSERT INTO tickets (id, number, kind, category, urgency, status, subject, description, classifier_reasons,
    estate_id, unit_id, location_text, preferred_time, contact_phone, anonymous, channel, reporter_id, assignee_id,
    reject_reason, created_at, claimed_at, started_at, resolved_at, closed_at, claim_due_at, arrive_due_at,
    resolve_due_at, escalation_level, hurry_count, rating, rating_comment, updated_at)
SELECT i, 'B-' || i, kind, (ARRAY['water','electrical','lift','doors_windows','noise','parking'])[i % 6 + 1],
    urgency, CASE WHEN open THEN 'assigned' ELSE 'closed' END, '', 'bench', '[]',
    i % 2 + 1, i % 60 + 1, '', '', '', false, (ARRAY['wechat','telegram','web'])[i % 3 + 1], NULL, i % 3 + 1, '',
    c, c + claim_after, CASE WHEN kind = 'repair' THEN c + claim_after + interval '60 minutes' END,
    CASE WHEN NOT open THEN c + resolve_after END,
    CASE WHEN open THEN NULL WHEN rated THEN c + resolve_after + interval '5 hours'
         ELSE c + resolve_after + interval '48 hours' END,
    c + interval '30 minutes' + hold, CASE WHEN kind = 'repair' THEN c + interval '240 minutes' + hold END,
    c + interval '1440 minutes' + hold, 0, 0, CASE WHEN rated THEN i % 5 + 1 END, '', c
FROM (
  SELECT i, c, open, kind, urgency, rated,
         CASE WHEN i % 17 = 0 THEN interval '45 minutes' ELSE make_interval(mins => (i * 37) % 29 + 1) END
           AS claim_after,
         CASE WHEN i % 23 = 0 THEN interval '1500 minutes' ELSE make_interval(mins => (i * 53) % 1300 + 120) END
           + CASE WHEN i % 10 = 0 THEN interval '60 minutes' ELSE interval '0' END AS resolve_after,
         CASE WHEN i % 10 = 0 AND NOT open THEN interval '60 minutes' ELSE interval '0' END AS hold
  FROM (
    SELECT i, CAST(:start AS timestamp) + (CAST(:end AS timestamp) - CAST(:start AS timestamp)) * ((i - 1)::float8 / CAST(:n AS int)) AS c, i > CAST(:n AS int) * 0.99 AS open,
           CASE WHEN i % 5 = 0 THEN 'complaint' ELSE 'repair' END AS kind,
           'high' AS urgency, i % 3 <> 0 AND i <= CAST(:n AS int) * 0.99 AS rated
    FROM generate_series(1, CAST(:n AS int)) AS i) base) t
"""

# Each ticket's timeline, from the ticket row: the events a real one would have.
EVENTS = """
INSERT INTO ticket_events (ticket_id, at, actor, action, from_status, to_status, note)
SELECT id, at, actor, action, from_s, to_s, '' FROM (
  SELECT id, created_at AS at, 'owner:1' AS actor, 'create' AS action, NULL AS from_s, 'new' AS to_s, 1 AS k
    FROM tickets
  UNION ALL SELECT id, claimed_at, 'staff:1', 'claim', 'new', 'assigned', 2 FROM tickets
  UNION ALL SELECT id, started_at, 'staff:1', 'start', 'assigned', 'in_progress', 3 FROM tickets
    WHERE started_at IS NOT NULL
  UNION ALL SELECT id, claimed_at + interval '90 minutes', 'staff:1', 'hold', 'in_progress', 'on_hold', 4
    FROM tickets WHERE id % 10 = 0 AND resolved_at IS NOT NULL
  UNION ALL SELECT id, claimed_at + interval '150 minutes', 'staff:1', 'resume', 'on_hold', 'in_progress', 5
    FROM tickets WHERE id % 10 = 0 AND resolved_at IS NOT NULL
  UNION ALL SELECT id, resolved_at, 'staff:1', 'resolve', 'in_progress', 'resolved', 6 FROM tickets
    WHERE resolved_at IS NOT NULL
  UNION ALL SELECT id, closed_at, 'owner:1', 'rate', 'resolved', 'resolved', 7 FROM tickets WHERE rating IS NOT NULL
  UNION ALL SELECT id, closed_at, CASE WHEN rating IS NULL THEN 'system:sla' ELSE 'owner:1' END, 'close', 'resolved',
    'closed', 8 FROM tickets WHERE closed_at IS NOT NULL
) e ORDER BY id, k
"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL (its schema is dropped and recreated!)")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        url = await fresh_database(Path(tmp), args.database_url)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    async with sm() as s, s.begin():
        await seed_demo(s)
    today = clock.local().date()
    first = date(today.year - (args.months // 12), today.month, 1)
    span = Period.days(first, today)
    began = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text(TICKETS), {"start": span.start, "end": clock.now(), "n": args.tickets})
        await conn.execute(text(EVENTS))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
        events = await conn.scalar(text("SELECT count(*) FROM ticket_events"))
    fill_s = time.perf_counter() - began
    month = Period.month_before(today, clock.tz.key)
    result = {"tickets": args.tickets, "events": events, "fill_s": round(fill_s, 1),
              "month": f"{month.first:%Y-%m}"}
    for label, by in (("report", None), ("by_estate", "estate"), ("by_staff", "staff")):
        runs = []
        for _ in range(3):
            async with sm() as s:
                t0 = time.perf_counter()
                report = await service_report(s, month, now=clock.now(), by=by)
                runs.append(time.perf_counter() - t0)
        result[f"{label}_ms"] = round(statistics.median(runs) * 1000, 1)
        result[f"{label}_runs_ms"] = [round(r * 1000, 1) for r in runs]
        if by is None:
            total = report.as_dict()["total"]
            result["month_received"] = total["received"]
            result["month_breaches"] = total["breaches"]
            result["on_time_resolve_rate"] = total["on_time_resolve_rate"]["value"]
    await engine.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
