"""Owners' chat accounts and homes, as the owner-side pages use them (the local web chat's demo picker and its
message poll). Conversation steps create accounts themselves (bot.conversation.engine); this is the rest.
"""
from __future__ import annotations

from typing import Any

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from models import Binding, Building, Identity, OutboxMessage, Person, Residency, Unit

from bot.clock import Clock


async def set_binding(session: AsyncSession, person_id: int, unit_id: int, phone: str, status: str,
                      now: datetime) -> Binding:
    """Bind a person to a home (or update their request): 'active' when the roster vouches, else 'pending'."""
    binding = await session.scalar(select(Binding).where(Binding.person_id == person_id, Binding.unit_id == unit_id))
    decided = now if status == "active" else None
    if binding is None:
        binding = Binding(person_id=person_id, unit_id=unit_id, status=status, phone=phone, created_at=now,
                          decided_at=decided)
        session.add(binding)
    elif binding.status != "active":
        binding.status, binding.phone, binding.decided_at = status, phone, decided
    return binding


class OwnerAccounts:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock):
        self.sessionmaker = sessionmaker
        self.clock = clock

    async def roster_owners(self, limit: int = 50) -> list[dict[str, Any]]:
        """Owners on the roster with their home, to try the web chat as one of them (demo mode)."""
        async with self.sessionmaker() as s:
            rows = (await s.execute(select(Residency, Person).join(Person, Person.id == Residency.person_id)
                                    .options(selectinload(Residency.unit).selectinload(Unit.building)
                                             .selectinload(Building.estate))
                                    .order_by(Residency.id).limit(limit))).all()
        return [{"person_id": p.id, "name": p.name, "phone": p.phone, "unit": r.unit.label,
                 "estate": r.unit.building.estate.name} for r, p in rows]

    async def attach_roster_owner(self, channel: str, external_id: str, chat_id: str, person_id: int) -> str | None:
        """A new chat account for a roster owner, bound to the homes the roster gives them; their name, or None
        when there is no such person."""
        now = self.clock.now()
        async with self.sessionmaker() as s, s.begin():
            person = await s.get(Person, person_id)
            if person is None:
                return None
            s.add(Identity(channel=channel, external_id=external_id, chat_id=chat_id, person_id=person.id,
                           display_name=person.name, created_at=now))
            for res in (await s.scalars(select(Residency).where(Residency.person_id == person.id))).all():
                await set_binding(s, person.id, res.unit_id, person.phone or "", "active", now)
            return str(person.name)

    async def deactivate(self, channel: str, external_id: str) -> None:
        """An owner left the channel (e.g. unfollowed the official account): the account is marked inactive, nothing
        is deleted; their next message makes it active again."""
        async with self.sessionmaker() as s, s.begin():
            await s.execute(update(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
                            .values(active=False))

    async def take_messages(self, channel: str, chat_id: str, after: int, limit: int = 50) -> list[dict[str, Any]]:
        """Messages queued for a chat that the page fetches itself (the web chat), oldest first, marked sent:
        those after the page's last one, and any held back (quiet hours) that have come due since. A held message
        waits until its time."""
        now = self.clock.now()
        due = or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now)
        async with self.sessionmaker() as s, s.begin():
            rows = (await s.scalars(select(OutboxMessage).where(
                OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id, due,
                or_(OutboxMessage.id > after, OutboxMessage.status == "pending"))
                .order_by(OutboxMessage.id).limit(limit))).all()
            if rows:
                await s.execute(update(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows]),
                                                            OutboxMessage.status == "pending")
                                .values(status="sent", sent_at=now))
        return [{"id": r.id, **r.payload} for r in rows]
