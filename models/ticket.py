"""Tickets (repairs and complaints), their audit trail, attachments and the daily number counters."""
from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.lifecycle import Status

PREFIX = {"repair": "BX", "complaint": "TS"}
# The one definition of a ticket number: BX-20261125-0007. The daily sequence has at least four digits and grows
# past 9,999 (BX-20261125-10000), so every pattern allows more. NUMBER_RE for matching a whole number (route
# patterns take NUMBER_RE too: it has no capturing group), NUMBER_PATTERN for finding one inside a text.
NUMBER_RE = r"(?:BX|TS)-\d{8}-\d{4,7}"
NUMBER_PATTERN = rf"\b{NUMBER_RE}\b"


def format_number(prefix: str, day: date, seq: int) -> str:
    """The ticket number for the `seq`th ticket of `prefix` on `day`."""
    return f"{prefix}-{day:%Y%m%d}-{seq:04d}"


def is_number(text: str) -> bool:
    return re.fullmatch(NUMBER_RE, text) is not None


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_estate_status", "estate_id", "status"),
                      Index("ix_tickets_created_at", "created_at"),
                      # the staff console's keyset pages and look-ups (migration 0007; trigram indexes on PG)
                      Index("ix_tickets_estate_id_id", "estate_id", "id"),
                      Index("ix_tickets_estate_status_id", "estate_id", "status", "id"),
                      Index("ix_tickets_assignee_id", "assignee_id", "id"),
                      Index("ix_tickets_contact_phone", "contact_phone"),
                      Index("ix_tickets_unit_id", "unit_id"),
                      # the creation rate limits: one reporter's, one channel's recent tickets
                      Index("ix_tickets_reporter_created", "reporter_id", "created_at"),
                      Index("ix_tickets_channel_created", "channel", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # repair | complaint
    category: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=Status.NEW, index=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    classifier_reasons: Mapped[list] = mapped_column(JSON, default=list)
    estate_id: Mapped[int | None] = mapped_column(ForeignKey("estates.id"), default=None)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), default=None)
    location_text: Mapped[str] = mapped_column(String(300), default="")  # public area or free text
    preferred_time: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)  # complaints: hide the complainant
    channel: Mapped[str] = mapped_column(String(16))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True, default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), default=None)
    reject_reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    claim_due_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    arrive_due_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)  # repairs: on site by then
    resolve_due_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # When the SLA sweep next looks at this ticket (a reminder, an escalation, the return visit's end);
    # None when nothing is pending. The sweep claims due rows with FOR UPDATE SKIP LOCKED.
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime, default=None, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    held_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)  # on_hold pauses the clock
    # An open ticket of the same category at the same unit or public spot, reported shortly before: shown to staff.
    possible_duplicate_of: Mapped[str | None] = mapped_column(String(32), default=None)
    last_hurry_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    hurry_count: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    rating_comment: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list["TicketEvent"]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all")
    attachments: Mapped[list["Attachment"]] = relationship(order_by="Attachment.id", cascade="all")


class TicketEvent(Base):
    """Append-only audit trail: who changed what, when."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)  # ix_ticket_events_at
    actor: Mapped[str] = mapped_column(String(100))  # "owner:12", "staff:3", "system"
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16), default=None)
    to_status: Mapped[str | None] = mapped_column(String(16), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    ticket: Mapped[Ticket] = relationship(back_populates="events")


class Attachment(Base):
    """A photo kept by channel reference (Telegram file_id, WeChat media id, a web upload path)."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TicketCounter(Base):
    """The last daily sequence per prefix; bumped with one atomic upsert."""

    __tablename__ = "ticket_counters"
    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class PostedCard(Base):
    """A ticket's card in one staff group: edited in place as the ticket changes, one per ticket per group."""

    __tablename__ = "ticket_cards"
    __table_args__ = (UniqueConstraint("ticket_id", "channel", "chat_id"),
                      Index("ix_ticket_cards_message", "channel", "chat_id", "message_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    group: Mapped[str] = mapped_column(String(64))  # the staff group's name in config
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(64), default=None)  # set once the card is posted
    # Set before a first post is attempted and cleared when its message id is kept: a worker that finds it set
    # knows a post may have gone out (its sender died or is still waiting for the answer) and does not post again
    # blindly.
    posting_since: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    # The group this card stands in for: it went to the on-duty fallback group because that one was unreachable.
    fallback_from: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TicketFollower(Base):
    """Someone besides the reporter who hears about a ticket: the owner of a duplicate merged into it."""

    __tablename__ = "ticket_followers"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)


class RequestNonce(Base):
    """A signed platform request's nonce (WeChat callbacks), kept for the freshness window so that every worker
    refuses a replayed signature set. `digest` is the body's hash: the same request again (WeChat's own retry)
    is let through to the receipts, which answer it as before; the same nonce with another body is a replay."""

    __tablename__ = "request_nonces"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)  # "<channel>:<timestamp>:<nonce>"
    digest: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTime, index=True)
