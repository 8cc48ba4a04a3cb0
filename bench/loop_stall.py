"""How long the event loop stalls while owners' messages run through `Engine.handle` on SQLite.

    .venv/bin/python bench/loop_stall.py [--rate 200] [--seconds 10] [--owners 200] [--saturation-owners 200]
                                         [--database-url ...]

Everything runs on one event loop, as in one worker: the owners (each sends a message, and its next only after the
answer), a heartbeat task that wakes every 5 ms and records how late it woke (the loop's stall, which every other
channel of the worker waits out too), and another writer that writes a row through the application's own engine
every 20 ms (e.g. a staff action or the delivery worker) and records how long it took. Two loads:
- open loop: `--rate` messages a second from `--owners` owners, in turn, after a warm-up (each owner's first
  message);
- saturation: `--saturation-owners` owners at once, each sending its next message as soon as it is answered.
Reports p50/p99/max of the heartbeat's lateness and of the other writer's latency, and the messages handled.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.common import fresh_database, paced  # noqa: E402
from bot.app import App  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.conversation.engine import Sender  # noqa: E402
from bot.desk.demo_seed import seed_demo  # noqa: E402
from config.settings import Settings  # noqa: E402
from handlers.messages import Inbound  # noqa: E402

SCRIPT = ["菜单", "厨房水龙头一直滴水", "取消", "我的工单"]
BEAT, WRITE_EVERY = 0.005, 0.02


def percentiles(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(statistics.median(values) * 1000, 2),
            "p99_ms": round(values[max(0, int(len(values) * 0.99) - 1)] * 1000, 2),
            "max_ms": round(values[-1] * 1000, 2)}


class Probes:
    """The heartbeat and the other writer, while a load runs."""

    def __init__(self, app: App):
        self.app = app
        self.lateness: list[float] = []
        self.writes: list[float] = []
        self._tasks: list[asyncio.Task] = []

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + BEAT
            await asyncio.sleep(BEAT)
            self.lateness.append(max(0.0, loop.time() - due))

    async def _writer(self) -> None:
        n = 0
        while True:
            began = time.perf_counter()
            async with self.app.db.begin() as conn:
                await conn.execute(text("INSERT INTO audit_probe (n) VALUES (:n)"), {"n": n})
            self.writes.append(time.perf_counter() - began)
            n += 1
            await asyncio.sleep(WRITE_EVERY)

    def __enter__(self) -> "Probes":
        self._tasks = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._writer())]
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()

    def report(self) -> dict:
        return {"loop_lateness": percentiles(self.lateness), "other_writer": percentiles(self.writes)}


async def say(app: App, who: str, n: int) -> None:
    await app.engine.handle(Sender("bench", who, who, who), Inbound.text_or_command(SCRIPT[n % len(SCRIPT)]))


async def open_loop(app: App, rate: float, seconds: float, owners: int) -> dict:
    counts = [1] * owners
    locks = [asyncio.Lock() for _ in range(owners)]
    await asyncio.gather(*(say(app, f"o{k}", 0) for k in range(owners)))  # warm-up: first contact

    async def one(i: int) -> None:
        k = i % owners
        async with locks[k]:
            await say(app, f"o{k}", counts[k])
            counts[k] += 1

    with Probes(app) as probes:
        sent, elapsed = await paced(rate, seconds, one)
    return {"messages_per_s": round(sent / elapsed, 1), **probes.report()}


async def saturation(app: App, seconds: float, owners: int) -> dict:
    await asyncio.gather(*(say(app, f"s{k}", 0) for k in range(owners)))  # warm-up: first contact
    handled = 0
    deadline = time.perf_counter() + seconds

    async def owner(k: int) -> None:
        nonlocal handled
        n = 1
        while time.perf_counter() < deadline:
            await say(app, f"s{k}", n)
            n += 1
            handled += 1

    with Probes(app) as probes:
        began = time.perf_counter()
        await asyncio.gather(*(owner(k) for k in range(owners)))
        elapsed = time.perf_counter() - began
    return {"messages_per_s": round(handled / elapsed, 1), **probes.report()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--saturation-owners", type=int, default=200)
    parser.add_argument("--database-url", help="a PostgreSQL URL (its schema is dropped and recreated!); "
                        "SQLite in a temporary folder by default")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=await fresh_database(Path(tmp), args.database_url),
                            upload_dir=str(Path(tmp) / "uploads"))
        app = App.create(settings, clock=Clock())
        async with app.sessionmaker() as s, s.begin():
            await seed_demo(s)
        async with app.db.begin() as conn:  # the other writer's table, outside the schema
            await conn.execute(text("CREATE TABLE IF NOT EXISTS audit_probe (n INTEGER)"))
        try:
            report = {"open_loop": await open_loop(app, args.rate, args.seconds, args.owners),
                      "saturation": await saturation(app, args.seconds, args.saturation_owners)}
        finally:
            await app.close()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
