"""WeChat state shared by every worker through the database: message receipts and customer-service windows."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import DateTime, Executable, String, bindparam, delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from models import InboundReceipt, ServiceWindow
from models.ticket import RequestNonce
from models.db import insert_for
from models.step_transactions import STATEMENTS, StepTx, param

CHANNEL = "wechat"
# What the quota rules allow (WeChat's customer-service message limits): after an owner's message,
# 5 messages within 48 hours; after a menu click or a follow, 3 within a minute.
MESSAGE_WINDOW, MESSAGE_QUOTA = timedelta(hours=48), 5
EVENT_WINDOW, EVENT_QUOTA = timedelta(minutes=1), 3


_RECEIPTS, _WINDOWS = InboundReceipt.__table__, ServiceWindow.__table__


def _receipt_insert(insert: Callable[..., Any]) -> Any:
    return insert(_RECEIPTS).values(key=param(_RECEIPTS.c.key), chat_id=bindparam("chat_id", type_=String),
                                    status="ready", reply=param(_RECEIPTS.c.reply),
                                    created_at=bindparam("now", type_=DateTime),
                                    updated_at=bindparam("now", type_=DateTime)).on_conflict_do_nothing()


def _window_upsert(insert: Callable[..., Any], kind: str, after_receipt: bool = False) -> Executable:
    """Open an owner's reply window of `kind` ("message" or "event"): a fresh window and quota. `after_receipt`
    (PostgreSQL): in one statement with the receipt's insert, selecting the window's row from the inserted receipt,
    so that it is written, and a row returned, only when the receipt was new."""
    at, used = ("message_at", "message_used") if kind == "message" else ("event_at", "event_used")
    if after_receipt:
        written = _receipt_insert(insert).returning(_RECEIPTS.c.key).cte("receipt")
        stmt = insert(_WINDOWS).from_select(
            ["channel", "chat_id", "message_used", "event_used", at],
            select(literal(CHANNEL), bindparam("chat_id", type_=String), literal(0), literal(0),
                   bindparam("now", type_=DateTime)).select_from(written))
    else:
        stmt = insert(_WINDOWS).values(channel=CHANNEL, chat_id=param(_WINDOWS.c.chat_id), message_used=0,
                                       event_used=0, **{at: param(_WINDOWS.c[at], "now")})
    # `used` is 0 in the row just proposed: excluded's value, rather than one more parameter.
    stmt = stmt.on_conflict_do_update(index_elements=["channel", "chat_id"],
                                      set_={at: stmt.excluded[at], used: stmt.excluded[used]})
    return stmt.returning(_WINDOWS.c.chat_id).add_cte(written) if after_receipt else stmt


def _build(dialect_name: str, what: str, kind: str) -> Executable:
    insert = insert_for(dialect_name)
    if what == "receipt":
        return _receipt_insert(insert)
    return _window_upsert(insert, kind, after_receipt=what == "receipt+window")


def _statement(tx: StepTx, what: str, kind: str = "") -> Executable:
    """The per-message statements, built once per dialect (statement building costs more than running them)."""
    return STATEMENTS.built(_build, tx.dialect.name, what, kind)


class Receipts:
    """Statuses: ready (the message was handled, its reply stored) -> queued (the reply went out through the API
    instead, the request having been answered before it was ready)."""

    def __init__(self, app: App):
        self.app = app

    async def record(self, tx: StepTx, key: str, chat_id: str, reply: str, window: str) -> bool:
        """Record a handled message and its reply, and open the owner's reply window (`window`: "message", or
        "event" for a menu click or a follow: a fresh window and quota), in the caller's transaction. False, and
        nothing written, when the message was handled before."""
        params = {"key": key, "chat_id": chat_id, "reply": reply, "now": self.app.clock.now()}
        kind = "message" if window == "message" else "event"
        if tx.dialect.name == "postgresql":
            return (await tx.execute(_statement(tx, "receipt+window", kind), params)).first() is not None
        if (await tx.execute(_statement(tx, "receipt"), params)).rowcount != 1:
            return False
        await tx.execute(_statement(tx, "window", kind), params)
        return True

    async def queued(self, key: str) -> None:
        async with self.app.sessionmaker() as s, s.begin():
            await s.execute(update(InboundReceipt).where(InboundReceipt.key == key)
                            .values(status="queued", updated_at=self.app.clock.now()))

    async def answer_of(self, key: str) -> str:
        """For a retry (its step found the receipt, so the original has committed): the original's reply, or ""
        (answer `success`) when that reply went out through the API instead."""
        async with self.app.sessionmaker() as s:
            receipt = await s.get(InboundReceipt, key)
        return receipt.reply if receipt is not None and receipt.status == "ready" else ""


class Windows:
    def __init__(self, app: App):
        self.app = app

    async def _row(self, s: AsyncSession, chat_id: str) -> ServiceWindow:
        row = await s.scalar(select(ServiceWindow).where(ServiceWindow.channel == CHANNEL,
                                                         ServiceWindow.chat_id == chat_id).with_for_update())
        if row is None:
            row = ServiceWindow(channel=CHANNEL, chat_id=chat_id, message_used=0, event_used=0)
            s.add(row)
        return row

    async def take(self, chat_id: str, n: int = 1) -> bool:
        """Use n messages of an open window's quota (the shorter event window first); False when none has room."""
        now = self.app.clock.now()
        async with self.app.sessionmaker() as s, s.begin():
            row = await self._row(s, chat_id)
            if row.event_at and now - row.event_at < EVENT_WINDOW and row.event_used + n <= EVENT_QUOTA:
                row.event_used += n
                return True
            if row.message_at and now - row.message_at < MESSAGE_WINDOW and row.message_used + n <= MESSAGE_QUOTA:
                row.message_used += n
                return True
            return False

    async def close(self, chat_id: str) -> None:
        """WeChat refused (45015): whatever we counted, the window is shut until the owner writes again."""
        async with self.app.sessionmaker() as s, s.begin():
            row = await self._row(s, chat_id)
            row.message_used, row.event_used = MESSAGE_QUOTA, EVENT_QUOTA


class Nonces:
    """Signed requests' nonces, shared by every worker through the database, for as long as a request's timestamp
    is accepted (the freshness window): a signature set is good for one request."""

    def __init__(self, app: App, window: timedelta):
        self.app = app
        self.window = window
        self._pruned_at: datetime | None = None

    async def first_use(self, timestamp: str, nonce: str, digest: str) -> bool:
        """Record the nonce; False when it was seen with another body (a replay). The same body again is WeChat
        retrying its own request: let through, the message's receipt answers it as the first time."""
        now = self.app.clock.now()
        key = f"{CHANNEL}:{timestamp}:{nonce}"
        async with self.app.sessionmaker() as s, s.begin():
            insert = insert_for(s.bind.dialect.name)
            new = (await s.execute(insert(RequestNonce).values(key=key, digest=digest, seen_at=now)
                                   .on_conflict_do_nothing().returning(RequestNonce.key))).first()
            fresh = new is not None or await s.scalar(select(RequestNonce.digest).where(RequestNonce.key == key)) \
                == digest
            if self._pruned_at is None or now - self._pruned_at > self.window / 5:
                self._pruned_at = now  # nonces older than the window can no longer come with a valid timestamp
                await s.execute(delete(RequestNonce).where(RequestNonce.seen_at < now - 2 * self.window))
        return fresh
