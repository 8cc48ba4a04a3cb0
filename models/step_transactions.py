"""The transaction of one conversation step: its few Core statements run with as little work per statement as the
database allows, and an ORM session joins the same transaction only when a flow asks for one.

- `CoreTransactions` (PostgreSQL, and SQLite through the stock aiosqlite driver): SQLAlchemy's AsyncConnection.
- `SqliteTransactions` (SQLite files through the in-loop driver, the default): one connection kept for the steps,
  which run one at a time. Each Core statement is compiled by SQLAlchemy once, and then run on the sqlite3
  connection itself with the statement's own type conversions: SQLAlchemy's execution path costs ~150 µs a
  statement on a 2-core machine, the sqlite3 call ~15 µs, and a step is four statements and a commit
  (bench/wechat_callbacks.py). Steps that run together share one transaction, each in a savepoint (group
  commit, see the class). The transaction is BEGIN IMMEDIATE: SQLite's write lock is held from the first read, so
  a step on another process's connection waits (on the event loop, see sqlite_inloop) instead of reading a
  conversation that is about to change.

Both give the step a `StepTx`: `execute(statement, params)` -> a result with `first()`, `all()`, `scalar()` and
`rowcount`; `session()` -> the AsyncSession in the same transaction; `dialect`.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from models import sqlite_inloop


class StepTx(Protocol):
    dialect: Any

    async def execute(self, stmt, params=None): ...  # noqa: ANN001, ANN201, E704

    def session(self) -> AsyncSession: ...  # noqa: E704


class CoreTx:
    def __init__(self, conn: AsyncConnection):
        self.conn = conn
        self.dialect = conn.dialect
        self._session: AsyncSession | None = None

    async def execute(self, stmt, params=None):  # noqa: ANN001, ANN201
        return await self.conn.execute(stmt, params)

    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(bind=self.conn, expire_on_commit=False)
        return self._session

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()


class CoreTransactions:
    def __init__(self, db: AsyncEngine, serial: bool = False):
        self.db = db
        # SQLite has one writer at a time and the stock driver waits for its lock on a thread: queue this
        # process's steps here instead.
        self._serial = asyncio.Lock() if serial else None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[CoreTx]:
        if self._serial is None:
            async with self._begin() as tx:
                yield tx
            return
        async with self._serial, self._begin() as tx:
            yield tx

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[CoreTx]:
        async with self.db.begin() as conn:
            tx = CoreTx(conn)
            try:
                yield tx
            finally:
                await tx._close_session()  # joined the connection's transaction: closing it commits nothing

    async def close(self) -> None:
        pass


# -- SQLite, statement by statement on the driver's connection ---------------------------------------------------
class _Unsupported(Exception):
    """A statement this runner does not take (Python-side defaults, expanding IN lists): SQLAlchemy runs it."""


class _Result:
    def __init__(self, rows: list, rowcount: int):
        self._rows, self.rowcount = rows, rowcount

    def first(self):  # noqa: ANN201
        return self._rows[0] if self._rows else None

    def all(self) -> list:
        return list(self._rows)

    def scalar(self):  # noqa: ANN201
        return self._rows[0][0] if self._rows else None


class _Compiled:
    """A Core statement compiled once: its SQL, where each positional parameter comes from and how it is converted,
    and how each result column is converted back — SQLAlchemy's own conversions, taken from the statement."""

    def __init__(self, stmt, dialect, keys: list[str]):  # noqa: ANN001
        compiled = stmt.compile(dialect=dialect, column_keys=keys)  # as Connection.execute compiles it
        if compiled.positiontup is None or compiled.insert_prefetch or compiled.update_prefetch \
                or any(b.expanding or b.callable for b in compiled.binds.values()):
            raise _Unsupported
        self.sql = compiled.string
        self.params: list[tuple[str, bool, Any, Callable | None]] = []  # (key, required, value, converter)
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.params.append((bind.key, bind.required, bind.value, convert))
        columns = list(getattr(stmt, "exported_columns", ()))
        self.row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None
        self.results = [(i, p) for i, p in ((i, c.type.dialect_impl(dialect).result_processor(dialect, None))
                                            for i, c in enumerate(columns)) if p is not None]

    def bind(self, params: dict) -> list:
        values = []
        for key, required, value, convert in self.params:
            if key in params:
                value = params[key]
            elif required:
                raise sa_exc.InvalidRequestError(f"A value is required for bind parameter {key!r}")
            values.append(convert(value) if convert is not None else value)
        return values

    def rows(self, raw: list[tuple]) -> list:
        if self.row is None:
            return raw
        rows = []
        for values in raw:
            values = list(values)
            for i, convert in self.results:
                values[i] = convert(values[i])
            rows.append(self.row._make(values))
        return rows


class SqliteTx:
    def __init__(self, owner: "SqliteTransactions"):
        self._owner = owner
        self.dialect = owner.bridge.dialect
        self._session: AsyncSession | None = None
        self._conn: AsyncConnection | None = None

    async def execute(self, stmt, params=None):  # noqa: ANN001, ANN201
        many = isinstance(params, list)
        first = (params[0] if many else params) or {}
        compiled = self._owner.compiled(stmt, first)
        if compiled is None:  # not one this runner takes: SQLAlchemy runs it, on the same connection
            if self._conn is None:
                self._conn = await self._owner.bridge.connect()
            return await self._conn.execute(stmt, params)
        args = [compiled.bind(p) for p in params] if many else compiled.bind(first)
        run = self._owner.raw.executemany if many else self._owner.raw.execute
        try:
            try:
                cursor = run(compiled.sql, args)
            except sqlite3.OperationalError as exc:  # another process's writer: wait for it on the loop
                if exc.sqlite_errorcode != sqlite_inloop.SQLITE_BUSY:
                    raise
                cursor = await sqlite_inloop.retry_busy(run, (compiled.sql, args), self._owner.driver.busy_seconds)
            rows = compiled.rows(cursor.fetchall()) if cursor.description else []
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it, e.g. IntegrityError
            raise sa_exc.DBAPIError.instance(compiled.sql, args, exc, sqlite3.Error) from exc
        return _Result(rows, cursor.rowcount)

    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(bind=self._owner.bridge, expire_on_commit=False)
        return self._session

    async def _close(self) -> None:
        # After the commit or rollback on the driver's connection, so what these roll back on close is nothing.
        if self._session is not None:
            await self._session.close()
        if self._conn is not None:
            await self._conn.close()


