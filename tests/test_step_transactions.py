"""A step's transaction on SQLite: Core statements run on the driver's connection with SQLAlchemy's own type
conversions, SQLAlchemy's errors, one transaction with the ORM session, and SQLite's write lock from the start."""
from __future__ import annotations

import asyncio
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError

from models import Conversation, Identity, OutboxMessage, Person
from models.db import make_engine, step_transactions
from models.step_transactions import SqliteTransactions

CONV, IDENT = Conversation.__table__, Identity.__table__
READ = select(CONV.c.data, CONV.c.updated_at, CONV.c.lang).where(CONV.c.chat_id == bindparam("chat"))
WRITE = insert(CONV).values(channel="t", chat_id=bindparam("chat"), flow="menu", state="idle",
                            data=bindparam("data"), updated_at=bindparam("at"))


@pytest.fixture
async def dbs(tmp_path, sqlite_template):
    """(the step transactions, a plain engine on the same file to look with)"""
    path = tmp_path / "propdesk.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    steps = step_transactions(engine)
    assert isinstance(steps, SqliteTransactions)
    yield steps, engine
    await steps.close()
    await engine.dispose()


async def test_values_go_in_and_come_out_as_sqlalchemy_converts_them(dbs):
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 30, 15, 123456)
    async with steps.begin() as tx:
        result = await tx.execute(WRITE, {"chat": "c1", "data": {"楼栋": "3", "n": [1, 2]}, "at": at})
        assert result.rowcount == 1
        row = (await tx.execute(READ, {"chat": "c1"})).first()
    assert (row.data, row.updated_at, row.lang) == ({"楼栋": "3", "n": [1, 2]}, at, None)
    async with engine.connect() as conn:  # what SQLAlchemy itself reads back
        assert (await conn.execute(READ, {"chat": "c1"})).first() == (row.data, at, None)
    async with steps.begin() as tx:  # a boolean column comes back as a bool
        person = (await tx.execute(insert(Person.__table__).values(name="p", created_at=at)
                                   .returning(Person.__table__.c.id), {})).scalar()
        await tx.execute(insert(IDENT).values(channel="t", external_id="e", chat_id="e", person_id=person,
                                              display_name="", active=False, created_at=at), {})
        assert (await tx.execute(select(IDENT.c.active), {})).first().active is False


async def test_a_constraint_error_is_sqlalchemys_and_the_step_leaves_nothing(dbs):
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    with pytest.raises(IntegrityError):
        async with steps.begin() as tx:
            session = tx.session()  # the ORM's writes are in the same transaction
            session.add(Person(name="orm", created_at=at))
            await session.flush()
            await tx.execute(WRITE, {"chat": "dup", "data": {}, "at": at})
            await tx.execute(WRITE, {"chat": "dup", "data": {}, "at": at})
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM conversations"))).scalar() == 0
        assert (await conn.execute(text("SELECT count(*) FROM people WHERE name = 'orm'"))).scalar() == 0
    async with steps.begin() as tx:  # the connection is fine afterwards
        await tx.execute(WRITE, {"chat": "dup", "data": {}, "at": at})
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM conversations"))).scalar() == 1


async def test_statements_with_python_side_defaults_run_through_sqlalchemy_in_the_same_transaction(dbs):
    steps, engine = dbs
    outbox = insert(OutboxMessage.__table__)  # created_at's default is a Python function
    with pytest.raises(RuntimeError):
        async with steps.begin() as tx:
            await tx.execute(outbox, {"channel": "t", "chat_id": "c", "payload": {"text": "一"}})
            raise RuntimeError("the flow failed")
    async with steps.begin() as tx:
        await tx.execute(outbox, [{"channel": "t", "chat_id": "c", "payload": {"text": "二"}},
                                  {"channel": "t", "chat_id": "c", "payload": {"text": "三"}}])
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OutboxMessage.__table__.c.payload, OutboxMessage.__table__.c.created_at)
                                   .order_by(OutboxMessage.__table__.c.id))).all()
    assert [r.payload["text"] for r in rows] == ["二", "三"] and all(r.created_at for r in rows)


async def test_a_step_holds_the_write_lock_from_its_first_read(dbs):
    """Another worker's write waits until the step has committed, so nobody changes what the step read."""
    steps, engine = dbs
    other = make_engine(str(engine.url))
    at = datetime(2026, 11, 25, 8, 0)
    wrote: list[float] = []

    async def other_worker() -> None:
        await asyncio.sleep(0.05)
        async with other.begin() as conn:
            await conn.execute(WRITE, {"chat": "other", "data": {}, "at": at})
        wrote.append(time.monotonic())

    writer = asyncio.create_task(other_worker())
    async with steps.begin() as tx:
        await tx.execute(READ, {"chat": "other"})
        await asyncio.sleep(0.3)
        committed = time.monotonic()
    await writer
    assert wrote[0] >= committed
    await other.dispose()


