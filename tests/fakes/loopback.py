"""Serve an aiohttp application on a free loopback port (the fakes' and the tests' one way to listen), and the
platform fakes' common part: start, stop, and a Signal fired after every request they handled."""
from __future__ import annotations

from aiohttp import web

from tests.waiting import Signal, describe, wait_for


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001


class FakeServer:
    """A platform fake on loopback. Subclasses add their routes in `routes`; tests start and stop them through the
    `fakes` fixture (conftest), which stops them after the propdesk that talks to them."""

    client_max_size = 1024 ** 2

    def __init__(self) -> None:
        self.changed = Signal()  # fired after each request the fake handled (see tests.waiting)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self):  # noqa: ANN201 - the fake itself
        @web.middleware
        async def signal(request: web.Request, handler):  # noqa: ANN001, ANN202
            try:
                return await handler(request)
            finally:
                self.changed.fire()

        app = web.Application(client_max_size=self.client_max_size, middlewares=[signal])
        self.routes(app)
        self.runner, self.url = await serve(app)
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None

    async def wait_for(self, predicate, timeout: float = 20.0, what: str | None = None, show=None):  # noqa: ANN001, ANN201
        """tests.waiting.wait_for on this fake: `predicate(fake)`, looked at again after each request it handled."""
        return await wait_for(lambda: predicate(self), timeout=timeout, what=what or describe(predicate),
                              on=self.changed, show=show)

