"""Ticket service: numbering, creation, lifecycle transitions with an audit trail, owner notifications."""
from __future__ import annotations

from typing import Any

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from config.i18n import label, t
from config.log_format import ticket_fields
from models import (Action, Attachment, Identity, OutboxMessage, Person, Staff, Ticket, TicketCounter,
                    TicketEvent, TicketFollower, next_status)
from models.lifecycle import NEEDS_REASON, OPEN_STATUSES
from models.ticket import PREFIX, format_number
from models.db import dialect_name, insert_for

from handlers.common import when_text

from bot.clock import Clock
from bot.desk.routing import NO_DISPATCH, Dispatch
from bot.desk.sla import SLA, load_sla

# What owners are promised: minutes to a response, per urgency (config/sla.toml; business time where it says so).
log = logging.getLogger("propdesk.tickets")


def _fields(ticket: Ticket) -> dict:
    return ticket_fields(ticket.number, ticket.estate_id, ticket.urgency)



async def next_number(session: AsyncSession, kind: str, clock: Clock) -> str:
    """BX-20261125-0007: one atomic upsert per number, so two workers never hand out the same one."""
    prefix = PREFIX[kind]
    day = clock.local().date()
    insert = insert_for(dialect_name(session))
    stmt = insert(TicketCounter).values(prefix=prefix, day=day, last=1)
    stmt = stmt.on_conflict_do_update(index_elements=["prefix", "day"],
                                      set_={"last": TicketCounter.last + 1}).returning(TicketCounter.last)
    seq = (await session.execute(stmt)).scalar_one()
    return format_number(prefix, day, seq)


