"""Fixtures: migrated databases (SQLite always, PostgreSQL when PROPDESK_TEST_DATABASE_URL is set), a conversation
engine over each, the platform fakes, and propdesk running against them."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import App
from bot.clock import Clock, FrozenClock
from bot.desk.demo_seed import seed_demo
from config.settings import Settings
from models import Base
from models.db import make_engine, upgrade
from tests.fakes.loopback import FakeServer
from tests.helpers.dialog import Chat, make_desk
from tests.running import Running

from tests.helpers.databases import NO_PG, PG_URL  # noqa: E402


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
    """A migrated, empty database of each kind: every test that stores anything runs on SQLite and on PostgreSQL
    (skipped, saying so, when PROPDESK_TEST_DATABASE_URL is not set)."""
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
    """A migrated SQLite database, for what only SQLite has (everything else takes `db_url`)."""
    return _sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 25, 2, 0, 0))  # 10:00 in Shanghai


@pytest.fixture
async def desk_engine(db_url, clock):
    """A conversation Engine over a seeded database of each kind (SQLite, and PostgreSQL when configured); its
    sessionmaker as `.sm`."""
    engine, sm, eng = await make_desk(db_url, clock)
    eng.sm = sm
    yield eng
    await eng.close()
    await engine.dispose()


@pytest.fixture
def chat(desk_engine):
    return lambda user="u1", **kw: Chat(desk_engine, user, **kw)


class Fakes:
    """The platform fakes a test started: `api = await fakes.start(FakeBotAPI())`."""

    def __init__(self) -> None:
        self.started: list[FakeServer] = []

    async def start(self, fake: FakeServer):  # noqa: ANN201 - the fake, started
        await fake.start()
        self.started.append(fake)
        return fake

    async def stop(self) -> None:
        while self.started:
            await self.started.pop().stop()


@pytest.fixture
async def fakes():
    """Start platform fakes (fake Telegram Bot API, WeChat, WeCom) for a test; all stopped when it ends — after the
    propdesk that talks to them, since `propdesk` depends on this fixture and so is torn down first."""
    started = Fakes()
    yield started
    await started.stop()


@pytest.fixture
async def propdesk(db_url, tmp_path, fakes):
    """Start propdesk for a test — its HTTP server on loopback, the given channels, its delivery worker — over the
    test's database (seeded with the demo data once): `run = await propdesk([TelegramChannel], telegram_token=...)`.
    Several calls make several workers over one database. All are stopped when the test ends, before the fakes."""
    started: list[Running] = []

    async def start(channels: list, prepare=None, clock=None, **settings) -> Running:  # noqa: ANN001
        """`channels`: channel classes (each made with the App); `prepare(session)`: more data, with the seed;
        `settings`: Settings fields beyond the database, the upload folder and a short delivery backoff."""
        settings = {"database_url": db_url, "upload_dir": str(tmp_path / "up"), "delivery_backoff_seconds": 0.1,
                    **settings}
        app = App.create(Settings(**settings), clock=clock or Clock())
        if not started:
            async with app.sessionmaker() as s, s.begin():
                await seed_demo(s)
                if prepare is not None:
                    await prepare(s)
        running = await Running(app, [channel(app) for channel in channels]).start()
        started.append(running)
        return running

    yield start
    while started:
        await started.pop().stop()


@pytest.fixture
async def desk(desk_engine, clock):
    """An app over a seeded database with the escalation ladder's three staff groups (team, supervisors, managers)."""
    from tests.helpers.sla import GROUPS

    settings = Settings(database_url=desk_engine.settings.database_url, staff_groups=GROUPS, default_group="team")
    app = App.create(settings, clock=clock)
    yield app
    await app.close()
