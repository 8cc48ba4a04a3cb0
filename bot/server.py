"""The aiohttp server: health check, the local web chat, the staff console; later channels add their routes here."""
from __future__ import annotations

import asyncio
import hmac
import logging
import os
import tempfile
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from bot.app import App
from bot.delivery.outbox_worker import Channel
from bot.channels.web import console, owner_chat, security

log = logging.getLogger("propdesk.server")
APP_KEY = web.AppKey("propdesk", App)
MAX_PATH = 2048  # longer addresses get 414, before any route (a file system refuses such names anyway)


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


async def readyz(request: web.Request) -> web.Response:
    """200 once this worker has its database migrated and its channels started; 503 before (and while stopping)."""
    app: App = request.app[APP_KEY]
    if not app.ready:
        return web.json_response({"status": "starting"}, status=503)
    return await healthz(request)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition, for whoever holds PROPDESK_METRICS_TOKEN (as a bearer token); 404 when unset."""
    app: App = request.app[APP_KEY]
    token = app.settings.metrics_token
    if not token:
        raise web.HTTPNotFound()
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return web.json_response({"error": "metrics need the bearer token"}, status=401)
    body = await app.metrics.render(app.sessionmaker, app.clock)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad requests get a clear JSON error; nothing leaks a traceback to the client."""
    if len(request.raw_path) > MAX_PATH:
        return web.json_response({"error": "the address is too long"}, status=414)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except UnicodeDecodeError:
        return web.json_response({"error": "the request is not valid UTF-8"}, status=400)
    except Exception:  # noqa: BLE001
        log.exception("error handling %s %s", request.method, request.path[:200])
        return web.json_response({"error": "internal error"}, status=500)


async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console")


def build_app(app: App, channels: list[Channel] | None = None) -> web.Application:
    webapp = web.Application(middlewares=[*security.middlewares(app.settings), errors_as_json],
                             client_max_size=app.settings.max_upload_bytes + 65536)
    webapp[APP_KEY] = app
    webapp.router.add_get("/healthz", healthz)
    webapp.router.add_get("/readyz", readyz)
    webapp.router.add_get("/metrics", metrics)
    console.setup(webapp, app)  # the staff side: behind a signed-in session
    if app.settings.web_chat_enabled and security.demo_enabled(app.settings):
        owner_chat.setup(webapp, app)  # the demo owner chat: loopback only unless PROPDESK_WEB_DEMO=true
    else:
        webapp.router.add_get("/", to_console)
    for channel in channels or []:
        channel.setup_routes(webapp)
    return webapp
