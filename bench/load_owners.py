"""Many owners at once through the web chat, every ticket's card to a Telegram staff group (the fake Bot API).

    .venv/bin/python bench/load_owners.py [--owners 500] [--seconds 60] [--database-url postgresql+asyncpg://...]

Each simulated owner starts a web-chat session and, until the time is up, reports repairs in a public area step by
step (describe, confirm, public area, estate, place, no photo, visit time, phone, submit) with a short pause
between messages; now and then one reports an emergency instead (a ticket at once). Propdesk runs in this process
with its real server, engine, delivery worker and python-telegram-bot stack; the Bot API is the loopback fake with
no flood limit (what is measured is propdesk, not Telegram's 20 a minute). Reported: tickets created (in the
database), confirmed (a number in the owner's answer), delivered (cards posted to the group), the drain time
(from the end of the load until no message waits in the outbox), lost (created but never delivered, or confirmed
but not in the database) and duplicated (a ticket posted as a new card more than once), and the answer latency.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.common import fresh_database  # noqa: E402
from bot.app import App  # noqa: E402
from bot.channels.telegram.channel import TelegramChannel  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.desk.demo_seed import seed_demo  # noqa: E402
from bot.runner import build_delivery  # noqa: E402
from bot.server import build_app  # noqa: E402
from config.settings import Settings  # noqa: E402
from models import OutboxMessage, Ticket  # noqa: E402
from tests.fakes import telegram_api as tg  # noqa: E402
from tests.fakes.loopback import serve  # noqa: E402

GROUP = -1009
NUMBER = re.compile(r"(?:BX|TS)-\d{8}-\d{4,}")


class Owner:
    def __init__(self, http: aiohttp.ClientSession, base: str, rng: random.Random):
        self.http, self.base, self.rng = http, base, rng
        self.user = ""
        self.latencies: list[float] = []
        self.confirmed: list[str] = []
        self.errors = 0
        self.refused = 0

    async def post(self, path: str, body: dict) -> dict:
        started = time.perf_counter()
        async with self.http.post(self.base + path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                self.errors += 1
        self.latencies.append(time.perf_counter() - started)
        await asyncio.sleep(self.rng.uniform(0.3, 1.5))  # the owner reads and types
        return data

    async def say(self, **body) -> dict:  # noqa: ANN003
        return await self.post("/api/web/send", {"user": self.user, **body})

    @staticmethod
    def choices(reply: dict) -> list[str]:
        return [c["id"] for r in reply.get("replies", []) for c in r.get("choices", [])]

    def took(self, reply: dict) -> None:
        said = "".join(r.get("text", "") for r in reply.get("replies", []))
        self.refused += "太频繁" in said
        found = NUMBER.search(said)
        if found:
            self.confirmed.append(found.group(0))

    async def repair(self) -> None:
        await self.say(text="楼道的灯不亮了，晚上很黑")
        await self.say(choice="ok")
        out = await self.say(choice="public")
        estate = next((c for c in self.choices(out) if c.startswith("estate:")), None)
        if estate is None:
            await self.say(text="/cancel")
            return
        await self.say(choice=estate)
        await self.say(text=f"{self.rng.randint(1, 9)}栋{self.rng.randint(1, 3)}单元楼道")
        await self.say(choice="done")
        await self.say(choice="vt:tomorrow_am")
        await self.say(text="13912345678")
        self.took(await self.say(choice="submit"))

    async def run(self, until: float) -> None:
        self.user = (await self.post("/api/web/session", {}))["user"]
        while time.monotonic() < until:
            if self.rng.random() < 0.1:
                self.took(await self.say(text="电梯困人了，快来"))
                await self.say(text="/cancel")
            else:
                await self.repair()


async def main(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="propdesk-load-"))
    url = await fresh_database(workdir, args.database_url)
    fake = await tg.FakeBotAPI().start()
    settings = Settings(database_url=url, upload_dir=str(workdir / "up"), telegram_token=fake.token,
                        telegram_api_base_url=fake.url, telegram_overall_per_second=0,
                        telegram_group_limit=1_000_000, telegram_group_period_seconds=1,
                        staff_groups={"repairs": {"channel": "telegram", "chat_id": str(GROUP)}},
                        # the load is many owners, each at a human pace: the channel cap is not what is measured
                        ticket_channel_per_minute=1_000_000)
    app = App.create(settings, clock=Clock())
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s)
    channel = TelegramChannel(app)
    runner, base = await serve(build_app(app, [channel]))
    await channel.start()
    stop = asyncio.Event()
    delivery = asyncio.create_task(build_delivery(app, [channel]).run_forever(stop, interval=0.2))
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=args.owners)
    async with aiohttp.ClientSession(connector=connector) as http:
        owners = [Owner(http, base, random.Random(rng.random())) for _ in range(args.owners)]
        started = time.monotonic()
        await asyncio.gather(*(o.run(started + args.seconds) for o in owners))
        load_end = time.monotonic()
    # Drain: until nothing waits in the outbox.
    while True:
        async with app.sessionmaker() as s:
            pending = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status == "pending"))
        if not pending or time.monotonic() - load_end > 300:
            break
        await asyncio.sleep(0.1)
    drain = time.monotonic() - load_end
    async with app.sessionmaker() as s:
        numbers = set((await s.scalars(select(Ticket.number))).all())
        failed = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.status == "failed"))
    posts = Counter(NUMBER.search(p["text"]).group(0) for p in fake.of("sendMessage", GROUP)
                    if NUMBER.search(p.get("text", "")) and p.get("reply_markup"))
    confirmed = [n for o in owners for n in o.confirmed]
    latencies = sorted(x for o in owners for x in o.latencies)
    stop.set()
    await delivery
    await channel.stop()
    await runner.cleanup()
    await app.close()
    await fake.stop()
    return {
        "database": "postgresql" if args.database_url else "sqlite", "owners": args.owners,
        "seconds": args.seconds, "requests": len(latencies),
        "http_errors": sum(o.errors for o in owners),
        "created": len(numbers), "confirmed": len(set(confirmed)), "delivered": len(posts),
        "lost": len(numbers - set(posts)) + len(set(confirmed) - numbers),
        "duplicated": sum(1 for n in posts.values() if n > 1),
        # an emergency over the owner's rate limit joins their open emergency: the same number again, by design
        "confirmed_again": len(confirmed) - len(set(confirmed)),
        "refused_by_rate_limit": sum(o.refused for o in owners),
        "failed_outbox_rows": failed, "drain_seconds": round(drain, 2),
        "answer_p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "answer_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--owners", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--database-url", default=None)
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
