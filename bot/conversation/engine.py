"""The conversation engine: one inbound message -> identity, stored state, flow step, saved state, replies.

Every channel adapter calls `Engine.handle`; each call is one database transaction (on SQLite a savepoint in a
transaction that steps arriving together share; see models.step_transactions) and returns once it is committed.
The conversation row is locked for its duration, so two workers (or two quick messages) never interleave one chat's
steps.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Protocol, overload

from sqlalchemy import DateTime, String, and_, bindparam, event, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapper, object_session

from config.settings import Settings
from handlers import router
from handlers.context import Ctx, FlowSettings
from config.i18n import LANGS, t
from handlers.messages import Inbound, Reply
from models import Conversation, Identity, OutboxMessage, Person
from models.db import insert_for, step_transactions
from models.step_transactions import STATEMENTS, StepTx, param

from bot.triage.classifier import Classifier, get_classifier
from bot.triage.combine import Triager
from bot.clock import Clock
from bot.desk.owner_desk import DbDesk
from bot.desk.routing import Dispatch
from bot.ops.metrics import Metrics

log = logging.getLogger("propdesk.engine")
QUEUED = "propdesk.queued"


@event.listens_for(OutboxMessage, "after_insert")
def _mark_queued(mapper: Mapper[OutboxMessage], connection: Connection, target: OutboxMessage) -> None:
    """Note on the session that it queued a message (see Engine.on_queued)."""
    session = object_session(target)
    if session is not None:
        session.info[QUEUED] = True


@dataclass
class Sender:
    """Who wrote, as the channel knows them."""

    channel: str
    chat_id: str
    user_id: str
    display_name: str = ""
    lang_hint: str | None = None  # e.g. Telegram's language_code


class Hooks(Protocol):
    """A channel's work inside the message's transaction (e.g. WeChat's receipt): all of it commits, or none."""

    async def after(self, tx: StepTx, replies: list[Reply]) -> bool:
        """Record what the message produced. False: the message is a retry of one already handled (its receipt
        is there), so the whole step is rolled back and `Engine.handle` returns None."""


class _Declined(Exception):
    """Raised inside the step's transaction to roll it back."""


class Engine:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock | None = None,
                 classifier: Classifier | None = None):
        # Steps run in transactions of their own kind (models.step_transactions); a session joins one when needed.
        self.transactions = step_transactions(sessionmaker.kw["bind"], settings.sqlite_synchronous)
        self._sessionmaker = sessionmaker  # for work after a refused step, outside its transaction
        # Called after a step that queued outgoing messages (the app wakes its delivery worker); a step that did
        # not, the common case, costs the worker no look at the outbox.
        self.on_queued: Callable[[], None] | None = None
        self.metrics = Metrics()  # messages in, step latency, failures (the app's, which /metrics shows)
        self.settings = settings
        self.clock = clock or Clock()
        self.classifier = classifier or Triager(get_classifier(settings.rules_file), use_model=settings.triage_model)
        self.dispatch = Dispatch.from_settings(settings)
        self.flow_settings = FlowSettings(
            duty_phone=settings.duty_phone, office_name=settings.office_name,
            max_text_length=settings.max_text_length, hurry_cooldown_minutes=settings.hurry_cooldown_minutes)

    async def _identity(self, tx: StepTx, sender: Sender, row: Any = None) -> tuple[int, str | None]:
        """(person id, the person's language) of the sender's chat account, created on first contact. `row`: the
        identity as already read with the conversation, if it was found there."""
        if row is None or row.person_id is None:
            row = (await tx.execute(_IDENTITY, {"channel": sender.channel, "user": sender.user_id})).first()
        if row is not None:
            if not row.active:  # a returning follower (e.g. a WeChat owner who unfollowed)
                await tx.execute(_REACTIVATE, {"identity_id": row.identity_id})
            return row.person_id, row.person_lang
        lang = _lang(sender.lang_hint)
        person_id = (await tx.execute(_NEW_PERSON, {"name": sender.display_name[:100], "lang": lang,
                                                    "now": self.clock.now()})).scalar()
        await tx.execute(_NEW_IDENTITY, {"channel": sender.channel, "user": sender.user_id, "chat": sender.chat_id,
                                         "person": person_id, "name": sender.display_name[:100],
                                         "now": self.clock.now()})
        return person_id, lang

    async def _conversation(self, tx: StepTx, channel: str, chat_id: str) -> Any:
        """The chat's conversation row, locked for this transaction; created when new."""
        key = {"channel": channel, "chat": chat_id}
        row = (await tx.execute(_CONVERSATION, key)).first()
        if row is None:
            # A concurrent first message may have created it: ON CONFLICT DO NOTHING.
            await tx.execute(STATEMENTS.built(_new_conversation, tx.dialect.name), {**key, "now": self.clock.now()})
            row = (await tx.execute(_CONVERSATION, key)).first()
        return row

    @overload
    async def handle(self, sender: Sender, msg: Inbound, hooks: None = None) -> list[Reply]:
        ...

    @overload
    async def handle(self, sender: Sender, msg: Inbound, hooks: "Hooks") -> list[Reply] | None:
        ...

    async def handle(self, sender: Sender, msg: Inbound, hooks: "Hooks | None" = None) -> list[Reply] | None:
        """Run one message; its replies. With hooks, None when `hooks.after` declined the message.

        A step that fails (a flow's bug, a database that went away) never leaves the owner unanswered: the error is
        logged with the message, the conversation goes back to the menu, and the owner gets an apology with it."""
        msg = _clean(msg)
        try:
            with self.metrics.step(sender.channel):
                return await self._run(sender, msg, hooks)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the owner gets an answer
            key = getattr(exc, "owner_message_key", None)
            if key is None:
                log.exception("step failed: channel=%s chat=%s message=%s; answering with an apology",
                              sender.channel, sender.chat_id, msg.kind)
                self.metrics.step_failures.labels(sender.channel).inc()
                return await self._apologise(sender, hooks)
            # A refusal the owner should understand (e.g. a rate limit): nothing of the step was kept.
            log.info("step refused: channel=%s chat=%s: %s", sender.channel, sender.chat_id, exc)
            follow_up = getattr(exc, "after_rollback", None)
            if follow_up is not None:
                try:
                    await follow_up(self._sessionmaker, self.clock.now())
                except Exception:  # noqa: BLE001
                    log.exception("follow-up of a refused step failed")
            return await self._apologise(sender, hooks, key)

    async def _apologise(self, sender: Sender, hooks: "Hooks | None",
                         key: str = "common.step_failed") -> list[Reply] | None:
        """The menu, after an apology, as a step of its own (it resets the conversation); the apology alone when even
        that fails (the database is down: nothing can be kept, but the owner still hears from us)."""
        lang = _lang(sender.lang_hint) or self.settings.default_lang
        try:
            return await self._run(sender, Inbound(kind="command", command="menu"), hooks,
                                   preface=[Reply(t(lang, key, duty_phone=self.settings.duty_phone))])
        except Exception:  # noqa: BLE001
            log.exception("apology step failed too: channel=%s chat=%s", sender.channel, sender.chat_id)
            return [Reply(t(lang, "common.step_failed_no_menu", duty_phone=self.settings.duty_phone))]

    async def _run(self, sender: Sender, msg: Inbound, hooks: "Hooks | None",
                   preface: list[Reply] | None = None) -> list[Reply] | None:
        for attempt in (1, 2):
            try:
                return await self._handle(sender, msg, hooks, preface or [])
            except DBAPIError as exc:
                # Nothing was committed, so the step can run again: on a fresh connection when the database dropped
                # the pooled one (a restart), or after a concurrent step won a race to create the same row (two
                # first messages of a new owner at once: the rerun finds the account the other created).
                if attempt == 2 or not (exc.connection_invalidated or isinstance(exc, IntegrityError)):
                    raise
                log.warning("running the message again after %s", type(exc).__name__)
        raise AssertionError("unreachable")

    async def _handle(self, sender: Sender, msg: Inbound, hooks: "Hooks | None",
                      preface: list[Reply]) -> list[Reply] | None:
        # The hot path (who, which conversation, save it) is two Core statements; an ORM session joins the
        # transaction only when a flow asks the desk for something.
        try:
            async with self.transactions.begin() as tx:
                desk = DbDesk(tx.session, self.classifier, self.clock, self.settings.hurry_cooldown_minutes,
                              self.dispatch, self.settings.staff_lang, execute=tx.execute)
                replies = await self._step(tx, desk, sender, msg, hooks, preface)
                if replies is None:
                    raise _Declined  # nothing of the step is kept
                queued = desk.session_opened and bool(desk.s.info.get(QUEUED))
        except _Declined:
            return None
        if queued and self.on_queued is not None:  # committed: the delivery worker may send it now
            self.on_queued()
        return replies

    async def close(self) -> None:
        await self.transactions.close()

    async def _step(self, tx: StepTx, desk: DbDesk, sender: Sender, msg: Inbound,
                    hooks: "Hooks | None", preface: list[Reply]) -> list[Reply] | None:
        # Steady state: one statement reads the conversation (locked) with the sender's identity.
        conv = (await tx.execute(_STEP, {"channel": sender.channel, "chat": sender.chat_id,
                                           "user": sender.user_id})).first()
        person_id, person_lang = await self._identity(tx, sender, conv)
        if conv is None:
            conv = await self._conversation(tx, sender.channel, sender.chat_id)
        lang = conv.lang or person_lang or _lang(sender.lang_hint) or self.settings.default_lang
        replies: list[Reply] = list(preface)
        now = self.clock.now()
        flow, state, data = conv.flow, conv.state, dict(conv.data or {})
        timeout = timedelta(minutes=self.settings.conversation_timeout_minutes)
        if flow != "menu" and now - conv.updated_at > timeout:
            replies.append(Reply(t(lang, "common.expired")))
            flow, state, data = "menu", "idle", {}
        ctx = Ctx(desk=desk, channel=sender.channel, chat_id=sender.chat_id, person_id=person_id, lang=lang,
                  flow=flow, state=state, data=data, now=now, settings=self.flow_settings)
        await router.handle(ctx, msg)
        if desk.session_opened:
            await desk.s.flush()
        await tx.execute(_SAVE, {"k_channel": sender.channel, "k_chat": sender.chat_id, "flow": ctx.flow,
                                   "state": str(ctx.state), "data": ctx.data, "lang": ctx.lang,
                                   "updated_at": now})
        if hooks is not None and not await hooks.after(tx, replies + ctx.replies):
            return None
        return replies + ctx.replies


