"""WeChat state shared by every worker through the database: message receipts and customer-service windows."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from bot.app import App
from models import InboundReceipt, ServiceWindow

CHANNEL = "wechat"
# What the quota rules allow (WeChat's customer-service message limits): after an owner's message,
# 5 messages within 48 hours; after a menu click or a follow, 3 within a minute.
MESSAGE_WINDOW, MESSAGE_QUOTA = timedelta(hours=48), 5
EVENT_WINDOW, EVENT_QUOTA = timedelta(minutes=1), 3


class Receipts:
    def __init__(self, app: App):
        self.app = app

    async def claim(self, key: str, chat_id: str) -> InboundReceipt | None:
        """Record the first delivery of a message; the existing receipt when this is a retry."""
        now = self.app.clock.now()
        async with self.app.sessionmaker() as s, s.begin():
            insert = postgresql.insert if s.bind.dialect.name == "postgresql" else sqlite.insert
            done = await s.execute(insert(InboundReceipt).values(key=key, chat_id=chat_id, status="processing",
                                                                 reply="", created_at=now, updated_at=now)
                                   .on_conflict_do_nothing())
            if done.rowcount == 1:
                return None
            return await s.get(InboundReceipt, key)

    async def settle(self, key: str, status: str, reply: str) -> None:
        async with self.app.sessionmaker() as s, s.begin():
            receipt = await s.get(InboundReceipt, key)
            receipt.status, receipt.reply, receipt.updated_at = status, reply, self.app.clock.now()

    async def answer_of(self, key: str, wait: float) -> str:
        """For a retry: the original's passive reply once there is one (waiting a little), else "" (success)."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            async with self.app.sessionmaker() as s:
                receipt = await s.get(InboundReceipt, key)
            if receipt.status != "processing" or asyncio.get_running_loop().time() >= deadline:
                return receipt.reply if receipt.status == "answered" else ""
            await asyncio.sleep(0.1)


class Windows:
    def __init__(self, app: App):
        self.app = app

    async def _row(self, s, chat_id: str) -> ServiceWindow:  # noqa: ANN001
        row = await s.scalar(select(ServiceWindow).where(ServiceWindow.channel == CHANNEL,
                                                         ServiceWindow.chat_id == chat_id).with_for_update())
        if row is None:
            row = ServiceWindow(channel=CHANNEL, chat_id=chat_id, message_used=0, event_used=0)
            s.add(row)
        return row

    async def opened(self, chat_id: str, kind: str) -> None:
        """The owner wrote (kind "message") or clicked / followed ("event"): a fresh window and quota."""
        async with self.app.sessionmaker() as s, s.begin():
            row = await self._row(s, chat_id)
            if kind == "message":
                row.message_at, row.message_used = self.app.clock.now(), 0
            else:
                row.event_at, row.event_used = self.app.clock.now(), 0

    async def take(self, chat_id: str, n: int = 1) -> bool:
        """Use n messages of an open window's quota (the shorter event window first); False when none has room."""
        now = self.app.clock.now()
        async with self.app.sessionmaker() as s, s.begin():
            row = await self._row(s, chat_id)
            if row.event_at and now - row.event_at < EVENT_WINDOW and row.event_used + n <= EVENT_QUOTA:
                row.event_used += n
                return True
            if row.message_at and now - row.message_at < MESSAGE_WINDOW and row.message_used + n <= MESSAGE_QUOTA:
                row.message_used += n
                return True
            return False

    async def close(self, chat_id: str) -> None:
        """WeChat refused (45015): whatever we counted, the window is shut until the owner writes again."""
        async with self.app.sessionmaker() as s, s.begin():
            row = await self._row(s, chat_id)
            row.message_used, row.event_used = MESSAGE_QUOTA, EVENT_QUOTA
