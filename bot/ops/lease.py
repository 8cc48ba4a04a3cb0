"""A named lease that exactly one worker holds at a time (e.g. who long-polls Telegram: Telegram answers a second
poller with 409 Conflict).

On PostgreSQL it is a session-level advisory lock on a connection of the lease's own: the worker that dies drops its
connection, the server releases the lock, and another worker's next try (every `retry` seconds) takes it. On SQLite
there is one worker (`propdesk run --workers` refuses more), so the lease is simply held.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("propdesk.lease")


def lease_key(name: str) -> int:
    """A stable 63-bit advisory-lock key for a lease name."""
    return int.from_bytes(hashlib.sha256(f"propdesk:{name}".encode()).digest()[:8], "big") >> 1


class Lease:
    def __init__(self, db: AsyncEngine, name: str, on_acquired: Callable[[], Awaitable[None]],
                 on_lost: Callable[[], Awaitable[None]], retry: float = 2.0):
        self.db, self.name, self.key = db, name, lease_key(name)
        self.on_acquired, self.on_lost, self.retry = on_acquired, on_lost, retry
        self.held = False
        self._session_conn: AsyncConnection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Hold the lease whenever it can be had, until `stop`; then let it go."""
        try:
            while not stop.is_set():
                if not self.held:
                    await self._try_take()
                elif not await self._still_held():
                    await self._lose("the lease's connection was lost")
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.retry)
                except TimeoutError:
                    pass
        finally:
            if self.held:
                await self._lose("stopping")
            await self._close()

    async def _try_take(self) -> None:
        if self.db.dialect.name != "postgresql":
            await self._take()
            return
        try:
            if self._session_conn is None:
                self._session_conn = await self.db.connect()
            got = (await self._session_conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                                    {"key": self.key})).scalar()
            await self._session_conn.commit()  # the lock is the session's: no transaction is left open meanwhile
        except Exception as exc:  # noqa: BLE001 - the database is away: try again later
            log.warning("lease %s: cannot ask the database (%s)", self.name, exc)
            await self._close()
            return
        if got:
            await self._take()

    async def _take(self) -> None:
        self.held = True
        log.info("lease %s taken by this worker", self.name)
        await self.on_acquired()

    async def _still_held(self) -> bool:
        if self._session_conn is None:
            return True  # SQLite: nobody else to hold it
        try:
            await self._session_conn.execute(text("SELECT 1"))
            await self._session_conn.commit()
            return True
        except Exception:  # noqa: BLE001 - the connection (and with it the lock) is gone
            await self._close()
            return False

    async def _lose(self, why: str) -> None:
        self.held = False
        log.info("lease %s let go: %s", self.name, why)
        await self.on_lost()
        if self._session_conn is not None:
            try:
                await self._session_conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await self._session_conn.commit()
            except Exception:  # noqa: BLE001 - closing the connection releases it anyway
                await self._close()

    async def _close(self) -> None:
        if self._session_conn is not None:
            conn, self._session_conn = self._session_conn, None
            try:
                await conn.close()
            except Exception:  # noqa: BLE001
                pass
