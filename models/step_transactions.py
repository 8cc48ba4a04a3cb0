"""The transaction of one conversation step: its few Core statements run with as little work per statement as the
database allows, and an ORM session joins the same transaction only when a flow asks for one.

- `CoreTransactions` (PostgreSQL, and SQLite through the stock aiosqlite driver): SQLAlchemy's AsyncConnection.
- `SqliteTransactions` (SQLite files through the in-loop driver, the default): one connection kept for the steps,
  which run one at a time. Each Core statement is compiled by SQLAlchemy once (`STATEMENTS`), and then run on the
  sqlite3 connection itself with the statement's own type conversions: SQLAlchemy's execution path costs ~150 µs a
  statement on a 2-core machine, the sqlite3 call ~15 µs, and a step is four statements and a commit
  (bench/wechat_callbacks.py). Steps that run together share one transaction, each in a savepoint (group
  commit, see the class). The transaction is BEGIN IMMEDIATE: SQLite's write lock is held from the first read, so
  a step on another process's connection waits (on the event loop, see sqlite_inloop) instead of reading a
  conversation that is about to change.

Only SQLAlchemy's public API is used for that: `ClauseElement.compile()` with the steps' engine's dialect, whose
paramstyle is "named" (so the SQL names its parameters, `:name`, which sqlite3 binds from a dict), `Compiled.string`
and `Compiled.params`, the statement's bind parameters found with `sqlalchemy.sql.visitors.iterate`, and each
type's `bind_processor` / `result_processor`. tests/test_sqlite_pins.py fails when what this relies on changes.

Both give the step a `StepTx`: `execute(statement, params)` -> a result with `first()`, `all()`, `scalar()` and
`rowcount`; `session()` -> the AsyncSession in the same transaction; `dialect`.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import namedtuple
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Hashable, Protocol, Sequence

from sqlalchemy import BindParameter, ColumnElement, Dialect, Executable, Insert, Update, bindparam
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement, visitors
from sqlalchemy.types import NullType, TypeEngine

from models import sqlite_inloop


Params = dict[str, Any] | list[dict[str, Any]] | None  # one statement's parameters, or a list for executemany
Converter = Callable[[Any], Any]


class StepResult(Protocol):
    """What a step's statement returns: SQLAlchemy's CursorResult, or the SQLite step path's `_Result`."""

    @property
    def rowcount(self) -> int:
        ...

    def first(self) -> Any:
        ...

    def all(self) -> Sequence[Any]:
        ...

    def scalar(self) -> Any:
        ...


class StepTx(Protocol):
    dialect: Any

    async def execute(self, stmt: Executable, params: Params = None) -> StepResult:
        ...

    def session(self) -> AsyncSession:
        ...


def param(column: ColumnElement[Any], key: str | None = None) -> BindParameter[Any]:
    """A bind parameter typed as `column` (named `key`, else after the column). The steps' statements type their
    parameters: one left untyped in VALUES or SET gets its column's type only as SQLAlchemy compiles it, which the
    SQLite step path cannot see, so such a statement would take SQLAlchemy's slower path there."""
    return bindparam(key or column.key, type_=column.type)


# -- the one statement cache ---------------------------------------------------------------------------------------
class StatementCache:
    """The process's hot statements, each kept once per dialect: built (a construct whose form depends on the
    dialect, e.g. INSERT .. ON CONFLICT) and, on the SQLite step path, compiled. Keyed by statement (or builder and
    its arguments) and dialect name; statements built per call (not the hot path's) are let go past `limit`."""

    def __init__(self, limit: int = 1000):
        self.limit = limit
        self._entries: dict[Hashable, Any] = {}

    def _get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        try:
            return self._entries[key]
        except KeyError:
            pass
        if len(self._entries) >= self.limit:
            self._entries.clear()
        value = self._entries[key] = make()
        return value

    def built(self, builder: Callable[..., Any], dialect_name: str, *args: Hashable) -> Any:
        """`builder(dialect_name, *args)`, built once."""
        return self._get(("built", builder, dialect_name, args), lambda: builder(dialect_name, *args))

    def compiled(self, stmt: Executable, dialect: Dialect, keys: tuple[str, ...]) -> "_Compiled | None":
        """`stmt` compiled for the SQLite step path with these parameter names; None when SQLAlchemy must run it."""
        key = ("compiled", stmt, dialect.name, keys)
        try:
            return self._entries[key]
        except KeyError:
            pass

        def make() -> _Compiled | None:
            try:
                return _Compiled(stmt, dialect, keys)
            except _Unsupported:
                return None
        return self._get(key, make)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


