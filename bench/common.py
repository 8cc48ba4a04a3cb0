"""What the benchmarks share: propdesk started on a fresh database with one channel, behind its own server."""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

from bot.app import App
from bot.clock import Clock
from bot.runner import freeze_startup_objects
from bot.desk.demo_seed import seed_demo
from bot.server import build_app
from config.settings import Settings
from models.db import make_engine, upgrade_url
from tests.fakes.loopback import serve


async def fresh_database(workdir: Path, database_url: str | None) -> str:
    """SQLite in `workdir`, or the given PostgreSQL database emptied; migrated either way."""
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    if database_url:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    await asyncio.to_thread(upgrade_url, url)
    return url


async def start_propdesk(settings: Settings, channel_class):  # noqa: ANN001, ANN201
    """The demo data, the channel and the server; (stop, base URL)."""
    app = App.create(settings, clock=Clock())
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s)
    channel = channel_class(app)
    runner, base = await serve(build_app(app, [channel]))
    await channel.start()
    freeze_startup_objects()  # as `propdesk run` does

    async def stop() -> None:
        await channel.stop()
        await runner.cleanup()
        await app.close()

    return stop, base


async def paced(rate: float, seconds: float, one: Callable[[int], Awaitable[None]]) -> tuple[int, float]:
    """Open loop: start `one(i)` at `rate` a second for `seconds`, whatever the answers' speed; (how many, elapsed)."""
    tasks, began = [], time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return len(tasks), time.perf_counter() - began
