"""A burst of tickets into one Telegram staff group whose fake Bot API enforces Telegram's 20 messages a minute.

    .venv/bin/python bench/burst.py [--tickets 1000] [--database-url postgresql+asyncpg://...]

The tickets are created at once (one transaction), propdesk's delivery worker and Telegram channel send them
through the real python-telegram-bot stack; reported: the time until every ticket is in the group (as a card or
in a digest), how many messages that took, and how many 429s the fake had to answer (the goal: none).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database  # noqa: E402
from bot.app import App  # noqa: E402
from bot.channels.telegram.channel import TelegramChannel  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.runner import build_delivery  # noqa: E402
from bot.desk.demo_seed import seed_demo  # noqa: E402
from bot.desk.ticket_service import TicketService  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.fakes import telegram_api as tg  # noqa: E402

GROUP = -100777


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--database-url", help="a PostgreSQL URL (its schema is dropped and recreated!)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    fake = await tg.FakeBotAPI(group_limit=20, group_period=60).start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=await fresh_database(Path(tmp), args.database_url),
                            telegram_token=fake.token, telegram_api_base_url=fake.url,
                            staff_groups={"repairs": {"channel": "telegram", "chat_id": str(GROUP)}},
                            upload_dir=str(Path(tmp) / "uploads"))
        app = App.create(settings, clock=Clock())
        async with app.sessionmaker() as s, s.begin():
            await seed_demo(s)
        channel = TelegramChannel(app)
        await channel.start()
        stop = asyncio.Event()
        worker = asyncio.create_task(build_delivery(app, [channel]).run_forever(stop, interval=0.2))
        began = time.perf_counter()
        async with app.sessionmaker() as s, s.begin():
            svc = TicketService(s, app.clock, app.engine.dispatch)
            numbers = [(await svc.create(kind="repair", category="public_facility", urgency="normal", channel="web",
                                         description=f"楼道灯不亮 {i}", reporter_id=None, actor="bench")).number
                       for i in range(args.tickets)]
        created = time.perf_counter() - began
        app.wake_delivery()
        pending = set(numbers)
        while pending and time.perf_counter() - began < 600:
            seen = "\n".join(fake.texts(GROUP))
            pending = {n for n in pending if n not in seen}
            await asyncio.sleep(0.2)
        informed = time.perf_counter() - began
        stop.set()
        await worker
        await channel.stop()
        await app.close()
    await fake.stop()
    print(json.dumps({"tickets": args.tickets, "created_s": round(created, 2),
                      "group_informed_s": round(informed, 2), "missing": len(pending),
                      "messages_to_group": len(fake.texts(GROUP)), "http_429": fake.too_many_requests}))


if __name__ == "__main__":
    asyncio.run(main())
