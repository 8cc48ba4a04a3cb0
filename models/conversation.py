"""Conversation state per (channel, chat), and the outbox of messages waiting to be delivered."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Conversation(Base):
    __tablename__ = "conversations"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    flow: Mapped[str] = mapped_column(String(32), default="menu")
    state: Mapped[str] = mapped_column(String(32), default="idle")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    lang: Mapped[str | None] = mapped_column(String(8), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OutboxMessage(Base):
    """A message to an owner or a staff group, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_channel_chat", "channel", "chat_id", "id"),
                      Index("ix_outbox_due", "status", "next_attempt_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(128))
    # "message": a text (with choices or a photo) as given; "card": the ticket's staff card, rendered at send time
    # from the ticket's current state (so queued updates of one card collapse into one edit).
    kind: Mapped[str] = mapped_column(String(16), default="message")
    # Within one chat, higher first (an emergency card jumps a group's backlog); equal ones in order of id.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Not before this time: a retry's backoff, or a worker's lease while it sends.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)

    @classmethod
    def new(cls, channel: str, chat_id: str, payload: dict, *, at: datetime, kind: str = "message",
            ticket_id: int | None = None, priority: int = 0, not_before: datetime | None = None) -> "OutboxMessage":
        """The one way an outgoing message is made: to (channel, chat), what to say, when it was queued, and the
        earliest time it may go (None: at once)."""
        return cls(channel=channel, chat_id=chat_id, payload=payload, created_at=at, kind=kind, ticket_id=ticket_id,
                   priority=priority, next_attempt_at=not_before)
