"""`propdesk run`: migrate (SQLite), seed the demo when asked or empty, serve, schedule the sweeps."""
from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import wait

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text

from config.settings import Settings
from models.db import upgrade_url

from bot.app import App
from bot.delivery.outbox_worker import Delivery
from bot.channels.web.security import demo_enabled
from bot.desk.demo_seed import is_empty, seed_demo, seed_demo_logins, seed_history
from bot.server import build_app
from bot.jobs.sweeps import schedule

log = logging.getLogger("propdesk")


STARTUP_LOCK = 0x70726F70  # "prop": PostgreSQL advisory lock key for start-up work


async def prepare(app: App, demo: bool) -> None:
    """Seed the demo when asked or empty. Workers started together take turns (an advisory lock on PostgreSQL;
    SQLite's write lock does the same), so the first seeds and the others find it done."""
    logins: list[tuple[str, str, str, str]] = []
    async with app.sessionmaker() as s, s.begin():
        if s.bind.dialect.name == "postgresql":
            await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STARTUP_LOCK})
        if (demo or app.settings.seed_demo_on_empty) and await is_empty(s):
            await seed_demo(s, today=app.clock.local().date())
            quiet = logging.getLogger("propdesk.tickets")
            level, quiet.level = quiet.level, logging.WARNING  # the history's hundreds of tickets are not news
            try:
                tickets = await seed_history(s, app.clock.now())
            finally:
                quiet.setLevel(level)
            logins = await seed_demo_logins(s)
            log.info("seeded the demo estates, owners, staff, bills and %d tickets of history", tickets)
    if logins:
        base = f"http://{app.settings.http_host}:{app.settings.http_port}"
        lines = [f"Demo staff console: {base}/console — sign in with (shown once, change them for real use):"]
        lines += [f"  {role:<10} {name:<28} phone {phone}  password {password}" for role, name, phone, password in logins]
        print("\n".join(lines), flush=True)


def startup_notes(settings: Settings) -> list[str]:
    """What `propdesk run` says at start about the web chat's demo and the staff console."""
    notes = [f"staff console on http://{settings.http_host}:{settings.http_port}/console (staff sign in)"]
    if not settings.web_chat_enabled:
        notes.append("the owner web chat is off (PROPDESK_WEB_CHAT_ENABLED=false)")
    elif demo_enabled(settings):
        notes.append(f"owner web chat demo (talk as any roster owner) on http://{settings.http_host}:"
                     f"{settings.http_port}/ — for trying propdesk only")
    else:
        notes.append(f"the owner web chat demo is off: listening on {settings.http_host}, not loopback "
                     "(set PROPDESK_WEB_DEMO=true to enable it there)")
    return notes


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
    app.delivery = Delivery(app.sessionmaker, app.clock, {c.channel: c for c in channels}, staff_lang=s.staff_lang,
                            max_attempts=s.delivery_max_attempts, backoff_seconds=s.delivery_backoff_seconds)
    return app.delivery


def freeze_startup_objects() -> None:
    """What start-up built (modules, the app, the channels) lives as long as the process: move it out of the
    collector's sight, so a full collection scans only what requests left behind. Unfrozen, one full collection
    took 90 ms in bench/wechat_callbacks.py, the whole of that run's p99."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, demo: bool = False, stop: asyncio.Event | None = None,
                reuse_port: bool = False) -> None:
    app = App.create(settings)
    await prepare(app, demo)
    channels = build_channels(app)
    runner = web.AppRunner(build_app(app, channels), access_log=logging.getLogger("aiohttp.access")
                           if settings.access_log else None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=reuse_port or None)
    await site.start()
    for channel in channels:
        await channel.start()
    freeze_startup_objects()
    stop = stop or asyncio.Event()
    delivery_task = asyncio.create_task(build_delivery(app, channels).run_forever(stop))
    scheduler = AsyncIOScheduler()
    schedule(app, scheduler)
    scheduler.start()
    app.ready = True
    log.info("propdesk is up on http://%s:%s/", settings.http_host, settings.http_port)
    for note in startup_notes(settings):
        log.info(note)
        print(note, flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        app.ready = False  # a load balancer stops sending work here while this worker finishes what it has
        stop.set()
        scheduler.shutdown(wait=False)
        await delivery_task
        for channel in channels:
            await channel.stop()
        await runner.cleanup()
        await app.close()


def run(settings: Settings, demo: bool = False, workers: int = 1) -> int:
    # Migrations run before the loop starts (Alembic's env may start a loop of its own). For PostgreSQL,
    # deployments run `propdesk db upgrade` themselves; run applies them on start for SQLite as the default.
    if workers > 1 and settings.database_url.startswith("sqlite"):
        print("propdesk: --workers above 1 needs PostgreSQL (SQLite has one writer; use one worker)",
              file=sys.stderr)
        return 2
    if settings.database_url.startswith("sqlite"):
        upgrade_url(settings.database_url)
    if workers <= 1:
        asyncio.run(serve(settings, demo))
        return 0
    return supervise(demo, workers)


def _worker(demo: bool) -> None:
    """One worker process: the settings come from the same environment and files as the parent's."""
    from config.log_format import setup_logging
    from config.settings import get_settings

    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, demo, reuse_port=True))


def supervise(demo: bool, workers: int, restart_after: float = 1.0) -> int:
    """N worker processes sharing the HTTP port (SO_REUSEPORT: the kernel spreads connections over them); a worker
    that dies is started again; SIGTERM or Ctrl-C stops them all, each finishing what it has in hand."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(demo,), name=f"propdesk-worker-{i}") for i in range(workers)]
    stopping = False

    def stop_all(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for p in procs:
        p.start()
    log.info("started %d workers", workers)
    while True:
        wait([p.sentinel for p in procs], timeout=1.0)
        if stopping:
            break
        for i, p in enumerate(procs):
            if p.exitcode is not None:
                log.warning("worker %s exited with %s: starting it again", p.name, p.exitcode)
                time.sleep(restart_after)
                procs[i] = ctx.Process(target=_worker, args=(demo,), name=p.name)
                procs[i].start()
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    return 0
