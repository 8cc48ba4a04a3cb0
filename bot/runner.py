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
import tempfile
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy import make_url

from config.settings import Settings
from models.db import upgrade_url

from bot.app import App
from bot.delivery.outbox_worker import Channel, Delivery
from bot.channels.web.security import demo_enabled
from bot.desk.demo_seed import is_empty, seed_demo, seed_demo_logins, seed_history
from bot.server import build_app
from bot.jobs.sweeps import schedule

log = logging.getLogger("propdesk")


STARTUP_LOCK = 0x70726F70  # "prop": PostgreSQL advisory lock key for start-up work
STARTUP_FAILED = 3  # a worker's exit status when it cannot start


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
    """Check the schema and the upload folder, then seed the demo when asked or empty. Workers started together
    take turns (an advisory lock on PostgreSQL; SQLite's write lock does the same), so the first seeds and the
    others find it done."""
    await check_schema(app)
    folder = Path(app.settings.upload_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StartupError(f"the upload folder {folder} cannot be written ({_why(exc)})") from exc
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
        lines += [f"  {role:<10} {name:<28} phone {phone}  password {password}"
                  for role, name, phone, password in logins]
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


class PathOnlyAccessLog(AbstractAccessLogger):
    """The access log without query strings or referrers: they carry signatures (WeChat), staff-page link keys and
    tokens, which must never reach a log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %s %.3fs", request.remote, request.method, request.path[:300], response.status,
                         time)


def build_channels(app: App) -> list[Channel]:
    """Every messenger channel whose settings are present (the web chat is part of the server)."""
    channels: list[Channel] = []
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


def build_delivery(app: App, channels: list[Channel]) -> Delivery:
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


async def serve(settings: Settings, demo: bool = False, stop: asyncio.Event | None = None,
                reuse_port: bool = False) -> None:
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
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=reuse_port or None)
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
    """Serve until stopped; 0. A start-up failure (database unreachable or not migrated, a folder missing or
    read-only, the port taken, a bad setting) is one line on stderr and exit status 2, not a traceback."""
    try:
        # Migrations run before the loop starts (Alembic's env may start a loop of its own). For PostgreSQL,
        # deployments run `propdesk db upgrade` themselves; run applies them on start for SQLite as the default.
        if workers > 1 and settings.database_url.startswith("sqlite"):
            raise StartupError("--workers above 1 needs PostgreSQL (SQLite has one writer; use one worker)")
        if settings.database_url.startswith("sqlite"):
            path = make_url(settings.database_url).database
            if path and path != ":memory:" and not path.startswith("file:") and not Path(path).parent.is_dir():
                raise StartupError(f"the folder of the SQLite database {path} does not exist")
            try:
                upgrade_url(settings.database_url)
            except Exception as exc:  # noqa: BLE001
                raise StartupError(f"the SQLite database {path} cannot be opened or migrated ({_why(exc)})") from exc
        if workers > 1:
            return supervise(demo, workers)
        asyncio.run(serve(settings, demo))
    except StartupError as exc:
        print(f"propdesk: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def _worker(demo: bool) -> None:
    """One worker process: the settings come from the same environment and files as the parent's."""
    from config.log_format import setup_logging
    from config.settings import get_settings

    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings, demo, reuse_port=True))
    except StartupError as exc:
        print(f"propdesk: cannot start: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILED)


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
        if any(p.exitcode == STARTUP_FAILED for p in procs):  # the same failure would follow every restart
            stop_all(signal.SIGTERM, None)
            for p in procs:
                p.join(timeout=30)
            return 2
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
