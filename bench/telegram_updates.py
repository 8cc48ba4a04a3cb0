"""Owner updates through propdesk's Telegram webhook, side by side with a bare python-telegram-bot echo bot.

    .venv/bin/python bench/telegram_updates.py [--updates 2000] [--owners 50]

Both bots run the real PTB stack in this process, fed by an aiohttp webhook route on loopback, and answer through
the same fake Bot API server (tests/fakes/telegram_api.py), which runs with the simulated owners in a child process
(as Telegram's servers are elsewhere): once with no flood limit (as against a self-hosted Bot API server),
once with both keeping Telegram's 30 messages a second (PTB's AIORateLimiter). Each simulated owner sends a message, waits for the bot's first
answer, then sends the next (closed loop, `--owners` at a time). propdesk's owners walk a real conversation:
menu, a repair description (classified, flow state saved), cancel, my tickets. Latency is from the webhook POST
to the moment the fake Bot API receives the first answer.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Update  # noqa: E402
from telegram.ext import AIORateLimiter, Application, MessageHandler, filters  # noqa: E402

from bench.common import fresh_database, start_propdesk  # noqa: E402
from bot.channels.telegram.channel import TelegramChannel  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.fakes import telegram_api as tg  # noqa: E402
from tests.fakes.loopback import serve  # noqa: E402

SECRET = "bench-secret"
SCRIPT = ["/start", "厨房水龙头一直滴水", "取消", "我的工单", "菜单"]


class SignallingFake(tg.FakeBotAPI):
    """The fake Bot API, telling the load generator when a chat got an answer."""

    def __init__(self):
        super().__init__()
        self.waiters: dict[int, asyncio.Future] = {}

    def _message(self, params: dict, **content) -> dict:
        msg = super()._message(params, **content)
        waiter = self.waiters.pop(int(params["chat_id"]), None)
        if waiter and not waiter.done():
            waiter.set_result(time.perf_counter())
        return msg



async def drive(fake: SignallingFake, url: str, path: str, updates: int, owners: int) -> dict:
    """Closed-loop owners posting to the bot's webhook at url+path; latency until the fake receives the answer."""
    latencies: list[float] = []
    per_owner = updates // owners
    counter = iter(range(1, 10**9))

    async def owner(n: int, http: aiohttp.ClientSession) -> None:
        uid = 100000 + n
        who = tg.user(uid, f"Owner{n}")
        for i in range(per_owner):
            body = {"update_id": next(counter), **tg.text(uid, who, SCRIPT[i % len(SCRIPT)])}
            done = asyncio.get_running_loop().create_future()
            fake.waiters[uid] = done
            start = time.perf_counter()
            async with http.post(url + path, json=body,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200, resp.status
            answered = await asyncio.wait_for(done, timeout=30)
            latencies.append(answered - start)
            # Let the bot finish the rest of this answer (several messages) before the next message.
            await asyncio.sleep(0)

    async with aiohttp.ClientSession() as http:
        began = time.perf_counter()
        await asyncio.gather(*(owner(n, http) for n in range(owners)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {"updates": len(latencies), "seconds": round(elapsed, 2),
            "updates_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)}


async def echo_bot(fake_url: str, token: str, limited: bool) -> tuple[web.AppRunner, str, Application]:
    builder = (Application.builder().token(token).base_url(f"{fake_url}/bot")
               .base_file_url(f"{fake_url}/file/bot").updater(None))
    if limited:
        builder = builder.rate_limiter(AIORateLimiter())
    ptb = builder.build()

    async def echo(update: Update, context) -> None:  # noqa: ANN001
        await context.bot.send_message(update.effective_chat.id, update.effective_message.text)

    ptb.add_handler(MessageHandler(filters.TEXT, echo))

    async def hook(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != SECRET:
            return web.Response(status=403)
        await ptb.update_queue.put(Update.de_json(await request.json(), ptb.bot))
        return web.Response()

    webapp = web.Application()
    webapp.router.add_post("/hook", hook)
    runner, url = await serve(webapp)
    await ptb.initialize()
    await ptb.start()

    async def stop() -> None:
        await ptb.stop()
        await ptb.shutdown()
        await runner.cleanup()

    return stop, url + "/hook"


async def propdesk_bot(fake_url: str, token: str, limited: bool, workdir: Path, database_url: str | None):  # noqa: ANN201
    settings = Settings(database_url=await fresh_database(workdir, database_url), telegram_token=token,
                        telegram_api_base_url=fake_url, telegram_webhook_url="https://desk.example.com/telegram/webhook",
                        telegram_webhook_secret=SECRET, upload_dir=str(workdir / "uploads"),
                        telegram_overall_per_second=30 if limited else 0)
    stop, base = await start_propdesk(settings, TelegramChannel)
    return stop, base + settings.telegram_webhook_path


async def driver(updates: int, owners: int) -> None:
    """The child process: the fake Bot API and the simulated owners, on their own core."""
    fake = await SignallingFake().start()
    fake.calls = _Discard()
    print(json.dumps({"fake_url": fake.url, "token": fake.token}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        result = await drive(fake, json.loads(line)["url"], "", updates, owners)
        print(json.dumps(result), flush=True)
    await fake.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--owners", type=int, default=50)
    parser.add_argument("--database-url", help="a PostgreSQL URL to run propdesk on (its schema is dropped and "
                        "recreated!); SQLite in a temporary folder by default")
    parser.add_argument("--only", choices=["no_flood_limit", "telegram_flood_limits"],
                        help="run one of the two scenarios")
    parser.add_argument("--propdesk-only", action="store_true", help="skip the echo bot (e.g. under a profiler)")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.driver:
        await driver(args.updates, args.owners)
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable, os.environ.get("BENCH_DRIVER", __file__), "--driver", "--updates", str(args.updates), "--owners", str(args.owners),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    fake = json.loads(await child.stdout.readline())

    async def measure(bot) -> dict:  # noqa: ANN001
        stop, url = bot
        child.stdin.write((json.dumps({"url": url}) + "\n").encode())
        await child.stdin.drain()
        result = json.loads(await child.stdout.readline())
        await stop()
        return result

    report = {}
    # Without flood limits (a self-hosted Bot API server), then both under Telegram's 30 messages/s.
    for name, limited in (("no_flood_limit", False), ("telegram_flood_limits", True)):
        if args.only and name != args.only:
            continue
        echo = None if args.propdesk_only else await measure(await echo_bot(fake["fake_url"], fake["token"], limited))
        with tempfile.TemporaryDirectory() as tmp:
            desk = await measure(await propdesk_bot(fake["fake_url"], fake["token"], limited, Path(tmp),
                                                    args.database_url))
        report[name] = {"echo_bot": echo, "propdesk": desk}
        if echo:
            report[name]["propdesk_vs_echo"] = round(desk["updates_per_s"] / echo["updates_per_s"], 2)
    child.stdin.close()
    await child.wait()
    print(json.dumps(report, ensure_ascii=False, indent=1))


class _Discard(list):
    """A call log that keeps nothing: the benchmark does not need it, and a long run should not grow."""

    def append(self, item) -> None:  # noqa: ANN001
        pass


if __name__ == "__main__":
    asyncio.run(main())
