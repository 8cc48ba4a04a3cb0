"""The conversation engine: one inbound message -> identity, stored state, flow step, saved state, replies.

Every channel adapter calls `Engine.handle`; each call is one database transaction, and the conversation row is
locked for its duration, so two workers (or two quick messages) never interleave one chat's steps.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from config.settings import Settings
from handlers import router
from handlers.context import Ctx, FlowSettings
from handlers.i18n import LANGS, t
from handlers.messages import Inbound, Reply
from models import Conversation, Identity, Person

from .classifier import Classifier, get_classifier
from .clock import Clock
from .desk import DbDesk
from .dispatch import Dispatch
from .tickets import CLAIM_MINUTES


@dataclass
class Sender:
    """Who wrote, as the channel knows them."""

    channel: str
    chat_id: str
    user_id: str
    display_name: str = ""
    lang_hint: str | None = None  # e.g. Telegram's language_code


class Engine:
    def __init__(self, sessionmaker: async_sessionmaker, settings: Settings, clock: Clock | None = None,
                 classifier: Classifier | None = None):
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock or Clock()
        self.classifier = classifier or get_classifier(settings.rules_file)
        self.dispatch = Dispatch.from_settings(settings)
        # SQLite has one writer at a time and waits for the lock by sleeping: queue this process's conversation
        # steps here instead, so concurrent updates (other channels' I/O still overlaps) never busy-wait.
        self._serial = asyncio.Lock() if settings.database_url.startswith("sqlite") else None
        self.flow_settings = FlowSettings(
            duty_phone=settings.duty_phone, office_name=settings.office_name,
            max_text_length=settings.max_text_length, hurry_cooldown_minutes=settings.hurry_cooldown_minutes,
            promise_minutes=dict(CLAIM_MINUTES))

    async def identity(self, session: AsyncSession, sender: Sender) -> Identity:
        ident = await session.scalar(select(Identity).where(Identity.channel == sender.channel,
                                                            Identity.external_id == sender.user_id)
                                     .options(joinedload(Identity.person)))
        if ident is None:
            lang = _lang(sender.lang_hint)
            person = Person(name=sender.display_name[:100], lang=lang, created_at=self.clock.now())
            session.add(person)
            await session.flush()
            ident = Identity(channel=sender.channel, external_id=sender.user_id, chat_id=sender.chat_id,
                             person_id=person.id, person=person, display_name=sender.display_name[:100],
                             created_at=self.clock.now())
            session.add(ident)
            await session.flush()
        elif not ident.active:
            ident.active = True
        return ident

    async def _conversation(self, session: AsyncSession, channel: str, chat_id: str) -> Conversation:
        conv = await session.scalar(select(Conversation).where(
            Conversation.channel == channel, Conversation.chat_id == chat_id).with_for_update())
        if conv is None:
            conv = Conversation(channel=channel, chat_id=chat_id, flow="menu", state="idle", data={},
                                updated_at=self.clock.now())
            session.add(conv)
            await session.flush()
            # Re-read under lock: a concurrent first message may have created it too.
        return conv

    async def handle(self, sender: Sender, msg: Inbound) -> list[Reply]:
        if self._serial is None:
            return await self._handle(sender, msg)
        async with self._serial:
            return await self._handle(sender, msg)

    async def _handle(self, sender: Sender, msg: Inbound) -> list[Reply]:
        async with self.sessionmaker() as session, session.begin():
            ident = await self.identity(session, sender)
            person = ident.person
            conv = await self._conversation(session, sender.channel, sender.chat_id)
            lang = conv.lang or person.lang or _lang(sender.lang_hint) or self.settings.default_lang
            replies: list[Reply] = []
            now = self.clock.now()
            timeout = timedelta(minutes=self.settings.conversation_timeout_minutes)
            if conv.flow != "menu" and now - conv.updated_at > timeout:
                replies.append(Reply(t(lang, "common.expired")))
                conv.flow, conv.state, conv.data = "menu", "idle", {}
            desk = DbDesk(session, self.classifier, self.clock, self.settings.hurry_cooldown_minutes,
                          self.dispatch, self.settings.staff_lang)
            ctx = Ctx(desk=desk,
                      channel=sender.channel, chat_id=sender.chat_id, person_id=person.id, lang=lang,
                      flow=conv.flow, state=conv.state, data=dict(conv.data or {}), now=now,
                      settings=self.flow_settings)
            await router.handle(ctx, msg)
            conv.flow, conv.state, conv.data = ctx.flow, str(ctx.state), ctx.data
            conv.lang = ctx.lang
            conv.updated_at = now
            return replies + ctx.replies


def _lang(hint: str | None) -> str | None:
    if not hint:
        return None
    code = hint.lower()[:2]
    return code if code in LANGS else "en"
