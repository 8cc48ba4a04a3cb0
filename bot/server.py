"""The aiohttp server: health check, the local web chat and staff pane; later channels add their routes here."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from bot.app import App
from bot.channels.web import console, owner_chat, security

log = logging.getLogger("propdesk.server")
APP_KEY = web.AppKey("propdesk", App)


async def healthz(request: web.Request) -> web.Response:
    app: App = request.app[APP_KEY]
    try:
        async with app.db.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        log.warning("health check failed: %s", exc)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


@web.middleware
async def errors_as_json(request: web.Request, handler):
    """Bad requests get a clear JSON error; nothing leaks a traceback to the client."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:  # noqa: BLE001
        log.exception("error handling %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console")


def build_app(app: App, channels: list | None = None) -> web.Application:
    webapp = web.Application(middlewares=[*security.middlewares(app.settings), errors_as_json],
                             client_max_size=app.settings.max_upload_bytes + 65536)
    webapp[APP_KEY] = app
    webapp.router.add_get("/healthz", healthz)
    console.setup(webapp, app)  # the staff side: behind a signed-in session
    if app.settings.web_chat_enabled and security.demo_enabled(app.settings):
        owner_chat.setup(webapp, app)  # the demo owner chat: loopback only unless PROPDESK_WEB_DEMO=true
    else:
        webapp.router.add_get("/", to_console)
    for channel in channels or []:
        channel.setup_routes(webapp)
    return webapp
