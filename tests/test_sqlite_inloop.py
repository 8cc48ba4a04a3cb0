"""SQLite calls on the event loop: a writer waiting for another's lock waits on the loop, never blocks it."""
from __future__ import annotations

import asyncio
import shutil
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from models import sqlite_inloop
from models.db import make_engine


@pytest.fixture
def db_path(tmp_path, sqlite_template):
    path = tmp_path / "propdesk.db"
    shutil.copy(sqlite_template, path)
    return path


async def _hold_write_lock(engine, seconds: float, committed: list) -> None:  # noqa: ANN001
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO people (name, created_at) VALUES ('first', '2026-11-25 08:00:00')"))
        await asyncio.sleep(seconds)  # the write lock is held across an await, as a flow step may
    committed.append(time.monotonic())


class LoopTicks:
    """Counts how often the event loop ran a 10 ms heartbeat while the block ran."""

    def __init__(self):
        self.ticks = 0

    async def _beat(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> "LoopTicks":
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()


async def test_a_second_writer_waits_on_the_loop_and_then_writes(db_path):
    """Two pools (as two workers would have) write at once: the second waits for the first's commit while the
    loop keeps running other tasks, then succeeds; both rows are there."""
    first, second = (make_engine(f"sqlite+aiosqlite:///{db_path}") for _ in range(2))
    committed: list[float] = []

    async def write_second() -> float:
        await asyncio.sleep(0.05)  # after the first holds the lock
        async with second.begin() as conn:
            await conn.execute(text("INSERT INTO people (name, created_at) VALUES ('second', '2026-11-25 08:00:01')"))
        return time.monotonic()

    async with LoopTicks() as loop:
        _, second_done = await asyncio.gather(_hold_write_lock(first, 0.4, committed), write_second())
    assert second_done >= committed[0]  # it waited for the first commit
    assert loop.ticks >= 20  # ~40 expected in 0.4 s: the loop ran while the second writer waited
    async with first.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM people WHERE name IN ('first', 'second')"))).scalars()
        assert sorted(names) == ["first", "second"]
    for engine in (first, second):
        await engine.dispose()


async def test_a_writer_gives_up_after_its_busy_time(db_path):
    holder = make_engine(f"sqlite+aiosqlite:///{db_path}")
    impatient = create_async_engine(f"sqlite+aiosqlite:///{db_path}",
                                    async_creator=sqlite_inloop.creator(str(db_path), busy_seconds=0.1))

    async def write() -> None:
        await asyncio.sleep(0.05)
        async with impatient.begin() as conn:
            await conn.execute(text("INSERT INTO people (name, created_at) VALUES ('late', '2026-11-25 08:00:02')"))

    results = await asyncio.gather(_hold_write_lock(holder, 0.6, []), write(), return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], OperationalError) and "locked" in str(results[1])
    async with holder.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM people WHERE name = 'late'"))).scalar() == 0
    for engine in (holder, impatient):
        await engine.dispose()


async def test_errors_other_than_busy_are_raised_at_once(db_path):
    engine = make_engine(f"sqlite+aiosqlite:///{db_path}")
    began = time.monotonic()
    with pytest.raises(OperationalError, match="no such table"):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    assert time.monotonic() - began < 0.5
    await engine.dispose()


def test_only_full_or_normal_durability():
    with pytest.raises(ValueError):
        make_engine("sqlite+aiosqlite:///x.db", "OFF")


async def test_another_process_holding_the_write_lock_delays_a_step_without_blocking_the_loop(db_path, clock):
    """E.g. `propdesk staff add` writing while the service runs: the conversation step waits for the other
    process's commit on the loop, and goes through."""
    import subprocess
    import sys

    from bot.conversation.engine import Engine, Sender
    from config.settings import Settings
    from handlers.messages import Inbound
    from models.db import make_sessionmaker

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(0.6)\n"
        "c.execute('COMMIT')\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        db = make_engine(f"sqlite+aiosqlite:///{db_path}")
        engine = Engine(make_sessionmaker(db), Settings(database_url=f"sqlite+aiosqlite:///{db_path}"), clock=clock)
        began = time.monotonic()
        async with LoopTicks() as loop:
            replies = await engine.handle(Sender("test", "u-9", "u-9", "Owner"), Inbound.text_or_command("菜单"))
        waited = time.monotonic() - began
        assert replies and waited >= 0.3  # it had to wait for the other process
        assert loop.ticks >= 15  # and the loop ran meanwhile
        await engine.close()
        await db.dispose()
    finally:
        holder.wait(timeout=10)
