"""Staff decisions on binding requests that did not match the roster."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from config.i18n import t
from models import Binding, Building, Identity, OutboxMessage, Person, Unit

from bot.clock import Clock


async def pending(session: AsyncSession) -> list[dict]:
    rows = (await session.execute(
        select(Binding, Person).join(Person, Person.id == Binding.person_id).where(Binding.status == "pending")
        .options(selectinload(Binding.unit).selectinload(Unit.building).selectinload(Building.estate))
        .order_by(Binding.id))).all()
    return [{"id": b.id, "person": p.name, "phone": b.phone, "unit": b.unit.label,
             "estate": b.unit.building.estate.name, "created_at": b.created_at.isoformat() + "Z"} for b, p in rows]


async def decide(session: AsyncSession, clock: Clock, binding_id: int, approve: bool) -> Binding | None:
    """Approve or refuse a pending binding and tell the person on each of their chats."""
    binding = await session.scalar(select(Binding).where(Binding.id == binding_id, Binding.status == "pending")
                                   .options(selectinload(Binding.unit).selectinload(Unit.building))
                                   .with_for_update())
    if binding is None:
        return None
    binding.status = "active" if approve else "refused"
    binding.decided_at = clock.now()
    person = await session.get(Person, binding.person_id)
    lang = (person.lang if person else None) or "zh"
    text = t(lang, "bind.approved" if approve else "bind.refused", unit=binding.unit.label)
    for ident in (await session.scalars(select(Identity).where(Identity.person_id == binding.person_id,
                                                                Identity.active.is_(True)))).all():
        session.add(OutboxMessage(channel=ident.channel, chat_id=ident.chat_id, payload={"text": text, "choices": []},
                                  created_at=clock.now()))
    await session.flush()
    return binding
