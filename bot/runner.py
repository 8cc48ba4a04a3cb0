"""`propdesk run`: migrate (SQLite), seed the demo when asked or empty, serve, schedule the sweeps."""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import tempfile
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import make_url

from config.settings import Settings
from models.db import upgrade_url

from bot.app import App
from bot.delivery.outbox_worker import Delivery
from bot.desk.demo_seed import is_empty, seed_demo
from bot.server import build_app
from bot.jobs.sweeps import schedule

log = logging.getLogger("propdesk")


class StartupError(Exception):
    """Propdesk cannot start: one line that says why and what to do."""


def _why(exc: BaseException) -> str:
    """An exception as one line, without the SQL or parameters a driver may append."""
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    return f"{type(getattr(exc, 'orig', None) or exc).__name__}: {first[:300]}"


async def check_schema(app: App) -> None:
    """The database is reachable and at the latest migration; StartupError otherwise."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from models.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    where = app.db.url.render_as_string(hide_password=True)
    try:
        async with app.db.connect() as conn:
            current = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, no such database, bad credentials
        raise StartupError(f"the database at {where} cannot be reached ({_why(exc)})") from exc
    if current != head:
        raise StartupError(f"the database at {where} is at schema {current or 'none'}, not {head}: "
                           "run `propdesk db upgrade`")


async def prepare(app: App, demo: bool) -> None:
    await check_schema(app)
    folder = Path(app.settings.upload_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StartupError(f"the upload folder {folder} cannot be written ({_why(exc)})") from exc
    async with app.sessionmaker() as s, s.begin():
        if (demo or app.settings.seed_demo_on_empty) and await is_empty(s):
            await seed_demo(s, today=app.clock.local().date())
            log.info("seeded the demo estates, owners, staff and bills")


class PathOnlyAccessLog(AbstractAccessLogger):
    """The access log without query strings or referrers: they carry signatures (WeChat), staff-page link keys and
    tokens, which must never reach a log."""

    def log(self, request, response, time: float) -> None:  # noqa: ANN001
        self.logger.info("%s %s %s %s %.3fs", request.remote, request.method, request.path[:300], response.status,
                         time)


def build_channels(app: App) -> list:
    """Every messenger channel whose settings are present (the web chat is part of the server)."""
    channels = []
    if app.settings.telegram_token:
        from bot.channels.telegram.channel import TelegramChannel

        channels.append(TelegramChannel(app))
    s = app.settings
    if any(group.channel == "wecom" for group in s.staff_groups.values()):
        from bot.channels.wecom.robots import WeComChannel

        channels.append(WeComChannel(app))
    if s.wechat_token and s.wechat_app_id and s.wechat_app_secret:
        from bot.channels.wechat.channel import WeChatChannel

        channels.append(WeChatChannel(app))
    return channels


def build_delivery(app: App, channels: list) -> Delivery:
    s = app.settings
    fallback = s.delivery_fallback_group
    if fallback and fallback not in s.staff_groups:
        raise ValueError(f"the delivery fallback group {fallback!r} is not a configured staff group")
    app.delivery = Delivery(app.sessionmaker, app.clock, {c.channel: c for c in channels}, staff_lang=s.staff_lang,
                            late_after_attempts=s.delivery_max_attempts, backoff_seconds=s.delivery_backoff_seconds,
                            max_backoff_seconds=s.delivery_max_backoff_seconds, give_up_hours=s.delivery_give_up_hours,
                            fallback=(fallback, s.staff_groups[fallback]) if fallback in s.staff_groups else None,
                            fallback_after_minutes=s.delivery_fallback_after_minutes)
    return app.delivery


def freeze_startup_objects() -> None:
    """What start-up built (modules, the app, the channels) lives as long as the process: move it out of the
    collector's sight, so a full collection scans only what requests left behind. Unfrozen, one full collection
    took 90 ms in bench/wechat_callbacks.py, the whole of that run's p99."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, demo: bool = False, stop: asyncio.Event | None = None) -> None:
    try:
        app = App.create(settings)
    except Exception as exc:  # noqa: BLE001 - a malformed URL, an unknown driver, a bad routing rule
        raise StartupError(f"the settings are not usable ({_why(exc)})") from exc
    try:
        await prepare(app, demo)
        channels = build_channels(app)
    except StartupError:
        await app.close()
        raise
    except Exception as exc:  # noqa: BLE001
        await app.close()
        raise StartupError(f"start-up failed ({_why(exc)})") from exc
    runner = web.AppRunner(build_app(app, channels), access_log=logging.getLogger("aiohttp.access")
                           if settings.access_log else None, access_log_class=PathOnlyAccessLog)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await app.close()
        raise StartupError(f"cannot listen on {settings.http_host}:{settings.http_port} ({_why(exc)})") from exc
    for channel in channels:
        await channel.start()
    freeze_startup_objects()
    stop = stop or asyncio.Event()
    delivery_task = asyncio.create_task(build_delivery(app, channels).run_forever(stop))
    scheduler = AsyncIOScheduler()
    schedule(app, scheduler)
    scheduler.start()
    log.info("propdesk is up: web chat on http://%s:%s/", settings.http_host, settings.http_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        stop.set()
        scheduler.shutdown(wait=False)
        await delivery_task
        for channel in channels:
            await channel.stop()
        await runner.cleanup()
        await app.close()


def run(settings: Settings, demo: bool = False) -> int:
    """Serve until stopped; 0. A start-up failure (database unreachable or not migrated, a folder missing or
    read-only, the port taken, a bad setting) is one line on stderr and exit status 2, not a traceback."""
    try:
        # Migrations run before the loop starts (Alembic's env may start a loop of its own). For PostgreSQL,
        # deployments run `propdesk db upgrade` themselves; run applies them on start for SQLite as the default.
        if settings.database_url.startswith("sqlite"):
            path = make_url(settings.database_url).database
            if path and path != ":memory:" and not path.startswith("file:") and not Path(path).parent.is_dir():
                raise StartupError(f"the folder of the SQLite database {path} does not exist")
            try:
                upgrade_url(settings.database_url)
            except Exception as exc:  # noqa: BLE001
                raise StartupError(f"the SQLite database {path} cannot be opened or migrated ({_why(exc)})") from exc
        asyncio.run(serve(settings, demo))
    except StartupError as exc:
        print(f"propdesk: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0
