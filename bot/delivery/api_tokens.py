"""Platform access tokens shared by every worker through the database (WeChat allows one valid token at a time:
each worker fetching its own would invalidate the others')."""
from __future__ import annotations


from datetime import datetime, timedelta
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ApiToken

from bot.clock import Clock


class ApiTokens:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock):
        self.sessionmaker = sessionmaker
        self.clock = clock

    async def get(self, name: str, fetch: Callable[[], Awaitable[tuple[str, int]]], *, stale: str | None = None,
                  early: timedelta = timedelta(minutes=5)) -> tuple[str, datetime]:
        """The stored token `name` and its expiry; fetched anew (with `fetch`: value, seconds to live) when there is
        none, it is `stale` (the platform refused it) or it expires within `early`. The row is locked meanwhile, so
        workers fetch one at a time and the others use it."""
        now = self.clock.now()
        async with self.sessionmaker() as s, s.begin():
            row = await s.scalar(select(ApiToken).where(ApiToken.name == name).with_for_update())
            if row is None or row.value == stale or row.expires_at - early <= now:
                value, ttl = await fetch()
                if row is None:
                    row = ApiToken(name=name, value=value, expires_at=now)
                    s.add(row)
                row.value, row.expires_at = value, now + timedelta(seconds=ttl)
            return row.value, row.expires_at