# Built once: the hot path's statements are plain Core on tables, with their parameters (typed: see
# models.step_transactions.param) bound per call.
_CONV, _IDENT, _PEOPLE = Conversation.__table__, Identity.__table__, Person.__table__
_IDENTITY_COLUMNS = (_IDENT.c.id.label("identity_id"), _IDENT.c.person_id, _IDENT.c.active,
                     _PEOPLE.c.lang.label("person_lang"))
_CONVERSATION_COLUMNS = (_CONV.c.flow, _CONV.c.state, _CONV.c.data, _CONV.c.lang, _CONV.c.updated_at)
_IDENTITY = (select(*_IDENTITY_COLUMNS)
             .join(_PEOPLE, _PEOPLE.c.id == _IDENT.c.person_id)
             .where(_IDENT.c.channel == bindparam("channel"), _IDENT.c.external_id == bindparam("user")))
_CONVERSATION = (select(*_CONVERSATION_COLUMNS)
                 .where(_CONV.c.channel == bindparam("channel"), _CONV.c.chat_id == bindparam("chat"))
                 .with_for_update())
# The conversation row (locked) and, when known, the sender's identity and person: one round trip.
_STEP = (select(*_CONVERSATION_COLUMNS, *_IDENTITY_COLUMNS)
         .select_from(_CONV.outerjoin(_IDENT.join(_PEOPLE, _PEOPLE.c.id == _IDENT.c.person_id),
                                      and_(_IDENT.c.channel == _CONV.c.channel,
                                           _IDENT.c.external_id == bindparam("user"))))
         .where(_CONV.c.channel == bindparam("channel"), _CONV.c.chat_id == bindparam("chat"))
         .with_for_update(of=_CONV))
