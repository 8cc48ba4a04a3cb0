"""One SLA sweep with 100 due tickets among 10k, then among 1M open tickets, on PostgreSQL, in the same run.

    .venv/bin/python bench/sweep_scaling.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench \
        [--sizes 10000 1000000]

The database's schema is dropped and recreated. Open tickets are bulk-inserted with their next check far ahead;
100 of them are then made due, and one sweep (reminders to the staff group, escalations) is timed, three times
per size (the median is reported). What is due lives in an indexed column, so the two should be within 1.5x.
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
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402

from bench.common import fresh_database  # noqa: E402
from bot.app import App  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.desk.demo_seed import seed_demo  # noqa: E402
from bot.jobs.sweeps import sla_sweep  # noqa: E402
from config.settings import Settings  # noqa: E402
from models import Ticket  # noqa: E402

BATCH = 20_000


async def fill(app: App, start: int, count: int) -> None:
    """Open tickets, nothing due for a day."""
    now = app.clock.now()
    later = now + timedelta(days=1)
    for first in range(start, start + count, BATCH):
        rows = [{"number": f"BX-20260101-{i:07d}", "kind": "repair", "category": "water", "urgency": "high",
                 "status": "new", "description": "bench", "channel": "web", "created_at": now, "updated_at": now,
                 "claim_due_at": now, "resolve_due_at": later, "next_check_at": later}
                for i in range(first, min(first + BATCH, start + count))]
        async with app.db.begin() as conn:
            await conn.execute(insert(Ticket.__table__), rows)


async def timed_sweep(app: App, due: int) -> float:
    """Make `due` tickets due, then time one sweep over them."""
    async with app.db.begin() as conn:
        await conn.execute(text("UPDATE tickets SET next_check_at = now() AT TIME ZONE 'utc' - interval '1 minute', "
                                "escalation_level = 0 WHERE id IN (SELECT id FROM tickets ORDER BY random() "
                                f"LIMIT {due})"))
    began = time.perf_counter()
    done = await sla_sweep(app, limit=due * 2)
    elapsed = time.perf_counter() - began
    assert done == due, (done, due)
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL (its schema is dropped and recreated!)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--due", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=await fresh_database(Path(tmp), args.database_url),
                            staff_groups={"team": {"channel": "telegram", "chat_id": "-1"}})
        app = App.create(settings, clock=Clock())
        async with app.sessionmaker() as s, s.begin():
            await seed_demo(s)
        report, filled = {}, 0
        for size in sorted(args.sizes):
            began = time.perf_counter()
            await fill(app, filled, size - filled)
            filled = size
            async with app.db.begin() as conn:
                await conn.execute(text("ANALYZE tickets"))
            load = time.perf_counter() - began
            runs = [await timed_sweep(app, args.due) for _ in range(3)]
            report[str(size)] = {"sweep_ms": round(statistics.median(runs) * 1000, 1),
                                 "runs_ms": [round(r * 1000, 1) for r in runs], "fill_s": round(load, 1)}
        await app.close()
    sizes = sorted(args.sizes)
    report["ratio_largest_to_smallest"] = round(report[str(sizes[-1])]["sweep_ms"]
                                                / report[str(sizes[0])]["sweep_ms"], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