STATEMENTS = StatementCache()


# -- PostgreSQL, and SQLite without the in-loop driver: SQLAlchemy Core --------------------------------------------
class CoreTx:
    def __init__(self, conn: AsyncConnection):
        self.conn = conn
        self.dialect = conn.dialect
        self._session: AsyncSession | None = None

    async def execute(self, stmt: Executable, params: Params = None) -> StepResult:
        return await self.conn.execute(stmt, params)

    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(bind=self.conn, expire_on_commit=False)
        return self._session

    async def close_session(self) -> None:
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
                await tx.close_session()  # joined the connection's transaction: closing it commits nothing

    async def close(self) -> None:
        pass


# -- SQLite, statement by statement on the driver's connection ---------------------------------------------------
class _Unsupported(Exception):
    """A statement this runner does not take (Python-side defaults, expanding IN lists, untyped parameters):
    SQLAlchemy runs it."""


def _processor(type_: TypeEngine[Any], dialect: Dialect) -> Converter | None:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _convert(type_: TypeEngine[Any], dialect: Dialect, value: Any) -> Any:
    process = _processor(type_, dialect)
    return process(value) if process is not None else value


class _Compiled:
    """A Core statement compiled once for the SQLite step path: its SQL with named parameters, how each parameter
    is converted (its type's bind processor, applied per call, or once for a value fixed in the statement), and how
    each result column is converted back.

    Which type a parameter has comes from the statement's own bind parameters, matched by name; a value written
    into VALUES or SET (`.values(active=True)`) is named after its column and has its column's type; a parameter
    SQLAlchemy adds while compiling (SQLite's `OFFSET 0`) is a plain int or str, which no type converts on SQLite.
    Whatever cannot be matched so makes the statement `_Unsupported`."""

    def __init__(self, stmt: Executable, dialect: Dialect, keys: tuple[str, ...]):
        if dialect.paramstyle != "named" or not isinstance(stmt, ClauseElement):
            raise _Unsupported
        binds = [e for e in visitors.iterate(stmt) if isinstance(e, BindParameter)]
        if any(b.expanding or b.callable is not None for b in binds):
            raise _Unsupported  # a value known only at execution
        compiled = stmt.compile(dialect=dialect, column_keys=sorted(keys),  # as Connection.execute compiles it
                                compile_kwargs={"render_postcompile": True})
        values = compiled.params  # every parameter the SQL names, with the value the statement fixes, if any
        named: dict[str, list[BindParameter]] = {}
        fixed: list[BindParameter] = []  # anonymous ones (`x == 5`, `.limit(30)`), with their values
        for b in binds:
            if b.key in values:
                named.setdefault(b.key, []).append(b)
            elif b.required or b.key in keys:
                raise _Unsupported  # a value given per call that the SQL does not name (escaped, or rendered inline)
            else:
                fixed.append(b)
        table = stmt.table if isinstance(stmt, (Insert, Update)) else None
        self.sql = compiled.string
        self.fixed: dict[str, Any] = {}
        self.params: list[tuple[str, bool, Any, Converter | None]] = []  # (name, required, default, converter)
        for name, value in values.items():
            if name in named:
                same = named[name]
                if any(isinstance(b.type, NullType) for b in same) \
                        or len({type(b.type.dialect_impl(dialect)) for b in same}) != 1:
                    raise _Unsupported
                b = same[0]
                self.params.append((name, b.required, value, _processor(b.type, dialect)))
            elif table is not None and name in table.c:  # a column's parameter, or a value in VALUES / SET
                column = table.c[name]
                if name in keys:
                    self.params.append((name, True, None, _processor(column.type, dialect)))
                elif value is None and (column.default is not None or column.onupdate is not None):
                    raise _Unsupported  # SQLAlchemy computes the column's default at each execution
                else:
                    self.fixed[name] = _convert(column.type, dialect, value)
            else:
                same = [b for b in fixed if type(b.value) is type(value) and b.value == value]
                if not same and type(value) in (int, str):
                    self.fixed[name] = value  # added by the compiler (OFFSET 0)
                    continue
                if not same or any(isinstance(b.type, NullType) for b in same):
                    raise _Unsupported
                converted = [_convert(b.type, dialect, value) for b in same]
                if any(c != converted[0] for c in converted):
                    raise _Unsupported
                self.fixed[name] = converted[0]
        columns = list(getattr(stmt, "exported_columns", ()))
        self.row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None
        self.results = [(i, p) for i, p in ((i, c.type.dialect_impl(dialect).result_processor(dialect, None))
                                            for i, c in enumerate(columns)) if p is not None]

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        values = dict(self.fixed)
        for name, required, value, convert in self.params:
            if name in params:
                value = params[name]
            elif required:
                raise sa_exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
            values[name] = convert(value) if convert is not None else value
        return values

    def rows(self, raw: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if self.row is None:
            return raw
        rows: list[tuple[Any, ...]] = []
        for fetched in raw:
            values = list(fetched)
            for i, convert in self.results:
                values[i] = convert(values[i])
            rows.append(self.row._make(values))  # type: ignore[attr-defined]  # typeshed: namedtuple() gives a plain tuple type
        return rows


class _Result:
    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int):
        self._rows, self.rowcount = rows, rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