class TicketService:
    def __init__(self, session: AsyncSession, clock: Clock, dispatch: Dispatch = NO_DISPATCH, sla: SLA | None = None):
        self.s = session
        self.clock = clock
        self.dispatch = dispatch
        self.sla = sla or load_sla(str(clock.tz))

    async def duplicate_of(self, ticket: Ticket, now: datetime) -> str | None:
        """An open ticket of the same category at the same unit (or the same public spot) reported recently."""
        if ticket.unit_id is None and not (ticket.estate_id and ticket.location_text.strip()):
            return None
        q = select(Ticket.number).where(Ticket.category == ticket.category,
                                        Ticket.status.in_([str(x) for x in OPEN_STATUSES]),
                                        Ticket.created_at >= now - self.sla.duplicate_window)
        if ticket.unit_id is not None:
            q = q.where(Ticket.unit_id == ticket.unit_id)
        else:
            q = q.where(Ticket.estate_id == ticket.estate_id,
                        func.lower(func.trim(Ticket.location_text)) == ticket.location_text.strip().lower())
        return await self.s.scalar(q.order_by(Ticket.id).limit(1))

    def start_clock(self, ticket: Ticket, now: datetime) -> None:
        """Deadlines from the ticket's policy, counted from now (creation, or a reopening: a new clock)."""
        policy = self.sla.policy(ticket.urgency, ticket.category)
        ticket.claim_due_at = self.sla.due(now, policy.claim, policy)
        ticket.arrive_due_at = self.sla.due(now, policy.arrive, policy) if ticket.kind == "repair" else None
        ticket.resolve_due_at = self.sla.due(now, policy.resolve, policy)
        ticket.escalation_level = 0

    def deadline(self, ticket: Ticket) -> tuple[str, datetime | None]:
        """The deadline the ticket is working towards now: ("claim" | "arrive" | "resolve", when)."""
        if ticket.status in ("new", "rejected", "reopened"):
            return "claim", ticket.claim_due_at
        if ticket.status == "assigned" and ticket.arrive_due_at and ticket.started_at is None:
            return "arrive", ticket.arrive_due_at
        return "resolve", ticket.resolve_due_at

    def next_check(self, ticket: Ticket, now: datetime) -> datetime | None:
        """When the SLA sweep must look again: a reminder, the next escalation, the end of the return visit."""
        if ticket.status == "resolved":
            return (ticket.resolved_at or now) + self.sla.close_after
        if ticket.status not in ("new", "rejected", "reopened", "assigned", "in_progress"):
            return None  # on hold (the clock is paused), closed, cancelled
        times: list[datetime] = []
        _, due = self.deadline(ticket)
        if due is not None and ticket.escalation_level < len(self.sla.ladder):
            times.append(due + timedelta(minutes=self.sla.ladder[ticket.escalation_level][1]))
        if ticket.status in ("new", "rejected", "reopened"):
            policy = self.sla.policy(ticket.urgency, ticket.category)
            times.append(now + timedelta(minutes=policy.remind_every))
        return min(times) if times else None

    async def create(self, *, kind: str, category: str, urgency: str, description: str, channel: str,
                     reporter_id: int | None, actor: str, **fields: Any) -> Ticket:
        now = self.clock.now()
        limits = self.dispatch.limits
        if limits is not None and actor.startswith("owner:"):
            # Over a rate limit: refused (TicketLimitReached), or, for an emergency, added to the owner's open one.
            open_emergency = await limits.check(self.s, now, reporter_id=reporter_id, channel=channel,
                                                urgency=urgency)
            if open_emergency is not None:
                log.info("emergency over the rate limit added to the open emergency", extra=_fields(open_emergency))
                for ref in fields.get("photos", []):
                    self.s.add(Attachment(ticket_id=open_emergency.id, channel=channel, ref=ref, added_by=actor,
                                          created_at=now))
                await self.event(open_emergency, actor, "more_info", note=description[:1000])
                return open_emergency
        photos = fields.pop("photos", [])
        ticket = Ticket(number=await next_number(self.s, kind, self.clock), kind=kind, category=category,
                        urgency=urgency, description=description, channel=channel, reporter_id=reporter_id,
                        status="new", created_at=now, updated_at=now, **fields)
        self.start_clock(ticket, now)
        ticket.next_check_at = self.next_check(ticket, now)
        ticket.possible_duplicate_of = await self.duplicate_of(ticket, now)
        self.s.add(ticket)
        await self.s.flush()
        for ref in photos:
            self.s.add(Attachment(ticket_id=ticket.id, channel=channel, ref=ref, added_by=actor, created_at=now))
        self.s.add(TicketEvent(ticket_id=ticket.id, at=now, actor=actor, action="create", to_status=ticket.status,
                               note=f"{urgency}/{category}"))
        await self.s.flush()
        log.info("ticket created: %s/%s via %s", kind, category, channel, extra=_fields(ticket))
        facts = await self.dispatch.facts(self.s, ticket)  # once: both the groups and the assignee depend on them
        await self.dispatch.announce(self.s, ticket, self.clock, facts)
        staff_id = await self.dispatch.auto_assignee(self.s, ticket, facts)
        if staff_id is not None:
            await self.transition(ticket, Action.CLAIM, "system:dispatch", assignee_id=staff_id)
        return ticket

    async def event(self, ticket: Ticket, actor: str, action: str, note: str = "") -> None:
        """An event that does not change the status: a comment, more info, a hurry, a rating."""
        self.s.add(TicketEvent(ticket_id=ticket.id, at=self.clock.now(), actor=actor, action=action,
                               from_status=ticket.status, to_status=ticket.status, note=note))
        ticket.updated_at = self.clock.now()
        await self.s.flush()
        await self.dispatch.refresh(self.s, ticket, self.clock)

    async def transition(self, ticket: Ticket, action: Action | str, actor: str, note: str = "",
                         assignee_id: int | None = None, notify_owner: bool = True) -> Ticket:
        """Apply `action` per the transition table, write the event and queue the owner's update."""
        action = Action(action)
        if action in NEEDS_REASON and not note.strip():
            raise ValueError(f"{action} needs a reason")
        old = ticket.status
        new = next_status(old, action)
        now = self.clock.now()
        ticket.status = new
        ticket.updated_at = now
        if action in (Action.CLAIM, Action.REASSIGN):
            ticket.assignee_id = assignee_id
            ticket.claimed_at = now
        elif action == Action.START:
            ticket.started_at = now
        elif action == Action.HOLD:
            ticket.held_at = now
        elif action == Action.RESUME and ticket.held_at is not None:
            paused = now - ticket.held_at  # the clock stood still while the ticket waited
            for field in ("claim_due_at", "arrive_due_at", "resolve_due_at"):
                if getattr(ticket, field) is not None:
                    setattr(ticket, field, getattr(ticket, field) + paused)
            ticket.held_at = None
        elif action == Action.RESOLVE:
            ticket.resolved_at = now
        elif action in (Action.CLOSE, Action.CANCEL, Action.MERGE):
            ticket.closed_at = now
        elif action == Action.REJECT:
            ticket.reject_reason = note[:300]
            ticket.assignee_id = None
            policy = self.sla.policy(ticket.urgency, ticket.category)  # back into dispatch: a new claim deadline
            ticket.claim_due_at = self.sla.due(now, policy.claim, policy)
        elif action == Action.REOPEN:
            ticket.resolved_at = None
            ticket.started_at = None
            self.start_clock(ticket, now)
        if action in (Action.CLAIM, Action.START, Action.RESUME, Action.REJECT):
            ticket.escalation_level = 0  # the ticket moved: a new deadline, a new ladder
        ticket.next_check_at = self.next_check(ticket, now)
        log.info("ticket %s: %s -> %s by %s", action.value, old, new, actor.split(":")[0], extra=_fields(ticket))
        self.s.add(TicketEvent(ticket_id=ticket.id, at=now, actor=actor, action=action, from_status=old,
                               to_status=new, note=note))
        await self.s.flush()
        await self.dispatch.refresh(self.s, ticket, self.clock)
        if notify_owner and action != Action.CANCEL:
            plain = action == Action.RESOLVE and not note.strip()  # nothing said about the work: no empty label
            await self.notify_owner(ticket, "notify.resolve_plain" if plain else f"notify.{action}", note=note,
                                    choices=[("rate:" + ticket.number, "notify.rate_choice"),
                                             ("notfixed:" + ticket.number, "notify.not_fixed_choice")]
                                    if action == Action.RESOLVE else None)
        return ticket

    async def staff_name(self, staff_id: int | None) -> str:
        if staff_id is None:
            return ""
        staff = await self.s.get(Staff, staff_id)
        person = await self.s.get(Person, staff.person_id) if staff else None
        return person.name if person else ""

    async def notify_owner(self, ticket: Ticket, key: str, note: str = "",
                           choices: list[tuple[str, str]] | None = None, photo_ref: str = "") -> int:
        """Queue a message to every active chat identity of the reporter (and of the owners of duplicates merged
        into this ticket), each in that person's own language."""
        if ticket.reporter_id is None:
            return 0
        people = [ticket.reporter_id] + list((await self.s.scalars(
            select(TicketFollower.person_id).where(TicketFollower.ticket_id == ticket.id))).all())
        langs = dict((await self.s.execute(select(Person.id, Person.lang).where(Person.id.in_(people)))).all())
        identities = (await self.s.scalars(select(Identity).where(
            Identity.person_id.in_(people), Identity.active.is_(True)).order_by(Identity.id))).all()
        staff = await self.staff_name(ticket.assignee_id)
        what, due = self.deadline(ticket)
        payloads: dict[str, dict] = {}
        for ident in identities:
            lang = langs.get(ident.person_id) or "zh"
            if lang not in payloads:
                when = when_text(lang, self.clock.local(due), self.clock.local()) if due else "-"
                text = t(lang, key, number=ticket.number, note=note, staff=staff or label(lang, "status", "assigned"),
                         due=when, what=t(lang, f"promise.{what}"))
                # "template": a status update may go out as a template message where a reply window is shut.
                payloads[lang] = {"text": text, "photo_ref": photo_ref, "template": "status",
                                  "choices": [{"id": cid, "label": t(lang, lbl)} for cid, lbl in (choices or [])]}
            self.s.add(OutboxMessage.new(ident.channel, ident.chat_id, payloads[lang], at=self.clock.now(),
                                         ticket_id=ticket.id))
        await self.s.flush()
        return len(identities)
