"""What the flows need from the rest of propdesk, as a Protocol: flows stay free of storage and platforms."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol


@dataclass
class UnitView:
    id: int
    label: str  # "3-2-1502"
    estate_id: int
    estate_name: str


@dataclass
class EstateView:
    id: int
    name: str


@dataclass
class TicketView:
    """A ticket as its owner sees it. Every time is in the estate's time zone (aware), as the owner reads it."""

    id: int
    number: str
    kind: str
    category: str
    urgency: str
    status: str
    description: str
    location: str
    created_at: datetime
    rating: int | None = None
    timeline: list[tuple[datetime, str, str]] = field(default_factory=list)  # (local time, action, note)
    claim_due: datetime | None = None  # the claim deadline the SLA clock set, local: what the owner is promised


@dataclass
class BillView:
    unit: str
    period: str
    item: str
    amount_due: str
    outstanding: str
    due_date: date
    overdue: bool


@dataclass
class PaymentView:
    unit: str
    item: str
    period: str
    amount: str
    paid_at: datetime  # local time


@dataclass
class NewTicket:
    kind: str
    category: str
    urgency: str
    description: str
    subject: str = ""
    reasons: list[str] = field(default_factory=list)
    estate_id: int | None = None
    unit_id: int | None = None
    location_text: str = ""
    photos: list[str] = field(default_factory=list)
    preferred_time: str = ""
    contact_phone: str = ""
    anonymous: bool = False
    at_reporter_home: bool = False  # filed at the reporter's home because no place was named: marked for staff


class Desk(Protocol):
    """The service desk as the flows see it; bot.desk implements it over the database."""

    def classify(self, text: str) -> dict: ...
    async def estates(self) -> list[EstateView]: ...
    async def estate_of_place(self, place_code: str) -> tuple[int | None, str]: ...
    async def bound_units(self, person_id: int) -> list[UnitView]: ...
    async def pending_bindings(self, person_id: int) -> list[str]: ...
    async def bind_unit(self, person_id: int, estate_id: int | None, unit_label: str, phone: str, name: str = "",
                        relation: str = "") -> str: ...
    async def create_ticket(self, person_id: int, channel: str, ticket: NewTicket) -> TicketView: ...
    async def update_ticket(self, person_id: int, number: str, **fields: Any) -> TicketView | None: ...
    async def my_tickets(self, person_id: int) -> list[TicketView]: ...
    async def ticket(self, person_id: int, number: str) -> TicketView | None: ...
    async def add_info(self, person_id: int, number: str, text: str = "", photo: str = "") -> bool: ...
    async def cancel_ticket(self, person_id: int, number: str) -> bool: ...
    async def hurry_ticket(self, person_id: int, number: str) -> tuple[bool, int]: ...
    async def rate_ticket(self, person_id: int, number: str, stars: int, comment: str) -> bool: ...
    async def not_fixed(self, person_id: int, number: str) -> bool: ...
    async def bills(self, person_id: int) -> tuple[list[BillView], list[PaymentView]]: ...
    async def person_phone(self, person_id: int) -> str: ...
    async def set_language(self, person_id: int, lang: str) -> None: ...
    async def link_staff(self, person_id: int, channel: str, code: str) -> str | None: ...
