"""An in-process delivery outlet (the part of a channel the outbox worker sends through), for the worker's tests."""
from __future__ import annotations

import asyncio

from bot.delivery.outbox_worker import DeliveryError


class Outlet:
    """An in-process outlet that records what it was asked to send and fails on demand."""

    channel = "chat"

    def __init__(self):
        self.sent: list[tuple[str, str]] = []
        self.cards: dict[str, str] = {}
        self.failures: list[DeliveryError] = []
        self.latency = 0.0  # seconds a send takes, as over a network (two workers' sends then overlap)

    async def _maybe_fail(self) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)  # not a wait for anything: the time a send takes
        if self.failures:
            raise self.failures.pop(0)

    async def send(self, chat_id: str, payload: dict, reply_to: str | None = None) -> str:
        await self._maybe_fail()
        self.sent.append((chat_id, payload.get("text", "")))
        return str(len(self.sent))

    async def put_card(self, chat_id: str, card, message_id: str | None) -> str:  # noqa: ANN001
        await self._maybe_fail()
        self.sent.append((chat_id, f"card {card.number} {'edit' if message_id else 'new'}"))
        message_id = message_id or f"m{len(self.cards) + 1}"
        self.cards[message_id] = card.text
        return message_id