def _is_closed(raw: sqlite3.Connection) -> bool:
    try:
        raw.total_changes  # noqa: B018 - raises once the connection is closed
    except sqlite3.ProgrammingError:
        return True
    return False


def _error(statement: str, params: Any, exc: BaseException, raw: sqlite3.Connection | None) -> sa_exc.StatementError:
    """As SQLAlchemy would raise it (e.g. IntegrityError); a closed connection is `connection_invalidated`, so
    that the engine runs the step again on a new one."""
    if not isinstance(exc, sqlite3.Error):
        exc = sqlite3.OperationalError(f"{statement} failed: {exc!r}")
    return sa_exc.DBAPIError.instance(statement, params, exc, sqlite3.Error,
                                      connection_invalidated=raw is None or _is_closed(raw))


class SqliteTx:
    def __init__(self, owner: "SqliteTransactions", raw: sqlite3.Connection):
        self._owner = owner
        self._raw = raw
        self.dialect = owner.bridge.dialect
        self._session: AsyncSession | None = None
        self._fallback: AsyncConnection | None = None

    async def execute(self, stmt: Executable, params: Params = None) -> StepResult:
        many = isinstance(params, list)
        first = (params[0] if isinstance(params, list) else params) or {}
        compiled = STATEMENTS.compiled(stmt, self.dialect, tuple(first))
        if compiled is None:  # not one this runner takes: SQLAlchemy runs it, on the same connection
            if self._fallback is None:
                self._fallback = await self._owner.bridge.connect()
            return await self._fallback.execute(stmt, params)
        args: dict[str, Any] | list[dict[str, Any]] = \
            [compiled.bind(p) for p in params] if isinstance(params, list) else compiled.bind(first)
        raw = self._raw
        run: Callable[..., sqlite3.Cursor] = raw.executemany if many else raw.execute
        try:
            try:
                cursor = run(compiled.sql, args)
            except sqlite3.OperationalError as exc:  # another process's writer (rare: the step holds the write
                if exc.sqlite_errorcode != sqlite_inloop.SQLITE_BUSY:  # lock from its BEGIN): wait on the loop
                    raise
                cursor = await sqlite_inloop.retry_busy(run, (compiled.sql, args), self._owner.busy_seconds)
            rows = compiled.rows(cursor.fetchall()) if cursor.description else []
        except sqlite3.Error as exc:
            raise _error(compiled.sql, args, exc, raw) from exc
        return _Result(rows, cursor.rowcount)

    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(bind=self._owner.bridge, expire_on_commit=False)
        return self._session

    async def close(self) -> None:
        # After the step's savepoint is released or rolled back: what these roll back on close is nothing (the
        # steps' driver ignores SQLAlchemy's commits and rollbacks, see sqlite_inloop.StepConnection).
        if self._session is not None:
            await self._session.close()
        if self._fallback is not None:
            await self._fallback.close()


