"""Staff decisions on binding requests that did not match the roster."""
from __future__ import annotations

from typing import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from config.i18n import label, t
from models import Binding, Building, Identity, OutboxMessage, Person, Unit

from bot.clock import Clock


def _in_estates(query, estate_ids: Collection[int] | None):  # noqa: ANN001, ANN202 - a Select over Binding
    """Limit to bindings of homes in these estates (None: all, for the CLI)."""
    if estate_ids is None:
        return query
    return query.where(Binding.unit_id.in_(select(Unit.id).join(Building, Building.id == Unit.building_id)
                                           .where(Building.estate_id.in_(sorted(estate_ids)))))


async def pending(session: AsyncSession, estate_ids: Collection[int] | None = None, lang: str = "zh") -> list[dict]:
    rows = (await session.execute(_in_estates(
        select(Binding, Person).join(Person, Person.id == Binding.person_id).where(Binding.status == "pending")
        .options(selectinload(Binding.unit).selectinload(Unit.building).selectinload(Building.estate))
        .order_by(Binding.id), estate_ids))).all()
    return [{"id": b.id, "person": _who(b, p, lang), "name": b.name or p.name, "relation": b.relation,
             "phone": b.phone, "unit": b.unit.label, "estate": b.unit.building.estate.name,
             "created_at": b.created_at.isoformat() + "Z"} for b, p in rows]


def _who(binding: Binding, person: Person, lang: str) -> str:
    """"李雷（租户）": the name the person gave and their relation to the home, as staff decide on it."""
    name = binding.name or person.name
    return t(lang, "bind.who", name=name, relation=label(lang, "relation", binding.relation)) \
        if binding.relation else name


async def decide(session: AsyncSession, clock: Clock, binding_id: int, approve: bool,
                 estate_ids: Collection[int] | None = None) -> Binding | None:
    """Approve or refuse a pending binding (of a home in `estate_ids`) and tell the person on each of their chats."""
    binding = await session.scalar(_in_estates(
        select(Binding).where(Binding.id == binding_id, Binding.status == "pending")
        .options(selectinload(Binding.unit).selectinload(Unit.building)), estate_ids).with_for_update())
    if binding is None:
        return None
    binding.status = "active" if approve else "refused"
    binding.decided_at = clock.now()
    person = await session.get(Person, binding.person_id)
    lang = (person.lang if person else None) or "zh"
    text = t(lang, "bind.approved" if approve else "bind.refused", unit=binding.unit.label)
    for ident in (await session.scalars(select(Identity).where(Identity.person_id == binding.person_id,
                                                                Identity.active.is_(True)))).all():
        session.add(OutboxMessage.new(ident.channel, ident.chat_id, {"text": text, "choices": []}, at=clock.now()))
    await session.flush()
    return binding