async def test_the_write_ahead_log_stays_bounded_under_sustained_steps(dbs):
    """Steps that never stop (a busy worker) still let SQLite checkpoint and restart its log: the file stays near
    its 1000-page checkpoint size instead of growing with every message."""
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)

    async def step(i: int) -> None:
        async with steps.begin() as tx:
            await tx.execute(WRITE, {"chat": f"c{i}", "data": {"text": "漏水" * 300}, "at": at})
            await asyncio.sleep(0)

    for start in range(0, 6000, 500):
        await asyncio.gather(*(step(i) for i in range(start, start + 500)))
    assert await _count(engine) == 6000
    wal = Path(str(engine.url.database) + "-wal")
    assert wal.stat().st_size < 12 * 1024 * 1024  # 6000 steps wrote far more than that


async def _count(engine, where: str = "") -> int:  # noqa: ANN001
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM conversations {where}"))).scalar()


async def test_steps_queued_behind_one_share_its_transaction_and_return_once_it_is_committed(dbs):
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    seen: list[int] = []

    async def step(i: int) -> None:
        async with steps.begin() as tx:
            await tx.execute(WRITE, {"chat": f"c{i}", "data": {"i": i}, "at": at})
            await asyncio.sleep(0)  # the others queue up meanwhile
        seen.append(await _count(engine, f"WHERE chat_id = 'c{i}'"))  # committed by the time it returns

    await asyncio.gather(*(step(i) for i in range(20)))
    assert seen == [1] * 20 and await _count(engine) == 20
    assert 2 <= steps.commits < 20  # batches, and none larger than MAX_BATCH
    assert steps.commits >= 20 / steps.MAX_BATCH


async def test_a_failing_step_undoes_only_its_own_writes_in_a_shared_transaction(dbs):
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)

    async def step(i: int) -> None:
        async with steps.begin() as tx:
            session = tx.session()
            session.add(Person(name=f"p{i}", created_at=at))
            await session.flush()
            await tx.execute(WRITE, {"chat": f"c{i}", "data": {}, "at": at})
            await asyncio.sleep(0)
            if i == 3:
                raise ValueError("the flow failed")

    results = await asyncio.gather(*(step(i) for i in range(6)), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["ValueError"] + ["NoneType"] * 2
    assert steps.commits < 6
    assert await _count(engine) == 5 and await _count(engine, "WHERE chat_id = 'c3'") == 0
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM people WHERE name LIKE 'p%' ORDER BY name"))).scalars()
        assert list(names) == ["p0", "p1", "p2", "p4", "p5"]


async def test_a_step_cancelled_in_the_queue_does_not_leave_the_shared_transaction_open(dbs):
    """The step queued behind a running one, which would have joined its transaction, is cancelled as the lock
    passes to it: the first step's work is still committed, and it returns."""
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    go = asyncio.Event()
    queued: list[asyncio.Task] = []

    async def first() -> None:
        async with steps.begin() as tx:
            await tx.execute(WRITE, {"chat": "first", "data": {}, "at": at})
            await go.wait()
            asyncio.get_running_loop().call_soon(queued[0].cancel)  # as the lock passes to it

    async def second() -> None:
        async with steps.begin() as tx:
            await tx.execute(WRITE, {"chat": "second", "data": {}, "at": at})

    one = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    queued.append(asyncio.create_task(second()))
    await asyncio.sleep(0.01)
    go.set()
    await asyncio.wait_for(one, 5)
    with pytest.raises(asyncio.CancelledError):
        await queued[0]
    assert await _count(engine, "WHERE chat_id = 'first'") == 1
    assert await _count(engine, "WHERE chat_id = 'second'") == 0


# -- group commit under cancellation and failure -------------------------------------------------------------------
async def _in_one_batch(steps, bodies) -> list:  # noqa: ANN001
    """Run a step per body at once, all in one batch: the first holds the connection until the others queue."""
    tasks: list[asyncio.Task] = []
    queued = asyncio.Event()

    async def step(i: int) -> None:
        async with steps.begin() as tx:
            if i == 0:
                await queued.wait()
            await bodies[i](tx, tasks)

    for i in range(len(bodies)):
        tasks.append(asyncio.create_task(step(i)))
    while steps.waiting < len(bodies) - 1:
        await asyncio.sleep(0)
    queued.set()
    return tasks


async def test_cancelling_a_step_waiting_for_its_batch_commit_leaves_the_others_answered(dbs):
    """Three steps in one batch; the second's caller is cancelled while it waits for the commit. The commit is
    not cancelled: the first and third return normally, and the second step's work is committed with them (its
    body had finished: it completes fully; only its caller stops waiting)."""
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)

    def write(chat: str, cancel: int | None = None):  # noqa: ANN202
        async def body(tx, tasks) -> None:  # noqa: ANN001
            await tx.execute(WRITE, {"chat": chat, "data": {}, "at": at})
            if cancel is not None:
                tasks[cancel].cancel()  # it has finished its step and waits for the batch's commit
        return body

    commits = steps.commits
    tasks = await _in_one_batch(steps, [write("a"), write("b"), write("c", cancel=1)])
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert [type(r).__name__ for r in results] == ["NoneType", "CancelledError", "NoneType"]
    assert steps.commits == commits + 1
    assert await _count(engine) == 3


