"""`propdesk run`: migrate (SQLite), seed the demo when asked or empty, serve, schedule the sweeps."""
from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from config.settings import Settings
from models.db import upgrade_url

from bot.app import App
from bot.delivery.outbox_worker import Delivery
from bot.desk.demo_seed import is_empty, seed_demo
from bot.server import build_app
from bot.jobs.sweeps import schedule

log = logging.getLogger("propdesk")


async def prepare(app: App, demo: bool) -> None:
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
    app = App.create(settings)
    await prepare(app, demo)
    channels = build_channels(app)
    runner = web.AppRunner(build_app(app, channels), access_log=logging.getLogger("aiohttp.access")
                           if settings.access_log else None, access_log_class=PathOnlyAccessLog)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
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
    # Migrations run before the loop starts (Alembic's env may start a loop of its own). For PostgreSQL,
    # deployments run `propdesk db upgrade` themselves; run applies them on start for SQLite as the default.
    if settings.database_url.startswith("sqlite"):
        upgrade_url(settings.database_url)
    asyncio.run(serve(settings, demo))
    return 0