class StepsClosed(RuntimeError):
    """The step transactions were closed (the application is stopping): no new step begins."""


class _Batch:
    """One transaction that several steps share; each step's caller waits for its commit, on a future of its own
    (cancelling one caller cancels nobody else's wait, nor the commit)."""

    def __init__(self) -> None:
        self.steps = 0
        self.commit_scheduled = False
        self.settled = False
        self.error: BaseException | None = None
        self._waiters: list[asyncio.Future] = []

    async def committed(self) -> None:
        if not self.settled:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        elif self.error is not None:
            raise self.error

    def succeed(self) -> None:
        self._settle(None)

    def fail(self, error: BaseException) -> None:
        self._settle(error)

    def _settle(self, error: BaseException | None) -> None:
        if self.settled:
            return
        self.settled, self.error = True, error
        for waiter in self._waiters:
            if waiter.done():  # its caller was cancelled
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        self._waiters = []


async def _finish(future: "asyncio.Future") -> Any:
    """Await `future` to its end even if the caller is cancelled meanwhile, then re-raise the cancellation: what
    it does (a commit) is not left half-done, nor cancelled for the others who wait for it."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


class SqliteTransactions:
    """Steps one at a time on one connection, each in a savepoint of a shared transaction (group commit): the first
    step of a batch schedules its commit behind the steps already waiting to run, which join the batch (at most
    16), and each step returns once that commit is done. Writing the log at commit cost a third of a step; under
    load the steps that arrive together share it, and one step alone waits one turn of the event loop for it.

    Failures and cancellation:
    - a step that raises (or is cancelled) while it runs is rolled back to its savepoint; the batch goes on;
    - a step whose work is done is committed with its batch even if its caller is cancelled while it waits for
      that commit (the caller sees CancelledError at once; the step's writes are kept, never half of them); the
      other steps of the batch are not affected;
    - a failing commit fails the steps of that batch only (nothing of it is kept); the next batch begins anew;
    - a closed or broken connection is dropped and the next step opens another; the steps it failed raise a
      DBAPIError with `connection_invalidated`, which `Engine.handle` runs again;
    - `close()` lets the steps already waiting run and commits them; a step that begins after it raises
      `StepsClosed`.

    The steps run on the event loop's thread without a real wait between them, so one loop turn could run every
    queued step back to back while the rest of the process (other channels, timers) waits: a step that finds the
    turn's budget (`TURN_SECONDS` of steps, about a full batch) spent first lets the loop go round. And a batch does
    not take SQLite's lock again before this process's other writers waiting for it have had their turn
    (sqlite_inloop.WRITERS)."""

    MAX_BATCH = 16  # an answer waits for at most this many steps before its commit
    TURN_SECONDS = 0.005

    def __init__(self, bridge: AsyncEngine, busy_seconds: float = 30.0):
        """`bridge`: the steps' engine over their one connection (see models.db)."""
        self.bridge = bridge
        self.busy_seconds = busy_seconds
        self.raw: sqlite3.Connection | None = None
        self.commits = 0
        self.reconnects = 0
        self.waiting = 0  # steps waiting for the connection
        self._lock = asyncio.Lock()
        self._batch: _Batch | None = None
        self._committers: set[asyncio.Task] = set()  # scheduled commits (a task needs a reference kept)
        self._closing = self._closed = False
        self._turn_began: float | None = None

    # -- the connection ---------------------------------------------------------------------------------------
    async def _connect(self) -> sqlite3.Connection:
        async with self.bridge.connect() as conn:  # the pool keeps it: StaticPool, no reset on return
            driver = (await conn.get_raw_connection()).driver_connection
        if driver is None:
            raise sa_exc.InvalidRequestError("the steps' connection has no driver connection")
        raw: sqlite3.Connection = driver.sqlite  # the sqlite3 connection under propdesk's in-loop driver
        self.raw = raw
        return raw

    def _held(self) -> sqlite3.Connection:
        """The connection the open batch runs on: `_open` set it; only `_reconnect` (before a batch opens) and
        `close()` (after the last one) clear it."""
        if self.raw is None:
            raise StepsClosed("the steps' connection is closed")
        return self.raw

    async def _reconnect(self) -> sqlite3.Connection:
        self.raw = None
        await self.bridge.dispose()  # StaticPool: the next checkout opens a new connection
        self.reconnects += 1
        return await self._connect()

    async def _open(self) -> _Batch:
        if self._batch is not None:
            return self._batch
        raw = self.raw if self.raw is not None else await self._connect()
        if _is_closed(raw):
            raw = await self._reconnect()
        if sqlite_inloop.WRITERS.waiting:  # another writer of this process waits, perhaps for this lock
            await sqlite_inloop.WRITERS.give_way()
        try:  # another process's writer: wait for it on the loop, for up to busy_seconds
            await sqlite_inloop.retry_busy(raw.execute, ("BEGIN IMMEDIATE",), self.busy_seconds)
        except sqlite3.Error as exc:
            raise _error("BEGIN IMMEDIATE", (), exc, raw) from exc
        self._batch = _Batch()
        return self._batch

    # -- commits ------------------------------------------------------------------------------------------------
    async def _commit(self, batch: _Batch) -> None:
        """Commit `batch`, the lock held: at once, or when SQLITE_BUSY (readers finishing a checkpoint) waits on
        the loop, to its end even if the caller is cancelled meanwhile (the batch's other steps wait for it)."""
        self._batch = None
        if not self._try_commit(batch):
            await _finish(asyncio.ensure_future(self._commit_when_free(batch)))

    def _try_commit(self, batch: _Batch) -> bool:
        """False: SQLite was busy, the transaction is still open."""
        raw = self._held()
        try:
            raw.commit()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite_inloop.SQLITE_BUSY:
                return False
            self._commit_failed(batch, raw, exc)
            return True
        except sqlite3.Error as exc:
            self._commit_failed(batch, raw, exc)
            return True
        self.commits += 1
        batch.succeed()
        sqlite_inloop.WRITERS.released()
        return True

    async def _commit_when_free(self, batch: _Batch) -> None:
        raw = self._held()
        try:
            await sqlite_inloop.retry_busy(raw.commit, (), self.busy_seconds)
        except BaseException as exc:
            self._commit_failed(batch, raw, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        batch.succeed()
        sqlite_inloop.WRITERS.released()

    def _commit_failed(self, batch: _Batch, raw: sqlite3.Connection, exc: BaseException) -> None:
        """Nothing of the batch is kept; each of its steps hears why."""
        if not _is_closed(raw):
            raw.rollback()
        batch.fail(_error("COMMIT", (), exc, raw))
        sqlite_inloop.WRITERS.released()

    async def _commit_later(self, batch: _Batch) -> None:
        async with self._lock:  # behind the steps already waiting, which join the batch
            if self._batch is batch:
                await self._commit(batch)

    def _schedule_commit(self, batch: _Batch) -> None:
        batch.commit_scheduled = True
        committer = asyncio.get_running_loop().create_task(self._commit_later(batch))
        self._committers.add(committer)
        committer.add_done_callback(self._committers.discard)

    def _lost(self, batch: _Batch, cause: BaseException | None) -> None:
        """The shared transaction is gone (SQLite rolled it back on its own, e.g. a full disk, or the connection
        closed): all of its steps failed."""
        self._batch = None
        batch.fail(_error("COMMIT", (), sqlite3.OperationalError(f"the transaction was lost: {cause!r}"),
                          self.raw))

    # -- the loop's turns ---------------------------------------------------------------------------------------
    def _end_turn(self) -> None:
        self._turn_began = None

    async def _take_turn(self) -> None:
        """Wait until this loop turn has room for a step (see the class)."""
        while True:
            now = time.perf_counter()
            if self._turn_began is None:
                self._turn_began = now
                asyncio.get_running_loop().call_soon(self._end_turn)  # runs once the loop has gone round
                return
            if now - self._turn_began < self.TURN_SECONDS:
                return
            await asyncio.sleep(0)

    # -- a step -------------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqliteTx]:
        if self._closing:
            raise StepsClosed("the step transactions are closing")
        await self._take_turn()
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        try:
            if self._closed:  # it began before close() and waited until after: nothing is open any more
                raise StepsClosed("the step transactions are closed")
            batch = await self._open()
            raw = self._held()
            try:
                raw.execute("SAVEPOINT step")
            except sqlite3.Error as exc:
                self._lost(batch, exc)
                raise _error("SAVEPOINT step", (), exc, raw) from exc
            tx = SqliteTx(self, raw)
            try:
                yield tx
            except BaseException as exc:  # this step only is undone; the others of the batch stay
                # Synchronously, before anything else may run: a second cancellation cannot leave it half-done.
                self._undo(batch, raw, exc)
                if self._batch is batch and not batch.commit_scheduled:
                    self._schedule_commit(batch)  # the steps before it in the batch (or none) are committed
                await tx.close()
                raise
            if not self._release(batch, raw):
                await tx.close()
                raise _error("RELEASE step", (), sqlite3.OperationalError("the transaction was lost"), raw)
            await tx.close()
            if batch.steps >= self.MAX_BATCH and self._batch is batch:
                await self._commit(batch)
            elif not batch.commit_scheduled:
                self._schedule_commit(batch)
        finally:
            self._lock.release()
        await batch.committed()  # the step is done when what it read and wrote is committed

    def _undo(self, batch: _Batch, raw: sqlite3.Connection, cause: BaseException) -> None:
        try:
            if raw.in_transaction:  # (some errors make SQLite roll back the whole transaction itself)
                raw.execute("ROLLBACK TO step")
                raw.execute("RELEASE step")
                return
        except sqlite3.Error:
            pass
        self._lost(batch, cause)

    def _release(self, batch: _Batch, raw: sqlite3.Connection) -> bool:
        try:
            if raw.in_transaction:
                raw.execute("RELEASE step")
                batch.steps += 1
                return True
        except sqlite3.Error:
            pass
        self._lost(batch, None)
        return False

    async def close(self) -> None:
        """Commit what the steps already begun did, and close the connection; no step begins after this."""
        self._closing = True
        async with self._lock:  # after the steps already waiting for it
            if self._batch is not None:
                await self._commit(self._batch)
            self._closed = True
        if self._committers:
            await asyncio.gather(*self._committers, return_exceptions=True)
        await self.bridge.dispose()
        self.raw = None
