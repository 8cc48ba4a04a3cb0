"""A ticket's staff card, channel-neutral: lines of text and action buttons that each staff channel renders."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.common import mask_phone
from config.i18n import label, t
from models import Ticket, allowed_actions
from models.ticket import NUMBER_PATTERN, NUMBER_RE  # noqa: F401 - re-exported: the channels match numbers with them

from bot.clock import Clock
from bot.desk.staff_actions import staff_ticket_view

ICONS = {"emergency": "🔴", "high": "🟠", "normal": "🔵", "low": "⚪"}
# The buttons a card offers, in this order, when the ticket's status allows them.
CARD_ACTIONS = ["claim", "start", "resolve", "hold", "resume", "reject", "reassign"]


@dataclass
class GroupCard:
    number: str
    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (action, label)
    photos: list[str] = field(default_factory=list)  # channel references of the ticket's photos
    header: str = ""  # the card's first line (urgency, kind, number): a digest lists cards by it
    description: str = ""  # the owner's words, for the same
    actions: list[str] = field(default_factory=list)  # every action the ticket's status allows now
    reply_hint: str = ""  # how a reply reaches the owner where a channel can do that (Telegram: reply to the card)


def _when(clock: Clock, at: datetime | None) -> str:
    return clock.local(at).strftime("%m-%d %H:%M") if at else "-"


async def build_group_card(session: AsyncSession, ticket: Ticket, clock: Clock, lang: str = "zh") -> GroupCard:
    info = await staff_ticket_view(session, ticket, clock)
    lines = [t(lang, "card.header", icon=ICONS.get(ticket.urgency, "🔵"),
               urgency=label(lang, "urgency", ticket.urgency),
               kind=label(lang, "kind", ticket.kind), number=ticket.number),
             t(lang, "card.status", status=label(lang, "status", ticket.status), assignee=info["assignee"] or "-"),
             t(lang, "card.category", category=label(lang, "category", ticket.category))]
    if info["location"]:
        lines.append(t(lang, "card.location", location=info["location"]))
    if ticket.subject:
        lines.append(t(lang, "card.subject", subject=ticket.subject))
    lines.append(t(lang, "card.description", description=ticket.description[:1500]))
    if ticket.preferred_time:
        lines.append(t(lang, "card.visit", time=ticket.preferred_time))
    # Masked on the card: a group may hold people who are not staff; staff see it in full by button. An anonymous
    # complaint is anonymous toward the other party, not toward staff: who and where show, with the warning.
    lines.append(t(lang, "card.contact", name=info["contact"] or "-", phone=mask_phone(ticket.contact_phone)))
    if ticket.anonymous:
        lines.append(t(lang, "card.anonymous"))
    if ticket.status not in ("resolved", "closed", "cancelled"):
        lines.append(t(lang, "card.due", claim_due=_when(clock, ticket.claim_due_at),
                       resolve_due=_when(clock, ticket.resolve_due_at)))
        late = [d for d in (ticket.claim_due_at if ticket.status == "new" else None, ticket.resolve_due_at) if d]
        if any(clock.now() > d for d in late):
            lines.append(t(lang, "card.overdue"))
    if info["photos"]:
        lines.append(t(lang, "card.photos", n=len(info["photos"])))
    if ticket.possible_duplicate_of:
        lines.append(t(lang, "card.duplicate", number=ticket.possible_duplicate_of))
    if ticket.hurry_count:
        lines.append(t(lang, "card.hurried", n=ticket.hurry_count))
    if ticket.status == "rejected" and ticket.reject_reason:
        lines.append(t(lang, "card.reject_reason", reason=ticket.reject_reason))
    if ticket.rating:
        lines.append(t(lang, "card.rating", stars="★" * ticket.rating))
    allowed = {a.value for a in allowed_actions(ticket.status)}
    buttons = [(a, label(lang, "action", a)) for a in CARD_ACTIONS if a in allowed]
    if ticket.possible_duplicate_of and "merge" in allowed:
        buttons.append(("merge", label(lang, "action", "merge")))
    if ticket.status not in ("closed", "cancelled"):
        buttons.append(("contact", t(lang, "card.button.contact")))
    # A digest line shows the card by its header and this: a complaint's subject comes first.
    what = f"【{ticket.subject}】{ticket.description}" if ticket.subject else ticket.description
    return GroupCard(number=ticket.number, text="\n".join(lines), buttons=buttons, photos=info["photos"],
                     header=lines[0], description=what, actions=sorted(allowed),
                     reply_hint=t(lang, "card.reply_hint"))
