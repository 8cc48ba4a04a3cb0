"""The aiohttp server: health check, the local web chat and staff pane; later channels add their routes here."""
from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from bot.app import App
from bot.channels.web import owner_chat, staff_pane

log = logging.getLogger("propdesk.server")
APP_KEY = web.AppKey("propdesk", App)


async def healthz(request: web.Request) -> web.Response:
    """200 when propdesk can do its work: the database answers and takes writes, and the upload folder takes files;
    otherwise 503, naming what cannot."""
    app: App = request.app[APP_KEY]
    report = {"database": "ok", "uploads": "ok"}
    try:
        async with app.db.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=3)
            try:
                # A write that is rolled back: a read-only file or a read-only server fails here.
                await asyncio.wait_for(conn.execute(
                    text("INSERT INTO job_runs (name, run_key, created_at) VALUES ('healthz', :k, :now)"),
                    {"k": os.urandom(8).hex(), "now": app.clock.now()}), timeout=3)
                await conn.rollback()
            except Exception as exc:  # noqa: BLE001
                log.warning("health check: the database cannot be written: %s", exc)
                report["database"] = "unwritable"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        log.warning("health check failed: %s", exc)
        report["database"] = "unreachable"
    folder = Path(app.settings.upload_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        log.warning("health check: the upload folder %s cannot be written: %s", folder, exc)
        report["uploads"] = "unwritable"
    if any(v != "ok" for v in report.values()):
        return web.json_response({"status": "error", **report}, status=503)
    return web.json_response({"status": "ok", **report})


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


def build_app(app: App, channels: list | None = None) -> web.Application:
    webapp = web.Application(middlewares=[errors_as_json], client_max_size=app.settings.max_upload_bytes + 65536)
    webapp[APP_KEY] = app
    webapp.router.add_get("/healthz", healthz)
    if app.settings.web_chat_enabled:
        owner_chat.setup(webapp, app)
        staff_pane.setup(webapp, app)
    for channel in channels or []:
        channel.setup_routes(webapp)
    return webapp