async def test_a_step_cancelled_while_it_runs_is_rolled_back_and_its_batch_commits(dbs):
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    inside = asyncio.Event()

    async def first(tx, tasks) -> None:  # noqa: ANN001
        await tx.execute(WRITE, {"chat": "a", "data": {}, "at": at})

    async def cancelled(tx, tasks) -> None:  # noqa: ANN001
        await tx.execute(WRITE, {"chat": "b", "data": {}, "at": at})
        inside.set()
        await asyncio.Event().wait()  # until cancelled

    async def third(tx, tasks) -> None:  # noqa: ANN001
        await tx.execute(WRITE, {"chat": "c", "data": {}, "at": at})

    tasks = await _in_one_batch(steps, [first, cancelled, third])
    await inside.wait()
    tasks[1].cancel()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert [type(r).__name__ for r in results] == ["NoneType", "CancelledError", "NoneType"]
    assert await _count(engine) == 2 and await _count(engine, "WHERE chat_id = 'b'") == 0


async def test_a_failing_commit_fails_only_its_batch(dbs):
    """A constraint checked at commit (a deferred foreign key) fails the batch: none of its steps is kept, each
    raises SQLAlchemy's IntegrityError (Engine.handle runs such a step again), and the next batch commits."""
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)

    async def orphan(tx, tasks) -> None:  # noqa: ANN001
        await tx.execute(text("PRAGMA defer_foreign_keys = ON"))
        await tx.execute(insert(IDENT).values(channel="t", external_id="x", chat_id="x", person_id=999999,
                                              display_name="", active=True, created_at=at), {})

    async def fine(tx, tasks) -> None:  # noqa: ANN001
        await tx.execute(WRITE, {"chat": f"c{len(tasks)}-{id(tx)}", "data": {}, "at": at})

    tasks = await _in_one_batch(steps, [fine, orphan, fine])
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert all(isinstance(r, IntegrityError) for r in results), results
    assert await _count(engine) == 0
    async with steps.begin() as tx:
        await tx.execute(WRITE, {"chat": "later", "data": {}, "at": at})
    assert await _count(engine) == 1


async def test_a_closed_connection_is_reopened_and_the_steps_it_failed_are_run_again(sqlite_url, clock):
    """The steps' sqlite3 connection is closed under them: between steps the next step opens a new one; inside a
    step, the step fails as `connection_invalidated` and Engine.handle runs it again on a new connection."""
    from bot.conversation.engine import Engine, Sender
    from config.settings import Settings
    from handlers.messages import Inbound
    from models.db import make_sessionmaker

    db = make_engine(sqlite_url)
    engine = Engine(make_sessionmaker(db), Settings(database_url=sqlite_url), clock=clock)
    steps = engine.transactions
    owner = Sender("test", "u-1", "u-1", "Owner")
    try:
        assert await engine.handle(owner, Inbound.text_or_command("菜单"))
        steps.raw.close()  # between steps
        assert await engine.handle(owner, Inbound.text_or_command("菜单"))
        assert steps.reconnects == 1

        class CloseOnce:
            calls = 0

            async def after(self, tx, replies) -> bool:  # noqa: ANN001
                self.calls += 1
                if self.calls == 1:
                    steps.raw.close()  # inside the step, after its writes
                return True

        hooks = CloseOnce()
        assert await engine.handle(Sender("test", "u-2", "u-2", "Other"), Inbound.text_or_command("菜单"), hooks)
        assert hooks.calls == 2 and steps.reconnects == 2
        async with db.connect() as conn:
            chats = (await conn.execute(text("SELECT chat_id FROM conversations ORDER BY chat_id"))).scalars()
            assert list(chats) == ["u-1", "u-2"]
    finally:
        await engine.close()
        await db.dispose()