class _Batch:
    """One transaction that several steps share; each step's caller waits for its commit."""

    def __init__(self) -> None:
        self.committed = asyncio.get_running_loop().create_future()
        self.steps = 0
        self.commit_scheduled = False


class SqliteTransactions:
    """Steps one at a time on one connection, each in a savepoint of a shared transaction (group commit): the first
    step of a batch schedules its commit behind the steps already waiting to run, which join the batch (at most
    16), and each step returns once that commit is done. Writing the log at commit cost a third of a step; under
    load the steps that arrive together share it, and one step alone waits one turn of the event loop for it."""

    MAX_BATCH = 16  # an answer waits for at most this many steps before its commit

    def __init__(self, bridge: AsyncEngine):
        """`bridge`: the steps' engine over their one connection (see models.db)."""
        self.bridge = bridge
        self.driver: sqlite_inloop.Connection | None = None
        self.raw: sqlite3.Connection | None = None
        self.commits = 0
        self._lock = asyncio.Lock()
        self._batch: _Batch | None = None
        self._committers: set[asyncio.Task] = set()  # scheduled commits (a task needs a reference kept)
        self._compiled: dict[tuple, _Compiled | None] = {}

    def compiled(self, stmt, params: dict) -> _Compiled | None:  # noqa: ANN001
        """The statement compiled for these parameter names, or None when this runner does not take it."""
        key = (stmt, tuple(params))
        try:
            return self._compiled[key]
        except KeyError:
            pass
        if len(self._compiled) >= 1000:  # statements built per call (not the hot path's) would pile up
            self._compiled.clear()
        try:
            self._compiled[key] = _Compiled(stmt, self.bridge.dialect, sorted(params))
        except _Unsupported:
            self._compiled[key] = None
        return self._compiled[key]

    async def _connect(self) -> None:
        async with self.bridge.connect() as conn:  # the pool keeps it: StaticPool, no reset on return
            self.driver = (await conn.get_raw_connection()).driver_connection
        self.raw = self.driver._conn  # noqa: SLF001 - the sqlite3 connection under the in-loop driver

    async def _open(self) -> _Batch:
        if self.raw is None:
            await self._connect()
        if self._batch is None:
            await sqlite_inloop.retry_busy(self.raw.execute, ("BEGIN IMMEDIATE",), self.driver.busy_seconds)
            self._batch = _Batch()
        return self._batch

    async def _commit(self, batch: _Batch) -> None:
        self._batch = None
        try:
            await sqlite_inloop.retry_busy(self.raw.commit, (), self.driver.busy_seconds)
        except BaseException as exc:  # nothing of the batch is kept; each of its steps hears why
            self.raw.rollback()
            error = exc if isinstance(exc, sqlite3.Error) else sqlite3.OperationalError(f"commit failed: {exc!r}")
            batch.committed.set_exception(sa_exc.DBAPIError.instance("COMMIT", (), error, sqlite3.Error))
            return
        self.commits += 1
        batch.committed.set_result(None)

    async def _commit_later(self, batch: _Batch) -> None:
        async with self._lock:  # behind the steps already waiting, which join the batch
            if self._batch is batch:
                await self._commit(batch)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqliteTx]:
        await self._lock.acquire()
        try:
            batch = await self._open()
        except BaseException:
            self._lock.release()
            raise
        raw = self.raw
        raw.execute("SAVEPOINT step")
        tx, failure = SqliteTx(self), None
        try:
            yield tx
        except BaseException as exc:  # this step only is undone; the others of the batch stay
            failure = exc
            if raw.in_transaction:  # (some errors make SQLite roll back the whole transaction itself)
                raw.execute("ROLLBACK TO step")
        try:
            await tx._close()
            if not raw.in_transaction:
                self._lost(batch, failure)
            else:
                raw.execute("RELEASE step")
                batch.steps += 1
                if batch.steps >= self.MAX_BATCH:
                    await self._commit(batch)
                elif not batch.commit_scheduled:
                    batch.commit_scheduled = True
                    committer = asyncio.get_running_loop().create_task(self._commit_later(batch))
                    self._committers.add(committer)
                    committer.add_done_callback(self._committers.discard)
        finally:
            self._lock.release()
        try:
            await batch.committed  # the step is done when what it read and wrote is committed
        except Exception:
            if failure is None:
                raise
        if failure is not None:
            raise failure

    def _lost(self, batch: _Batch, cause: BaseException | None) -> None:
        """SQLite rolled the shared transaction back on its own (a full disk, say): all of its steps failed."""
        self._batch = None
        if not batch.committed.done():
            error = sqlite3.OperationalError(f"the transaction was rolled back: {cause!r}")
            batch.committed.set_exception(sa_exc.DBAPIError.instance("COMMIT", (), error, sqlite3.Error))

    async def close(self) -> None:
        if self._batch is not None:
            await self._commit_later(self._batch)
        await self.bridge.dispose()
        self.raw = self.driver = None
