"""Fixtures: migrated databases (SQLite always, PostgreSQL when PROPDESK_TEST_DATABASE_URL is set), engines."""
from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.clock import FrozenClock
from bot.conversation.engine import Engine, Sender
from bot.desk.demo_seed import seed_demo
from config.settings import Settings
from handlers.messages import Inbound
from models import Base
from models.db import make_engine, make_sessionmaker, upgrade

PG_URL = os.environ.get("PROPDESK_TEST_DATABASE_URL")
NO_PG = "PostgreSQL not configured: set PROPDESK_TEST_DATABASE_URL (CI does) to run this on PostgreSQL"


def _run_in_thread(coro_fn) -> None:
    """Session set-up may be reached from inside a running loop: give it a loop of its own."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro_fn()).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrations are tested, but run once)."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"

    async def build() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await engine.dispose()

    _run_in_thread(build)
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    async def build() -> None:
        engine = make_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
        await engine.dispose()

    _run_in_thread(build)
    return PG_URL


def _sqlite_copy(template: Path, tmp_path: Path) -> str:
    dest = tmp_path / "propdesk.db"
    shutil.copy(template, dest)
    return f"sqlite+aiosqlite:///{dest}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request, tmp_path, sqlite_template):
    """A migrated, empty database: every storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield _sqlite_copy(sqlite_template, tmp_path)
        return
    if not PG_URL:
        pytest.skip(NO_PG)
    url = request.getfixturevalue("pg_migrated")
    engine = make_engine(url)
    async with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield url


@pytest.fixture
async def sqlite_url(tmp_path, sqlite_template) -> str:
    return _sqlite_copy(sqlite_template, tmp_path)


async def _make(url: str, clock: FrozenClock, settings: Settings | None = None):
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    async with sm() as session, session.begin():
        await seed_demo(session, today=clock.local().date())
    settings = settings or Settings(database_url=url)
    return engine, sm, Engine(sm, settings, clock=clock)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 25, 2, 0, 0))  # 10:00 in Shanghai


@pytest.fixture
async def desk_engine(sqlite_url, clock):
    """An Engine over a seeded SQLite database (flows are storage-agnostic; see test_storage for PG)."""
    engine, sm, eng = await _make(sqlite_url, clock)
    eng.sm = sm
    yield eng
    await eng.close()
    await engine.dispose()


@pytest.fixture
async def any_engine(db_url, clock):
    """An Engine over a seeded database of each kind."""
    engine, sm, eng = await _make(db_url, clock)
    eng.sm = sm
    yield eng
    await eng.close()
    await engine.dispose()


class Chat:
    """A transcript helper: send messages as one owner and read the bot's answers."""

    def __init__(self, engine: Engine, user: str = "u1", channel: str = "test", lang: str | None = "zh"):
        self.engine = engine
        self.sender = Sender(channel=channel, chat_id=user, user_id=user, display_name=user, lang_hint=lang)
        self.last = []

    async def send(self, text: str = "", **kw) -> str:
        msg = Inbound(**kw) if kw else Inbound.text_or_command(text)
        self.last = await self.engine.handle(self.sender, msg)
        return "\n".join(r.text for r in self.last)

    async def choose(self, choice_id: str) -> str:
        offered = [c.id for r in self.last for c in r.choices]
        assert choice_id in offered, f"{choice_id!r} not offered: {offered}"
        return await self.send(kind="choice", choice=choice_id)

    async def choose_like(self, prefix: str) -> str:
        ids = [c.id for r in self.last for c in r.choices if c.id.startswith(prefix)]
        assert ids, f"no choice starting {prefix!r}"
        return await self.choose(ids[0])

    @property
    def choices(self) -> list[str]:
        return [c.id for r in self.last for c in r.choices]


@pytest.fixture
def chat(desk_engine):
    return lambda user="u1", **kw: Chat(desk_engine, user, **kw)
