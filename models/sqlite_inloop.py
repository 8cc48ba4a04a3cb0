"""SQLite under SQLAlchemy's asyncio engine, called on the event loop's own thread.

SQLAlchemy's aiosqlite dialect runs every call on a worker thread: each statement, fetch and commit is a thread
hop, and a conversation step of three statements spent most of its time hopping (bench/telegram_updates.py). A
local SQLite file answers an indexed lookup in microseconds, so here the calls run inline, behind the same
aiosqlite-shaped interface the dialect drives (it is passed as the engine's `async_creator`).

What the worker thread gave for free is kept cooperatively: waiting for another writer's lock must not stop the
loop (the writer holding it may be a task on this very loop), so SQLite's own busy wait is off and a statement
refused with SQLITE_BUSY sleeps with `asyncio.sleep` and runs again, for up to `busy_seconds`.

The sqlite3 connection is this driver's public `Connection.sqlite`. SQLAlchemy's aiosqlite adapter, written for
aiosqlite, reads three names of aiosqlite's own from the driver it wraps: `_connection` (None once closed),
`_conn` (the sqlite3 connection) and `_tx` (the queue of calls for aiosqlite's thread). This driver provides them,
as aliases, for the adapter only: nothing in propdesk reads them (tests/test_sqlite_pins.py drives the adapter
through them, and fails if it wants something else).
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any, Callable

SQLITE_BUSY = 5  # the primary result code only: SQLITE_BUSY_SNAPSHOT (517) cannot be waited out


class Writers:
    """This process's writers waiting for SQLite's lock (a statement refused with SQLITE_BUSY, sleeping before it
    tries again). A writer that lets go of the lock wakes them to try at once (`released`), and one that takes it
    again and again — the conversation steps, batch after batch — gives them a turn first (`give_way`): else the
    steps, which take the lock again within the same turn of the loop, would keep any other writer out for as long
    as messages keep coming."""

    def __init__(self) -> None:
        self.waiting = 0
        self._wake: asyncio.Future | None = None

    async def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if self._wake is None or self._wake.done() or self._wake.get_loop() is not loop:
            self._wake = loop.create_future()
        await asyncio.wait((self._wake,), timeout=seconds)

    def released(self) -> None:
        if self.waiting and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def give_way(self, turns: int = 4) -> None:
        """Let the waiting writers run (a few turns of the loop at most: one may wait for another database)."""
        self.released()
        for _ in range(turns):
            if not self.waiting:
                return
            await asyncio.sleep(0)


WRITERS = Writers()


async def retry_busy(fn: Callable[..., Any], args: tuple, busy_seconds: float) -> Any:
    try:
        return fn(*args)
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != SQLITE_BUSY:
            raise
    deadline, pause = time.monotonic() + busy_seconds, 0.001
    WRITERS.waiting += 1
    try:
        while True:
            await WRITERS.pause(pause)
            try:
                return fn(*args)
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) != SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            pause = min(pause * 2, 0.05)
    finally:
        WRITERS.waiting -= 1


class Cursor:
    def __init__(self, conn: "Connection"):
        self.connection = conn
        self._cursor = conn.sqlite.cursor()

    async def __aenter__(self) -> "Cursor":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def description(self):  # noqa: ANN201
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> "Cursor":
        await retry_busy(self._cursor.execute, (sql, parameters), self.connection.busy_seconds)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> "Cursor":
        await retry_busy(self._cursor.executemany, (sql, seq_of_parameters), self.connection.busy_seconds)
        return self

    async def fetchone(self):  # noqa: ANN201
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Inline:
    """The dialect sets isolation levels by queueing a call for aiosqlite's thread: run it at once instead."""

    @staticmethod
    def put_nowait(item: tuple) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)


class Connection:
    _tx = _Inline()  # for SQLAlchemy's aiosqlite adapter (see the module)

    def __init__(self, conn: sqlite3.Connection, busy_seconds: float):
        self.sqlite = conn
        self.closed = False
        self.busy_seconds = busy_seconds

    @property
    def _conn(self) -> sqlite3.Connection:  # for SQLAlchemy's aiosqlite adapter (see the module)
        return self.sqlite

    @property
    def _connection(self) -> sqlite3.Connection | None:  # for SQLAlchemy's aiosqlite adapter: None once closed
        return None if self.closed else self.sqlite

    @property
    def isolation_level(self) -> str | None:
        return self.sqlite.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        # COMMIT may meet SQLITE_BUSY (readers finishing a checkpoint); the transaction stays open and can retry.
        await retry_busy(self.sqlite.commit, (), self.busy_seconds)
        WRITERS.released()

    async def rollback(self) -> None:
        self.sqlite.rollback()
        WRITERS.released()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        self.closed = True
        self.sqlite.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.sqlite.create_function(*args, **kwargs)


class StepConnection(Connection):
    """The conversation steps' connection: they begin, commit and roll back its transactions on the sqlite3
    connection themselves (models.step_transactions), several steps to one transaction. What SQLAlchemy asks of the
    driver when an ORM session ends — commit, or roll back on close — must not touch a transaction other steps
    share, so it does nothing here."""

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


def creator(path: str, busy_seconds: float = 30.0, connection: type[Connection] = Connection) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine`: connections to the SQLite file at `path`."""

    async def connect() -> Connection:
        # timeout=0: SQLite returns SQLITE_BUSY at once and the wait happens above, on the loop. The pool may
        # close a connection from another thread (garbage collection), hence no same-thread check.
        return connection(sqlite3.connect(path, timeout=0, check_same_thread=False), busy_seconds)

    return connect
