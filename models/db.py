"""Engine, sessions and schema migrations (Alembic, run programmatically)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from models import sqlite_inloop
from models.step_transactions import CoreTransactions, SqliteTransactions

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
STEP_BUSY_SECONDS = 30.0  # how long a conversation step waits for another process's write lock on SQLite


def make_engine(url: str, sqlite_synchronous: str = "NORMAL") -> AsyncEngine:
    """The async engine for `url`. On SQLite, `sqlite_synchronous` is its PRAGMA synchronous: FULL (each commit
    reaches the disk before the owner is answered) or NORMAL (WAL's faster setting: safe from a crash of the
    process, while a power cut may take the last commits)."""
    if sqlite_synchronous.upper() not in ("FULL", "NORMAL"):
        raise ValueError(f"sqlite_synchronous must be FULL or NORMAL, not {sqlite_synchronous!r}")
    if url.startswith("sqlite"):
        return _sqlite_engine(url, sqlite_synchronous)
    # No ping before each checkout (a round trip per message, a third of the throughput): a connection that died
    # with a server restart fails at first use instead, the pool drops it, and the engine runs the message again
    # (bot.engine). Enough connections for a busy worker's concurrent messages.
    return create_async_engine(url, pool_pre_ping=False, pool_size=20, max_overflow=10, pool_recycle=1800,
                               hide_parameters=True)  # errors and logs never carry owners' data


def _inloop_path(url: str) -> str | None:
    """The file of a SQLite URL whose calls can run on the event loop (see sqlite_inloop); None for memory."""
    path = make_url(url).database
    return path if path and path != ":memory:" and not path.startswith("file:") else None


def _sqlite_engine(url: str, synchronous: str, steps: bool = False) -> AsyncEngine:
    """`steps`: the conversation steps' own engine, one connection whose transactions they manage themselves (never
    rolled back by the pool, commits and rollbacks from SQLAlchemy ignored: see models.step_transactions)."""
    path = _inloop_path(url)
    if steps:  # named parameters (`:name`): the steps' statements run on sqlite3 with a dict of them
        if path is None:
            raise ValueError(f"the steps' own engine needs a SQLite file, not {url!r}")
        engine = create_async_engine(url, async_creator=sqlite_inloop.creator(
            path, busy_seconds=STEP_BUSY_SECONDS, connection=sqlite_inloop.StepConnection), poolclass=StaticPool,
            pool_reset_on_return=None, paramstyle="named", hide_parameters=True)
    elif path:  # a file: its calls run on the event loop, waiting for a writer's lock there
        engine = create_async_engine(url, async_creator=sqlite_inloop.creator(path, busy_seconds=30),
                                     hide_parameters=True)
    else:
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cur.close()

    return engine


def step_transactions(db: AsyncEngine, sqlite_synchronous: str = "NORMAL") -> CoreTransactions | SqliteTransactions:
    """How conversation steps run their transactions on `db` (see step_transactions): on a SQLite file, on a
    connection of their own, statement by statement on the driver."""
    url = db.url.render_as_string(hide_password=False)
    if db.dialect.name != "sqlite":
        return CoreTransactions(db)
    if _inloop_path(url) is None:
        return CoreTransactions(db, serial=True)
    return SqliteTransactions(_sqlite_engine(url, sqlite_synchronous, steps=True), busy_seconds=STEP_BUSY_SECONDS)


def insert_for(dialect_name: str) -> Callable[..., Any]:
    """The INSERT construct with ON CONFLICT for this database (PostgreSQL's and SQLite's, alike in use)."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


def dialect_name(session: AsyncSession) -> str:
    """The name of the database's dialect ("postgresql", "sqlite") a session works on."""
    if session.bind is None:
        raise RuntimeError("the session is not bound to an engine")
    return session.bind.dialect.name


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def _alembic(engine: AsyncEngine, fn: Callable[[Config, str], Any], revision: str) -> None:
    """Run an Alembic command on this engine's connection (Alembic's connection-sharing recipe)."""

    def run(sync_conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        fn(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _alembic(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _alembic(engine, command.downgrade, revision)


def upgrade_url(url: str) -> None:
    """Synchronous entry point for the CLI: migrate the database at `url` to head."""

    async def go() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
