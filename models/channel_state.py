"""State that channel adapters share across workers: inbound receipts (retry dedupe), API tokens, reply windows."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class InboundReceipt(Base):
    """One platform message as first received (WeChat MsgId, or sender + time for events).

    A retried delivery finds the receipt and gets the original's answer instead of being handled twice.
    """

    __tablename__ = "inbound_receipts"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)  # "wechat:<MsgId>"
    chat_id: Mapped[str] = mapped_column(String(128))
    # ready (written with the conversation step that handled the message, its reply stored) -> queued (the request
    # had been answered `success` before the reply was ready: it went out through the outbox instead)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    reply: Mapped[str] = mapped_column(Text, default="")  # the passive reply as sent, for a retry
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """A platform access token, fetched once and shared by every worker until shortly before it expires."""

    __tablename__ = "api_tokens"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "wechat:<appid>"
    value: Mapped[str] = mapped_column(String(1024))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class ServiceWindow(Base):
    """When a chat last opened a reply window, and how much of it is used (WeChat customer-service quotas)."""

    __tablename__ = "service_windows"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)  # the owner's last message
    message_used: Mapped[int] = mapped_column(Integer, default=0)
    event_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)  # last menu click or follow
    event_used: Mapped[int] = mapped_column(Integer, default=0)


class JobRun(Base):
    """A scheduled job's run (e.g. the daily digest of 2026-11-25): inserted once, so one worker does it."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
