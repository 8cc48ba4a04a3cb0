"""What the SQLite step path takes from its pinned libraries (SQLAlchemy, sqlite3, the aiosqlite dialect), held
here so that an upgrade that changes any of it fails a test instead of a conversation step.

models.step_transactions compiles the hot statements with SQLAlchemy's public API and runs them on sqlite3 with a
dict of named parameters, converted by each type's own processor: the SQL and the parameters it sends must be
those SQLAlchemy sends, for every hot statement."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, event, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.conversation import engine as conversation
from bot.conversation import wechat_receipts
from bot.desk import owner_desk
from models import Conversation, OutboxMessage
from models import sqlite_inloop
from models.db import make_engine, step_transactions
from models.step_transactions import STATEMENTS, SqliteTransactions

AT = datetime(2026, 11, 25, 8, 30, 15, 123456)
ROOT = Path(__file__).resolve().parents[1]


def hot_statements() -> dict[str, tuple]:
    """(statement, parameters) of every statement a conversation step runs on its hot path."""
    receipt = STATEMENTS.built(wechat_receipts._build, "sqlite", "receipt", "")  # noqa: SLF001
    window = STATEMENTS.built(wechat_receipts._build, "sqlite", "window", "message")  # noqa: SLF001
    new_conversation = STATEMENTS.built(conversation._new_conversation, "sqlite")  # noqa: SLF001
    c = conversation
    return {
        "step": (c._STEP, {"channel": "wechat", "chat": "o1", "user": "o1"}),  # noqa: SLF001
        "identity": (c._IDENTITY, {"channel": "wechat", "user": "o1"}),  # noqa: SLF001
        "conversation": (c._CONVERSATION, {"channel": "wechat", "chat": "o1"}),  # noqa: SLF001
        "save": (c._SAVE, {"k_channel": "wechat", "k_chat": "o1", "flow": "repair", "state": "2",  # noqa: SLF001
                           "data": {"楼栋": "3", "ok": True}, "lang": "zh", "updated_at": AT}),
        "new_person": (c._NEW_PERSON, {"name": "王", "lang": "zh", "now": AT}),  # noqa: SLF001
        "new_identity": (c._NEW_IDENTITY, {"channel": "wechat", "user": "o1", "chat": "o1",  # noqa: SLF001
                                           "person": 1, "name": "王", "now": AT}),
        "reactivate": (c._REACTIVATE, {"identity_id": 1}),  # noqa: SLF001
        "new_conversation": (new_conversation, {"channel": "wechat", "chat": "o1", "now": AT}),
        "my_tickets": (owner_desk._MY_TICKETS, {"person": 1}),  # noqa: SLF001
        "bound_units": (owner_desk._BOUND_UNITS, {"person": 1}),  # noqa: SLF001
        "receipt": (receipt, {"key": "m1", "chat_id": "o1", "reply": "好", "now": AT}),
        "window": (window, {"key": "m1", "chat_id": "o1", "reply": "好", "now": AT}),
    }


# What SQLAlchemy compiles for them on SQLite: a change here is a change to review on the step path.
EXPECTED_SQL = {
    "save": "UPDATE conversations SET flow=:flow, state=:state, data=:data, lang=:lang, updated_at=:updated_at "
            "WHERE conversations.channel = :k_channel AND conversations.chat_id = :k_chat",
    "new_person": "INSERT INTO people (name, lang, created_at) VALUES (:name, :lang, :now) RETURNING id",
    "new_identity": "INSERT INTO identities (channel, external_id, chat_id, person_id, display_name, active, "
                    "created_at) VALUES (:channel, :user, :chat, :person, :name, :active, :now)",
    "reactivate": "UPDATE identities SET active=:active WHERE identities.id = :identity_id",
    "new_conversation": "INSERT INTO conversations (channel, chat_id, flow, state, data, updated_at) "
                        "VALUES (:channel, :chat, :flow, :state, :data, :now) ON CONFLICT DO NOTHING",
    "receipt": 'INSERT INTO inbound_receipts ("key", chat_id, status, reply, created_at, updated_at) '
               "VALUES (:key, :chat_id, :status, :reply, :now, :now) ON CONFLICT DO NOTHING",
    "window": "INSERT INTO service_windows (channel, chat_id, message_at, message_used, event_used) "
              "VALUES (:channel, :chat_id, :now, :message_used, :event_used) ON CONFLICT (channel, chat_id) "
              "DO UPDATE SET message_at = excluded.message_at, message_used = excluded.message_used",
}


@pytest.fixture
async def steps(tmp_path, sqlite_template):
    path = tmp_path / "propdesk.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    steps = step_transactions(engine)
    assert isinstance(steps, SqliteTransactions)
    yield steps
    await steps.close()
    await engine.dispose()


def _flat(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


async def test_hot_statements_run_on_sqlite3_with_what_sqlalchemy_itself_sends(steps, tmp_path):
    """Each hot statement takes the fast path, and its SQL and converted parameters are exactly what SQLAlchemy's
    own execution sends to the driver (captured with before_cursor_execute on an engine with the same
    paramstyle)."""
    dialect = steps.bridge.dialect
    assert dialect.paramstyle == "named"
    sent: list[tuple[str, dict]] = []
    reference = create_async_engine(steps.bridge.url, paramstyle="named")

    @event.listens_for(reference.sync_engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        sent.append((statement, dict(parameters)))

    try:
        for name, (stmt, params) in hot_statements().items():
            compiled = STATEMENTS.compiled(stmt, dialect, tuple(sorted(params)))
            assert compiled is not None, f"{name} would take SQLAlchemy's slow path"
            sent.clear()
            async with reference.connect() as conn:
                try:
                    await conn.execute(stmt, params)
                except Exception:  # noqa: BLE001 - a constraint, say: what was sent is what counts
                    pass
                await conn.rollback()
            assert (compiled.sql, compiled.bind(params)) == sent[0], name
            if name in EXPECTED_SQL:
                assert _flat(compiled.sql) == EXPECTED_SQL[name], name
    finally:
        await reference.dispose()


async def test_values_come_back_as_sqlalchemy_reads_them(steps):
    """Results are converted by each column's result processor: what the step path reads equals what SQLAlchemy
    reads from the same row."""
    conv = Conversation.__table__
    stmt = select(conv.c.flow, conv.c.data, conv.c.updated_at).where(conv.c.chat_id == "o1")
    async with steps.begin() as tx:
        await tx.execute(*hot_statements()["new_conversation"])
        await tx.execute(*hot_statements()["save"])
        mine = (await tx.execute(stmt, {})).first()
    reference = create_async_engine(steps.bridge.url)
    async with reference.connect() as conn:
        theirs = (await conn.execute(stmt)).first()
    await reference.dispose()
    assert tuple(mine) == tuple(theirs) == ("repair", {"楼栋": "3", "ok": True}, AT)
    assert mine._fields == ("flow", "data", "updated_at")


def test_the_type_conversions_the_step_path_relies_on(steps):
    d = steps.bridge.dialect

    def bind(type_, value):  # noqa: ANN001, ANN202
        process = type_.dialect_impl(d).bind_processor(d)
        return process(value) if process else value

    def result(type_, value):  # noqa: ANN001, ANN202
        process = type_.dialect_impl(d).result_processor(d, None)
        return process(value) if process else value

    assert bind(DateTime(), AT) == "2026-11-25 08:30:15.123456"
    assert result(DateTime(), "2026-11-25 08:30:15.123456") == AT
    assert bind(JSON(), {"楼栋": [1, 2]}) == json.dumps({"楼栋": [1, 2]})
    assert result(JSON(), '{"a": [1, 2]}') == {"a": [1, 2]}
    assert bind(JSON(), None) == "null"  # JSON's None is JSON null, not SQL NULL: a conversion, not a pass-through
    assert (bind(Boolean(), True), bind(Boolean(), False)) == (1, 0)
    assert (result(Boolean(), 1), result(Boolean(), 0)) == (True, False)
    # Values the compiler adds itself (OFFSET 0) are plain ints and strs, which these leave alone on SQLite.
    for type_ in (Integer(), String()):
        assert type_.dialect_impl(d).bind_processor(d) is None


def test_how_sqlalchemy_names_and_fills_the_parameters_on_sqlite(steps):
    d = steps.bridge.dialect
    conv = Conversation.__table__
    # A value written into VALUES is a parameter named after its column, with the value; a column with a
    # Python-side default and no value is a parameter with None (SQLAlchemy fills it at each execution), which
    # the step path leaves to SQLAlchemy.
    stmt = insert(conv).values(channel="t", chat_id="c", flow="menu")
    compiled = stmt.compile(dialect=d)
    assert compiled.params == {"channel": "t", "chat_id": "c", "flow": "menu", "state": None, "data": None,
                               "updated_at": None}
    assert STATEMENTS.compiled(stmt, d, ()) is None
    full = insert(conv).values(channel="t", chat_id="c", flow="menu", state="idle", data={}, updated_at=AT)
    assert STATEMENTS.compiled(full, d, ()).bind({}) == {
        "channel": "t", "chat_id": "c", "flow": "menu", "state": "idle", "data": "{}",
        "updated_at": "2026-11-25 08:30:15.123456"}
    compiled = insert(OutboxMessage.__table__).compile(dialect=d, column_keys=["channel", "chat_id", "payload"])
    assert compiled.params["created_at"] is None and ":created_at" in compiled.string
    assert STATEMENTS.compiled(insert(OutboxMessage.__table__), d, ("channel", "chat_id", "payload")) is None
    # LIMIT alone gets OFFSET 0 from SQLite's compiler, as a parameter it adds.
    compiled = select(conv.c.flow).limit(5).compile(dialect=d, compile_kwargs={"render_postcompile": True})
    assert compiled.string.endswith("LIMIT :param_1 OFFSET :param_2") and compiled.params == {"param_1": 5,
                                                                                                "param_2": 0}
    # An untyped parameter is typed only as SQLAlchemy compiles it: the step path leaves it to SQLAlchemy.
    assert STATEMENTS.compiled(text("SELECT :x"), d, ("x",)) is None


def test_sqlite3_binds_named_parameters_from_a_dict():
    conn = sqlite3.connect(":memory:")
    assert conn.execute("SELECT :a, :b, :a", {"a": 1, "b": "二"}).fetchone() == (1, "二", 1)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (:x)", [{"x": 1}, {"x": 2}])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert sqlite3.sqlite_version_info >= (3, 35)  # RETURNING
    conn.close()


async def test_sqlalchemys_aiosqlite_adapter_drives_propdesks_driver(tmp_path, sqlite_template):
    """SQLAlchemy's aiosqlite adapter reads aiosqlite's own names from the driver it wraps (see
    models.sqlite_inloop): commits, rollbacks, isolation levels and termination must reach the in-loop driver."""
    path = tmp_path / "propdesk.db"
    shutil.copy(sqlite_template, path)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", async_creator=sqlite_inloop.creator(str(path)))
    insert_person = text("INSERT INTO people (name, created_at) VALUES (:n, '2026-11-25 08:00:00')")
    count = text("SELECT count(*) FROM people WHERE name IN ('kept', 'dropped', 'auto')")
    try:
        async with engine.begin() as conn:
            await conn.execute(insert_person, {"n": "kept"})
        async with engine.connect() as conn:
            await conn.execute(insert_person, {"n": "dropped"})
            await conn.rollback()
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(insert_person, {"n": "auto"})
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert isinstance(driver, sqlite_inloop.Connection)
            await conn.invalidate()  # the adapter terminates the driver
            assert driver.closed
        other = sqlite3.connect(path)
        assert other.execute(count.text).fetchone() == (2,)
        other.close()
    finally:
        await engine.dispose()


def test_no_private_names_of_sqlalchemy_or_aiosqlite_are_read():
    """The step path reads nothing private of the libraries: not the compiler's state, not a driver's
    connection under an underscore."""
    private = re.compile(r"\.(positiontup|binds|bind_names|insert_prefetch|update_prefetch|_bind_processors"
                         r"|_result_columns|_conn|_connection|_tx|_thread)\b")
    found = []
    for folder in ("models", "bot", "handlers", "config", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if private.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
