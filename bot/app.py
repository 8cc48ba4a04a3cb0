"""The assembled application: settings, database, conversation engine and clock, wired in one place."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from config.settings import Settings
from models.db import make_engine, make_sessionmaker

from .clock import Clock
from .engine import Engine

log = logging.getLogger("propdesk")


@dataclass
class App:
    settings: Settings
    db: AsyncEngine
    sessionmaker: async_sessionmaker
    engine: Engine
    clock: Clock
    extras: dict = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> "App":
        clock = clock or Clock(settings.timezone)
        db = make_engine(settings.database_url)
        sm = make_sessionmaker(db)
        return cls(settings=settings, db=db, sessionmaker=sm, engine=Engine(sm, settings, clock=clock), clock=clock)

    async def close(self) -> None:
        await self.db.dispose()
