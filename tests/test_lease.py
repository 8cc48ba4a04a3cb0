"""One worker at a time holds a lease (the Telegram poller); when it dies another takes over within seconds."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.ops.lease import Lease
from models.db import make_engine
from tests.helpers.databases import NO_PG, PG_URL


@pytest.mark.skipif(not PG_URL, reason=NO_PG)
async def test_one_holder_and_a_takeover_when_it_dies():
    engines = [make_engine(PG_URL) for _ in range(3)]
    events: list[str] = []
    stops = [asyncio.Event() for _ in engines]

    def lease(i: int) -> Lease:
        async def got() -> None:
            events.append(f"got{i}")

        async def lost() -> None:
            events.append(f"lost{i}")
        return Lease(engines[i], "telegram-poller-test", got, lost, retry=0.1)

    leases = [lease(i) for i in range(3)]
    tasks = [asyncio.create_task(lease_.run(s)) for lease_, s in zip(leases, stops, strict=True)]
    try:
        async with asyncio.timeout(10):
            while sum(lease_.held for lease_ in leases) == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # several retry rounds: still exactly one holder
        holders = [i for i, lease_ in enumerate(leases) if lease_.held]
        assert len(holders) == 1
        first = holders[0]
        # The holder's session ends as a killed worker's does: the server drops it, and the lock with it.
        pid = (await leases[first]._session_conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        await leases[first]._session_conn.commit()
        killer = make_engine(PG_URL)
        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await killer.dispose()
        tasks[first].cancel()  # and the worker is gone: it never asks again
        async with asyncio.timeout(10):
            while not any(lease_.held for i, lease_ in enumerate(leases) if i != first):
                await asyncio.sleep(0.05)
        assert sum(lease_.held for i, lease_ in enumerate(leases) if i != first) == 1
    finally:
        for s in stops:
            s.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for e in engines:
            await e.dispose()
