"""propdesk running for a test: its aiohttp server on loopback, its channels, and its delivery worker."""
from __future__ import annotations

import asyncio

from bot.app import App
from bot.runner import build_delivery
from bot.server import build_app
from tests.fakes.loopback import serve


class Running:
    def __init__(self, app: App, channels: list, fakes: tuple = ()):
        """`fakes`: the platform fakes the channels talk to, stopped after propdesk (which may still call them)."""
        self.app, self.channels, self.fakes = app, channels, fakes
        self.base = ""
        self._stop = asyncio.Event()

    async def start(self, interval: float = 0.05) -> "Running":
        self.runner, self.base = await serve(build_app(self.app, self.channels))
        for channel in self.channels:
            await channel.start()
        self._task = asyncio.create_task(build_delivery(self.app, self.channels).run_forever(self._stop, interval))
        return self

    async def stop(self) -> None:
        self._stop.set()
        await self._task
        for channel in self.channels:
            await channel.stop()
        await self.runner.cleanup()
        await self.app.close()
        for fake in self.fakes:
            await fake.stop()
