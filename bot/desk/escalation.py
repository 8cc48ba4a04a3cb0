"""What the SLA sweep does to a due ticket: remind the group, climb the escalation ladder, end the return visit."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from config.i18n import label, t
from config.log_format import ticket_fields
from models import Action, Identity, OutboxMessage, Staff, StaffEstate, Ticket, TicketEvent

from bot.desk.routing import priority_of
from bot.desk.trades import trade_for
from bot.desk.ticket_service import TicketService

SYSTEM = "system:sla"
HURRIES_TO_ESCALATE = 2  # the owner's second hurry (and each after it) climbs the ladder a step

log = logging.getLogger("propdesk.escalation")


async def hurried(svc: TicketService, ticket: Ticket, now: datetime, lang: str = "zh") -> None:
    """The owner hurried (催单; the cooldown is the desk's): ping the assignee, and count toward escalation."""
    staff = await svc.s.get(Staff, ticket.assignee_id) if ticket.assignee_id is not None else None
    if staff is not None:
        accounts = (await svc.s.scalars(select(Identity).where(Identity.person_id == staff.person_id,
                                                               Identity.active.is_(True)))).all()
        for account in accounts:
            svc.s.add(OutboxMessage.new(account.channel, account.chat_id,
                                        {"text": t(lang, "staff.owner_hurried", number=ticket.number,
                                                   n=ticket.hurry_count)},
                                        at=now, ticket_id=ticket.id, priority=priority_of(ticket.urgency)))
    ladder = svc.sla.ladder
    if ticket.urgency == "emergency" and ladder:
        # Someone is in danger and still waiting: every hurry climbs a step, and at the top tells the top again.
        level = min(ticket.escalation_level, len(ladder) - 1)
        ticket.escalation_level = level
        await _escalate(svc, ticket, "hurry", now, now, ladder[level][0], lang)
        ticket.escalation_level = level + 1
        ticket.next_check_at = svc.next_check(ticket, now)
    elif ticket.hurry_count >= HURRIES_TO_ESCALATE and ticket.escalation_level < len(ladder):
        group, _ = ladder[ticket.escalation_level]
        await _escalate(svc, ticket, "hurry", now, now, group, lang)
        ticket.escalation_level += 1
        ticket.next_check_at = svc.next_check(ticket, now)


async def check(svc: TicketService, ticket: Ticket, now: datetime, lang: str = "zh") -> None:
    if ticket.status == "resolved":
        # The owner neither confirmed nor rated within the return-visit window: close it.
        await svc.transition(ticket, Action.CLOSE, SYSTEM, t(lang, "sla.auto_closed"))
        return
    what, due = svc.deadline(ticket)
    ladder = svc.sla.ladder
    while due is not None and ticket.escalation_level < len(ladder):
        group, after = ladder[ticket.escalation_level]
        if (now - due).total_seconds() < after * 60:
            break
        await _escalate(svc, ticket, what, due, now, group, lang)
        ticket.escalation_level += 1
    if ticket.status in ("new", "rejected", "reopened"):
        minutes = int((now - ticket.created_at).total_seconds() // 60)
        await svc.dispatch.tell_groups(svc.s, ticket, svc.clock, t(
            lang, "sla.unclaimed", number=ticket.number, urgency=label(lang, "urgency", ticket.urgency),
            category=label(lang, "category", ticket.category), minutes=minutes, duty=await _on_duty(svc, ticket)))
    ticket.next_check_at = svc.next_check(ticket, now)


async def _escalate(svc: TicketService, ticket: Ticket, what: str, due: datetime, now: datetime, group: str,
                    lang: str) -> None:
    late = int((now - due).total_seconds() // 60)
    level = ticket.escalation_level + 1
    target = svc.dispatch.groups.get(group)
    fields = ticket_fields(ticket.number, ticket.estate_id, ticket.urgency)
    if target is None:
        # This level's group is not configured: nobody was told. Staff see that on the timeline as a message that
        # could not be delivered (an escalation there would be false, and the owner's timeline would repeat it).
        note = f"L{level} {what} +{late}min → {group}: no such staff group configured"
        svc.s.add(TicketEvent(ticket_id=ticket.id, at=now, actor=SYSTEM, action="undelivered",
                              from_status=ticket.status, to_status=ticket.status, note=note))
        log.error("ticket escalation undeliverable: %s", note, extra=fields)
        return
    note = f"L{level} {what} +{late}min → {group}"
    svc.s.add(TicketEvent(ticket_id=ticket.id, at=now, actor=SYSTEM, action="escalate", from_status=ticket.status,
                          to_status=ticket.status, note=note))
    log.warning("ticket escalated: %s", note, extra=fields)
    assignee = await svc.staff_name(ticket.assignee_id) or "-"
    key = "sla.escalate_hurry" if what == "hurry" else "sla.escalate"
    text = t(lang, key, level=level, number=ticket.number, urgency=label(lang, "urgency", ticket.urgency),
             category=label(lang, "category", ticket.category), what=t(lang, f"sla.what.{what}"), minutes=late,
             status=label(lang, "status", ticket.status), assignee=assignee, n=ticket.hurry_count)
    svc.s.add(OutboxMessage.new(target.channel, target.chat_id, {"text": text}, at=now, ticket_id=ticket.id,
                                priority=priority_of(ticket.urgency)))


async def reopened(svc: TicketService, ticket: Ticket, stars: int, comment: str, now: datetime,
                   lang: str = "zh") -> None:
    """The owner was not satisfied (rated 2 or less): the reopened ticket goes to the supervisors' group too."""
    target = svc.dispatch.groups.get(svc.sla.reopen_to)
    if target is None:
        svc.s.add(TicketEvent(ticket_id=ticket.id, at=now, actor=SYSTEM, action="undelivered",
                              from_status=ticket.status, to_status=ticket.status,
                              note=f"reopened → {svc.sla.reopen_to}: no such staff group configured"))
        return
    text = t(lang, "sla.reopened", number=ticket.number, stars="★" * stars or "-", comment=comment or "-",
             category=label(lang, "category", ticket.category),
             assignee=await svc.staff_name(ticket.assignee_id) or "-")
    svc.s.add(OutboxMessage.new(target.channel, target.chat_id, {"text": text}, at=now, ticket_id=ticket.id,
                                priority=priority_of(ticket.urgency)))


async def _on_duty(svc: TicketService, ticket: Ticket) -> str:
    """Who is on duty for the ticket's estate (and trade, when the category has one): named in the reminder."""
    q = select(Staff).where(Staff.active.is_(True)).options(selectinload(Staff.person)).order_by(Staff.id)
    if ticket.estate_id:
        q = q.join(StaffEstate, StaffEstate.staff_id == Staff.id).where(StaffEstate.estate_id == ticket.estate_id)
    staff = (await svc.s.scalars(q)).all()
    matching = [st for st in staff if st.trade and st.trade == trade_for(ticket.category)] or staff
    return "、".join(st.person.name for st in matching[:3]) or "-"
