"""The assembled application: settings, database, conversation engine and clock, wired in one place."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from config.settings import Settings
from models import OutboxMessage
from models.db import make_engine, make_sessionmaker

from bot.clock import Clock
from bot.conversation.engine import Engine
from bot.delivery.api_tokens import ApiTokens
from bot.delivery.media import MediaStore
from bot.desk.owner_accounts import OwnerAccounts
from bot.desk.staff_desk import StaffDesk
from bot.ops.metrics import Metrics

log = logging.getLogger("propdesk")


@dataclass
class App:
    settings: Settings
    db: AsyncEngine
    sessionmaker: async_sessionmaker
    engine: Engine
    clock: Clock
    extras: dict = field(default_factory=dict)
    delivery: Any = None  # bot.delivery.Delivery, once channels with outlets run
    media: MediaStore = None  # type: ignore[assignment]  # set in __post_init__
    staff_desk: StaffDesk = None  # type: ignore[assignment]  # set in __post_init__
    owner_accounts: OwnerAccounts = None  # type: ignore[assignment]  # set in __post_init__
    api_tokens: ApiTokens = None  # type: ignore[assignment]  # set in __post_init__
    metrics: Metrics = None  # type: ignore[assignment]  # the engine's, set in __post_init__
    ready: bool = False  # migrations applied and channels started (GET /readyz)

    def __post_init__(self) -> None:
        if self.media is None:
            self.media = MediaStore(self.settings.upload_dir)
        self.engine.on_queued = self.wake_delivery
        self.metrics = self.engine.metrics
        self.staff_desk = StaffDesk(self.sessionmaker, self.settings, self.clock, self.engine.dispatch, self.media,
                                    self.wake_delivery)
        self.owner_accounts = OwnerAccounts(self.sessionmaker, self.clock)
        self.api_tokens = ApiTokens(self.sessionmaker, self.clock)

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> "App":
        clock = clock or Clock(settings.timezone)
        db = make_engine(settings.database_url, settings.sqlite_synchronous)
        sm = make_sessionmaker(db)
        return cls(settings=settings, db=db, sessionmaker=sm, engine=Engine(sm, settings, clock=clock), clock=clock)

    def wake_delivery(self) -> None:
        """Messages were queued: let the delivery worker look now."""
        if self.delivery is not None:
            self.delivery.wake()

    async def queue_messages(self, channel: str, chat_id: str, payloads: list[dict]) -> None:
        """Hand messages that could not be sent at once to the outbox, for the delivery worker to retry."""
        async with self.sessionmaker() as s, s.begin():
            for payload in payloads:
                s.add(OutboxMessage.new(channel, chat_id, payload, at=self.clock.now(), not_before=self.clock.now()))
        self.wake_delivery()

    async def close(self) -> None:
        await self.engine.close()
        await self.db.dispose()
