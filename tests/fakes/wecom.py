"""A fake WeCom group-robot webhook on loopback: POST /cgi-bin/webhook/send?key=..., at most N messages a minute
per robot (WeCom: 20), answering errcode 45009 beyond that, as WeCom does."""
from __future__ import annotations

import time

from aiohttp import web

from tests.fakes.loopback import FakeServer


class FakeWeCom(FakeServer):
    def __init__(self, limit_per_minute: int = 20, period: float = 60.0):
        super().__init__()
        self.limit, self.period = limit_per_minute, period
        self.messages: dict[str, list[dict]] = {}
        self.sent_at: dict[str, list[float]] = {}
        self.refused = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/webhook/send", self.send)

    async def send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if not key.startswith("robot-"):
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        body = await request.json()
        content = (body.get(body.get("msgtype", ""), {}) or {}).get("content", "")
        if len(content.encode()) > 4096:
            return web.json_response({"errcode": 40058, "errmsg": "content exceed max length"})
        now = time.monotonic()
        recent = [t for t in self.sent_at.get(key, []) if now - t < self.period]
        if len(recent) >= self.limit:
            self.refused += 1
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        self.sent_at[key] = recent + [now]
        self.messages.setdefault(key, []).append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
