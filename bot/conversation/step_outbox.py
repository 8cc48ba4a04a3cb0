"""Outgoing messages queued inside a conversation step's own transaction (e.g. the part of a WeChat answer that
does not fit in the passive reply), as one multi-row insert on the step's connection."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from models import OutboxMessage
from models.step_transactions import StepTx

_OUTBOX = insert(OutboxMessage)  # built once: the step runs it as compiled the first time


async def queue_in_step(tx: StepTx, channel: str, chat_id: str, texts: list[str], now: datetime) -> None:
    await tx.execute(_OUTBOX, [
        {"channel": channel, "chat_id": chat_id, "payload": {"text": text}, "created_at": now, "kind": "message",
         "priority": 0, "status": "pending", "attempts": 0, "last_error": "", "next_attempt_at": None,
         "ticket_id": None, "sent_at": None}
        for text in texts])
