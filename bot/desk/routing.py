"""Dispatch: which staff groups see a ticket, and the outbox rows that put and keep its card there.

Cards are queued, not sent: an outbox row of kind "card" is rendered from the ticket's state when the delivery
worker sends it, so several changes in a row become one edit of the same message.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Route, Settings, StaffGroup
from models import Building, Estate, OutboxMessage, Person, Staff, StaffEstate, Ticket, PostedCard, Unit

from bot.clock import Clock
from bot.desk.sla import Calendar, load_sla
from bot.desk.ticket_limits import TicketLimits

# Outbox priority of a ticket's messages to staff groups, by urgency.
PRIORITY = {"emergency": 3, "high": 2, "normal": 1, "low": 0}


def priority_of(urgency: str) -> int:
    """The outbox priority of a ticket's messages: an emergency's card overtakes a group's backlog."""
    return PRIORITY.get(urgency, 1)


def _matches(route: Route, facts: dict[str, str]) -> bool:
    if route.after_hours is not None and route.after_hours != (facts.get("after_hours") == "yes"):
        return False
    return all(not allowed or facts.get(field, "") in allowed
               for field, allowed in (("estate", route.estate), ("kind", route.kind),
                                      ("category", route.category), ("urgency", route.urgency),
                                      ("building", route.building)))


class Dispatch:
    """Routing rules from settings, applied to tickets inside the caller's transaction."""

    def __init__(self, groups: dict[str, StaffGroup], routes: list[Route], default_group: str | None = None,
                 calendar: Calendar | None = None, limits: TicketLimits | None = None):
        self.groups = groups
        self.routes = routes
        self.default_group = default_group
        self.calendar = calendar  # business hours, for after-hours rules
        self.limits = limits  # how fast owners may open tickets (None: no limit)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Dispatch":
        """The dispatch the settings describe; a rule or default naming a group that does not exist is an error."""
        named = {g for route in settings.routes for g in route.groups} | (
            {settings.default_group} if settings.default_group else set())
        unknown = sorted(named - set(settings.staff_groups))
        if unknown:
            raise ValueError(f"routing names staff groups that are not configured: {', '.join(unknown)}")
        if any(route.mode == "assign" and not route.assignee for route in settings.routes):
            raise ValueError("a route with mode 'assign' needs the assignee's phone")
        return cls(settings.staff_groups, settings.routes, settings.default_group,
                   load_sla(settings.timezone).calendar, TicketLimits.from_settings(settings))

    def group_names(self, facts: dict[str, str]) -> list[str]:
        """The groups for a ticket with these facts (estate code, kind, category, urgency, building)."""
        names: list[str] = []
        for route in self.routes:
            if _matches(route, facts):
                names += [g for g in route.groups if g in self.groups and g not in names]
        if names:
            return names
        if self.default_group in self.groups:
            return [self.default_group]
        return list(self.groups)

    async def facts(self, session: AsyncSession, ticket: Ticket) -> dict[str, str]:
        facts = {"kind": ticket.kind, "category": ticket.category, "urgency": ticket.urgency,
                 "after_hours": "no" if self.calendar is None or self.calendar.open_at(ticket.created_at) else "yes"}
        if ticket.unit_id:
            building = await session.scalar(select(Building).join(Unit, Unit.building_id == Building.id)
                                            .where(Unit.id == ticket.unit_id))
            facts["building"] = building.name if building else ""
        if ticket.estate_id:
            estate = await session.get(Estate, ticket.estate_id)
            facts["estate"] = estate.code if estate else ""
        return facts

    async def announce(self, session: AsyncSession, ticket: Ticket, clock: Clock,
                       facts: dict[str, str] | None = None) -> list[PostedCard]:
        """Give a new ticket a card in each of its groups."""
        cards = []
        for name in self.group_names(facts or await self.facts(session, ticket)):
            group = self.groups[name]
            card = PostedCard(ticket_id=ticket.id, group=name, channel=group.channel, chat_id=group.chat_id,
                              created_at=clock.now())
            session.add(card)
            cards.append(card)
            session.add(OutboxMessage.new(group.channel, group.chat_id, {}, at=clock.now(), kind="card",
                                          ticket_id=ticket.id, priority=priority_of(ticket.urgency)))
        await session.flush()
        return cards

    async def auto_assignee(self, session: AsyncSession, ticket: Ticket,
                            facts: dict[str, str] | None = None) -> int | None:
        """The staff member a matching "assign" or "round_robin" rule gives the ticket to; None: grab."""
        facts = facts or await self.facts(session, ticket)
        route = next((r for r in self.routes if _matches(r, facts) and r.mode != "grab"), None)
        if route is None:
            return None
        if route.mode == "assign":
            return await session.scalar(select(Staff.id).join(Person, Person.id == Staff.person_id)
                                        .where(Person.phone == route.assignee, Staff.active.is_(True)))
        last = (select(Ticket.assignee_id, func.max(Ticket.claimed_at).label("at"))
                .group_by(Ticket.assignee_id).subquery())
        q = (select(Staff.id).outerjoin(last, last.c.assignee_id == Staff.id).where(Staff.active.is_(True))
             .order_by(last.c.at.is_not(None), last.c.at, Staff.id).limit(1))
        if route.trade:
            q = q.where(Staff.trade == route.trade)
        if ticket.estate_id:
            q = q.join(StaffEstate, StaffEstate.staff_id == Staff.id).where(StaffEstate.estate_id == ticket.estate_id)
        return await session.scalar(q)

    async def refresh(self, session: AsyncSession, ticket: Ticket, clock: Clock) -> None:
        """Queue an edit of every card of the ticket, unless one is already waiting to be sent."""
        cards = (await session.scalars(select(PostedCard).where(PostedCard.ticket_id == ticket.id))).all()
        for card in cards:
            waiting = await session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "card",
                OutboxMessage.channel == card.channel, OutboxMessage.chat_id == card.chat_id,
                OutboxMessage.status == "pending").limit(1))
            if waiting is None:
                session.add(OutboxMessage.new(card.channel, card.chat_id, {}, at=clock.now(), kind="card",
                                              ticket_id=ticket.id, priority=priority_of(ticket.urgency)))
        await session.flush()

    async def tell_groups(self, session: AsyncSession, ticket: Ticket, clock: Clock, text: str,
                          photo_ref: str = "") -> int:
        """A message under the ticket's card in each group (e.g. what the owner added)."""
        cards = (await session.scalars(select(PostedCard).where(PostedCard.ticket_id == ticket.id))).all()
        for card in cards:
            session.add(OutboxMessage.new(card.channel, card.chat_id,
                                          {"text": text, "photo_ref": photo_ref, "reply_to_card": True},
                                          at=clock.now(), ticket_id=ticket.id, priority=priority_of(ticket.urgency)))
        await session.flush()
        return len(cards)


NO_DISPATCH = Dispatch({}, [])