_SAVE = (update(_CONV).where(_CONV.c.channel == bindparam("k_channel"), _CONV.c.chat_id == bindparam("k_chat"))
         .values(flow=param(_CONV.c.flow), state=param(_CONV.c.state), data=param(_CONV.c.data),
                 lang=param(_CONV.c.lang), updated_at=param(_CONV.c.updated_at)))
_NEW_PERSON = (insert(_PEOPLE).values(name=param(_PEOPLE.c.name), lang=bindparam("lang", type_=String),
                                      created_at=bindparam("now", type_=DateTime)).returning(_PEOPLE.c.id))
_NEW_IDENTITY = insert(_IDENT).values(channel=param(_IDENT.c.channel), external_id=param(_IDENT.c.external_id, "user"),
                                      chat_id=param(_IDENT.c.chat_id, "chat"),
                                      person_id=param(_IDENT.c.person_id, "person"),
                                      display_name=param(_IDENT.c.display_name, "name"), active=True,
                                      created_at=bindparam("now", type_=DateTime))
_REACTIVATE = update(_IDENT).where(_IDENT.c.id == bindparam("identity_id")).values(active=True)


def _new_conversation(dialect_name: str) -> Any:
    """Built once per dialect (STATEMENTS)."""
    return (insert_for(dialect_name)(_CONV)
            .values(channel=param(_CONV.c.channel), chat_id=param(_CONV.c.chat_id, "chat"), flow="menu", state="idle",
                    data={},
                    updated_at=bindparam("now", type_=DateTime))
            .on_conflict_do_nothing())


# Lone surrogates (e.g. "\ud800" from a JSON body) cannot be encoded, and PostgreSQL refuses NUL in text: neither is
# ever meaningful in a message, so they are taken out before any flow sees the text.
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def _clean(msg: Inbound) -> Inbound:
    """The message with lone surrogates and NUL removed from its texts."""
    fields = ("text", "args", "choice", "photo_ref", "raw_type")
    changes: dict[str, Any] = {name: _UNSAFE.sub("", value) for name in fields
                               if isinstance(value := getattr(msg, name, None), str) and _UNSAFE.search(value)}
    return dataclasses.replace(msg, **changes) if changes else msg


def _lang(hint: str | None) -> str | None:
    if not hint:
        return None
    code = hint.lower()[:2]
    return code if code in LANGS else "en"