async def test_closing_with_an_open_batch_commits_the_steps_begun_and_refuses_new_ones(dbs):
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    release = asyncio.Event()

    async def held(tx, tasks) -> None:  # noqa: ANN001
        await tx.execute(WRITE, {"chat": "held", "data": {}, "at": at})
        await release.wait()

    def write(chat: str):  # noqa: ANN202
        async def body(tx, tasks) -> None:  # noqa: ANN001
            await tx.execute(WRITE, {"chat": chat, "data": {}, "at": at})
        return body

    tasks = await _in_one_batch(steps, [write("first"), held, write("queued")])
    while steps.waiting < 1:  # "queued" waits behind "held"
        await asyncio.sleep(0)
    closing = asyncio.create_task(steps.close())
    await asyncio.sleep(0)
    from models.step_transactions import StepsClosed
    with pytest.raises(StepsClosed):
        async with steps.begin():
            pass
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    await asyncio.wait_for(closing, 5)
    assert results == [None, None, None]
    assert await _count(engine) == 3


async def test_queued_steps_let_the_event_loop_go_round(dbs):
    """Steps run on the loop's thread without waiting for anything: many queued at once must not all run in one
    turn of the loop while every other task of the process waits."""
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    loop = asyncio.get_running_loop()
    done, most, last, running = [0], [0], [0], [True]

    def turn() -> None:  # runs once per turn of the loop
        most[0] = max(most[0], done[0] - last[0])
        last[0] = done[0]
        if running[0]:
            loop.call_soon(turn)

    async def step(i: int) -> None:
        async with steps.begin() as tx:
            await tx.execute(WRITE, {"chat": f"c{i}", "data": {"text": "漏水" * 50}, "at": at})
            done[0] += 1

    await step(-1)  # the connection is open: nothing makes a step wait
    loop.call_soon(turn)
    await asyncio.gather(*(step(i) for i in range(400)))
    running[0] = False
    assert await _count(engine) == 401
    assert most[0] < 200, most[0]  # without turns: all 400 in one


async def test_another_process_holding_the_write_lock_delays_steps_or_fails_them_after_their_busy_time(dbs):
    """Another process holds SQLite's write lock as steps begin: they wait on the loop (other tasks run), and
    go through once it commits; past their busy time they fail with SQLAlchemy's OperationalError, and the next
    step works."""
    import sys

    from sqlalchemy.exc import OperationalError

    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(engine.url.database)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "c.execute('COMMIT')\n"
        "print('released', flush=True)\n"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert (await holder.stdout.readline()).strip() == b"locked"
        steps.busy_seconds = 0.1
        with pytest.raises(OperationalError, match="locked"):
            async with steps.begin() as tx:
                await tx.execute(WRITE, {"chat": "impatient", "data": {}, "at": at})
        steps.busy_seconds = 30
        waiting = asyncio.Event()
        ticks = 0

        async def beat() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                if ticks == 5:
                    waiting.set()  # the loop goes round while the steps wait for the lock
                await asyncio.sleep(0.001)

        async def step(i: int) -> None:
            async with steps.begin() as tx:
                await tx.execute(WRITE, {"chat": f"c{i}", "data": {}, "at": at})

        beating = asyncio.create_task(beat())
        stepping = asyncio.gather(*(step(i) for i in range(3)))
        await waiting.wait()
        assert not stepping.done()
        holder.stdin.write(b"go\n")
        await holder.stdin.drain()
        await asyncio.wait_for(stepping, 10)
        beating.cancel()
        assert await _count(engine) == 3 and await _count(engine, "WHERE chat_id = 'impatient'") == 0
    finally:
        if holder.returncode is None:
            holder.stdin.write(b"go\n")
            await holder.wait()


async def test_another_writer_of_the_process_gets_the_lock_between_batches(dbs):
    """While steps keep coming, a write on another connection of this process (a staff action, the delivery
    worker) gets SQLite's lock between two batches, instead of waiting for the steps to run out."""
    steps, engine = dbs
    at = datetime(2026, 11, 25, 8, 0)
    done = [0]
    started = asyncio.Event()

    async def step(i: int) -> None:
        async with steps.begin() as tx:
            await tx.execute(WRITE, {"chat": f"c{i}", "data": {"text": "漏水" * 50}, "at": at})
            done[0] += 1
            started.set()

    async def other_writer() -> int:
        await started.wait()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO people (name, created_at) VALUES ('staff', '2026-11-25 08:00:00')"))
        return done[0]

    await step(-1)
    started.clear()
    steps_done_when_written, _ = await asyncio.gather(other_writer(), asyncio.gather(*(step(i) for i in range(2000))))
    # Some batches, not all 2000 steps (how many depends on when its retry wakes: a loaded machine misses a few).
    assert steps_done_when_written < 500, steps_done_when_written
