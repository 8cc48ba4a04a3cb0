"""What staff do to a ticket, from any staff surface (Telegram cards, the WeCom staff page, the console)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Action, Attachment, Person, Staff, Ticket, TicketEvent, TicketFollower, Unit, allowed_actions
from models.lifecycle import OPEN_STATUSES

from bot.clock import Clock
from bot.desk.access import NoAccess, StaffRef, access_ticket, active_staff
from bot.desk.routing import NO_DISPATCH, Dispatch
from bot.desk.ticket_service import TicketService

STAFF_ACTIONS = ["claim", "start", "hold", "resume", "resolve", "reject", "reassign", "merge", "comment"]


class StaffActionError(ValueError):
    pass


async def staff_member(session: AsyncSession, staff_id: int) -> StaffRef:
    staff = await active_staff(session, staff_id)
    if staff is None:
        raise StaffActionError("not an active staff member")
    return staff


async def act(session: AsyncSession, clock: Clock, *, number: str, staff_id: int, action: str, note: str = "",
              assignee_id: int | None = None, photo: str = "", channel: str = "web",
              dispatch: Dispatch = NO_DISPATCH) -> Ticket:
    """Apply a staff action as `staff_id`, on a ticket they may see; raises StaffActionError with a reason a person
    can read."""
    staff = await staff_member(session, staff_id)
    try:
        ticket = await access_ticket(session, staff, number, lock=True)
    except NoAccess:
        raise StaffActionError(f"no ticket {number}") from None
    if action not in STAFF_ACTIONS:
        raise StaffActionError(f"unknown action {action}")
    svc = TicketService(session, clock, dispatch)
    actor = f"staff:{staff.id}"
    note = (note or "").strip()[:1000]
    if photo:
        session.add(Attachment(ticket_id=ticket.id, channel=channel, ref=photo, added_by=actor,
                               created_at=clock.now()))
    if action == "comment":
        if not note and not photo:
            raise StaffActionError("a comment needs text")
        await svc.event(ticket, actor, "comment", note or "[photo]")
        await svc.notify_owner(ticket, "notify.comment", note=note, photo_ref=photo,
                               choices=[(f"reply:{ticket.number}", "notify.reply_choice")])
        return ticket
    if action not in allowed_actions(ticket.status):
        raise StaffActionError(f"cannot {action} a ticket that is {ticket.status}")
    if action == "reject" and not note:
        raise StaffActionError("退单 needs a reason / a rejection needs a reason")
    if action == "merge":
        return await _merge(session, svc, staff, ticket, actor, note or ticket.possible_duplicate_of or "")
    target = staff.id
    if action == "reassign":
        if assignee_id is None:
            raise StaffActionError("reassign needs the new assignee")
        assignee = await staff_member(session, assignee_id)
        if ticket.estate_id is not None and ticket.estate_id not in assignee.estate_ids:
            raise StaffActionError("the new assignee does not work for this ticket's estate")
        target = assignee.id
    await svc.transition(ticket, Action(action), actor, note,
                         assignee_id=target if action in ("claim", "reassign") else None)
    return ticket


async def staff_ticket_view(session: AsyncSession, ticket: Ticket, clock: Clock) -> dict:
    """Everything a staff surface shows about a ticket."""
    return (await staff_ticket_views(session, [ticket], clock))[0]


async def staff_ticket_views(session: AsyncSession, tickets: list[Ticket], clock: Clock) -> list[dict]:
    """`staff_ticket_view` of many tickets with a fixed number of queries, however many there are."""
    if not tickets:
        return []
    ids = [t.id for t in tickets]
    events: dict[int, list[TicketEvent]] = {i: [] for i in ids}
    for e in (await session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids))
                                    .order_by(TicketEvent.id))).all():
        events[e.ticket_id].append(e)
    photos: dict[int, list[str]] = {i: [] for i in ids}
    for ticket_id, ref in (await session.execute(select(Attachment.ticket_id, Attachment.ref)
                                                 .where(Attachment.ticket_id.in_(ids))
                                                 .order_by(Attachment.id))).all():
        photos[ticket_id].append(ref)
    reporter_ids = {t.reporter_id for t in tickets if t.reporter_id}
    reporters = dict((await session.execute(select(Person.id, Person.name)
                                            .where(Person.id.in_(reporter_ids)))).all()) if reporter_ids else {}
    assignee_ids = {t.assignee_id for t in tickets if t.assignee_id}
    assignees = dict((await session.execute(select(Staff.id, Person.name).join(Person, Person.id == Staff.person_id)
                                            .where(Staff.id.in_(assignee_ids)))).all()) if assignee_ids else {}
    unit_ids = {t.unit_id for t in tickets if t.unit_id}
    units = {u.id: u.label for u in (await session.scalars(select(Unit).where(Unit.id.in_(unit_ids))
                                                           .options(selectinload(Unit.building)))).all()} \
        if unit_ids else {}
    return [_view(t, clock, events[t.id], photos[t.id],
                  reporters.get(t.reporter_id) if t.reporter_id is not None else None,
                  assignees.get(t.assignee_id) if t.assignee_id is not None else None,
                  units.get(t.unit_id) if t.unit_id is not None else None) for t in tickets]


def _view(ticket: Ticket, clock: Clock, events: list[TicketEvent], photos: list[str], reporter: str | None,
          assignee: str | None, unit: str | None) -> dict:
    location = f"{unit} {ticket.location_text}".strip() if unit else ticket.location_text
    return {
        "number": ticket.number, "kind": ticket.kind, "category": ticket.category, "urgency": ticket.urgency,
        # A complaint's subject leads its description: a surface that shows one text shows both.
        "status": ticket.status, "location": location,
        "description": f"【{ticket.subject}】{ticket.description}" if ticket.subject else ticket.description,
        "subject": ticket.subject, "preferred_time": ticket.preferred_time,
        # Anonymity is toward the other party of a complaint: staff still see who (and where, above).
        "contact": reporter or "", "anonymous": ticket.anonymous,
        "phone": ticket.contact_phone, "channel": ticket.channel, "assignee": assignee,
        "reasons": ticket.classifier_reasons, "rating": ticket.rating, "hurry_count": ticket.hurry_count,
        "created_at": ticket.created_at.isoformat() + "Z",
        "claim_due_at": ticket.claim_due_at.isoformat() + "Z" if ticket.claim_due_at else None,
        "overdue": bool(ticket.claim_due_at and ticket.status == "new" and clock.now() > ticket.claim_due_at),
        "actions": [a.value for a in allowed_actions(ticket.status) if a.value in STAFF_ACTIONS
                    and (a.value != "merge" or ticket.possible_duplicate_of)] + ["comment"],
        "possible_duplicate_of": ticket.possible_duplicate_of,
        "photos": photos,
        "events": [{"at": e.at.isoformat() + "Z", "actor": e.actor, "action": e.action, "note": e.note,
                    "to": e.to_status} for e in events],
    }


async def _merge(session: AsyncSession, svc: TicketService, staff: StaffRef, ticket: Ticket, actor: str,
                 into: str) -> Ticket:
    """Close `ticket` as the same problem as `into`, whose updates its owner (and followers) hear from now on."""
    into = into.strip().upper()
    try:
        target = await access_ticket(session, staff, into, lock=True) if into else None
    except NoAccess:
        target = None
    if target is None or target.id == ticket.id:
        raise StaffActionError("merge needs the number of another ticket / 合并需要另一张工单的编号")
    if target.status not in OPEN_STATUSES:
        raise StaffActionError(f"{into} is not open")
    people = {p for p in [ticket.reporter_id] if p} | set((await session.scalars(
        select(TicketFollower.person_id).where(TicketFollower.ticket_id == ticket.id))).all())
    known = {target.reporter_id} | set((await session.scalars(
        select(TicketFollower.person_id).where(TicketFollower.ticket_id == target.id))).all())
    for person_id in people - known:
        session.add(TicketFollower(ticket_id=target.id, person_id=person_id))
    await svc.transition(ticket, Action.MERGE, actor, into)
    await svc.event(target, actor, "merge", f"← {ticket.number}")
    return ticket
