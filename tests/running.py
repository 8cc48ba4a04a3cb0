"""propdesk running for a test: its aiohttp server on loopback, its channels, and its delivery worker. Tests get one
from the `propdesk` fixture (conftest), which stops it before the platform fakes it talks to."""
from __future__ import annotations

import asyncio

from bot.app import App
from bot.runner import build_delivery
from bot.server import build_app
from tests.fakes.loopback import serve


class Running:
    def __init__(self, app: App, channels: list):
        self.app, self.channels = app, channels
        self.base = ""
        self._stop = asyncio.Event()

    def channel(self, kind: type):  # noqa: ANN201
        """The running channel of that class."""
        return next(c for c in self.channels if isinstance(c, kind))

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
