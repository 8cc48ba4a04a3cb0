"""My tickets (我的工单): list, details with the timeline, add information, cancel, hurry (催单), rate."""
from __future__ import annotations

from enum import StrEnum

from config.i18n import has
from handlers.common import DONE, SKIP, YES_NO, choice_of, clean_text, match_form, show_menu
from handlers.context import Ctx
from handlers.messages import Inbound
from handlers.ports import TicketView

FLOW = "tickets"
OPEN = {"new", "assigned", "in_progress", "on_hold", "rejected", "reopened"}


STARS = [(f"star:{i}", "★" * i) for i in range(5, 0, -1)]


class S(StrEnum):
    LIST = "list"
    DETAIL = "detail"
    ADD_INFO = "add_info"
    CONFIRM_CANCEL = "confirm_cancel"
    RATE = "rate"
    RATE_COMMENT = "rate_comment"


async def start(ctx: Ctx) -> None:
    ctx.goto(FLOW, S.LIST)
    ctx.data = {}
    tickets = await ctx.desk.my_tickets(ctx.person_id)
    if not tickets:
        ctx.say("tickets.none")
        show_menu(ctx, "menu.more")
        return
    lines = [ctx.t("tickets.line", number=tk.number, status=ctx.label("status", tk.status),
                   category=ctx.label("category", tk.category), date=tk.created_at.date().isoformat())
             for tk in tickets]
    ctx.say_text(ctx.t("tickets.header") + "\n" + "\n".join(lines),
                 [(f"t:{tk.number}", tk.number) for tk in tickets] + [("menu", "common.back")])


def _actions(tk: TicketView) -> list[tuple[str, str]]:
    actions = [("add", "tickets.add_info")]
    if tk.status in OPEN:
        actions += [("hurry", "tickets.hurry"), ("cancel", "tickets.cancel")]
    if tk.status in ("resolved", "closed") and tk.rating is None:
        actions.append(("rate", "tickets.rate"))
    return actions + [("list", "common.back")]


async def show(ctx: Ctx, number: str) -> None:
    tk = await ctx.desk.ticket(ctx.person_id, number)
    if tk is None:  # not theirs, or no such ticket: the same answer either way
        ctx.say("tickets.not_found", number=number)
        await start(ctx)
        return
    ctx.goto(FLOW, S.DETAIL)
    ctx.data["number"] = tk.number
    _note_hazard(ctx, tk)
    timeline = "\n".join(ctx.t("tickets.event", at=at.strftime("%m-%d %H:%M"), action=_event_label(ctx, a),
                               note=f" {note}" if note else "") for at, a, note in tk.timeline)
    ctx.say("tickets.detail", _actions(tk), number=tk.number, kind=ctx.label("kind", tk.kind),
            category=ctx.label("category", tk.category), urgency=ctx.label("urgency", tk.urgency),
            status=ctx.label("status", tk.status), description=tk.description, location=tk.location or "-",
            timeline=timeline)


def _event_label(ctx: Ctx, action: str) -> str:
    """An event as the owner's timeline names it ("师傅已到场"), in the owner's words rather than staff's (到场)."""
    return ctx.t(f"timeline.{action}") if has(ctx.lang, f"timeline.{action}") else ctx.label("action", action)


async def start_rating(ctx: Ctx, number: str) -> None:
    """The return visit (回访): the owner tapped "rate it" under a resolved-ticket notice."""
    tk = await ctx.desk.ticket(ctx.person_id, number)
    if tk is None or tk.status not in ("resolved", "closed") or tk.rating is not None:
        ctx.say("tickets.cannot_rate", number=number)
        show_menu(ctx, "menu.more")
        return
    ctx.goto(FLOW, S.RATE)
    ctx.data = {"number": tk.number}
    ctx.say("tickets.rate_prompt", STARS)


async def not_fixed(ctx: Ctx, number: str) -> None:
    """The return visit's other answer: the problem is still there. The ticket reopens to the supervisors."""
    ok = await ctx.desk.not_fixed(ctx.person_id, number)
    ctx.say("tickets.not_fixed_reopened" if ok else "tickets.cannot_reopen", number=number)
    show_menu(ctx, "menu.more")


async def start_reply(ctx: Ctx, number: str) -> None:
    """The owner answers a staff message about their ticket: what they send goes under the ticket's card."""
    tk = await ctx.desk.ticket(ctx.person_id, number)
    if tk is None:
        ctx.say("tickets.not_found", number=number)
        show_menu(ctx, "menu.more")
        return
    ctx.goto(FLOW, S.ADD_INFO)
    ctx.data = {"number": tk.number, "replying": True}
    _note_hazard(ctx, tk)
    ctx.say("tickets.reply_prompt", [DONE], number=tk.number)


def _note_hazard(ctx: Ctx, tk: TicketView) -> None:
    """An open emergency ticket: the hazard it reports, so more words about it are not taken for a new one."""
    if tk.urgency == "emergency" and tk.status in OPEN:
        ctx.data["hazard"] = tk.category
    else:
        ctx.data.pop("hazard", None)


async def step(ctx: Ctx, msg: Inbound) -> None:
    choice = choice_of(msg)
    text = clean_text(msg.text) if msg.kind == "text" else ""
    number = ctx.data.get("number", "")
    if ctx.state == S.LIST:
        if choice.startswith("t:"):
            await show(ctx, choice[2:])
        elif choice == "menu":
            show_menu(ctx)
        elif text:
            await show(ctx, match_form(text).upper())
        else:
            ctx.say("common.pick_one")
    elif ctx.state == S.DETAIL:
        if choice == "add":
            ctx.state = S.ADD_INFO
            ctx.data.pop("replying", None)
            ctx.say("tickets.add_prompt", [DONE])
        elif choice == "hurry":
            ok, wait = await ctx.desk.hurry_ticket(ctx.person_id, number)
            ctx.say("tickets.hurried" if ok else "tickets.hurry_wait", minutes=wait)
            await show(ctx, number)
        elif choice == "cancel":
            ctx.state = S.CONFIRM_CANCEL
            ctx.say("tickets.cancel_confirm", YES_NO, number=number)
        elif choice == "rate":
            ctx.state = S.RATE
            ctx.say("tickets.rate_prompt", STARS)
        elif choice == "list":
            await start(ctx)
        else:
            ctx.say("common.pick_one")
    elif ctx.state == S.ADD_INFO:
        if msg.kind == "photo":
            await ctx.desk.add_info(ctx.person_id, number, photo=msg.photo_ref)
            ctx.say("tickets.info_added", [DONE])
        elif text:
            await ctx.desk.add_info(ctx.person_id, number, text=text)
            ctx.say("tickets.info_added", [DONE])
        elif choice in ("done", "skip"):
            await show(ctx, number)
        else:
            ctx.say("tickets.add_prompt", [DONE])
    elif ctx.state == S.CONFIRM_CANCEL:
        if choice == "yes":
            ok = await ctx.desk.cancel_ticket(ctx.person_id, number)
            ctx.say("tickets.cancelled" if ok else "tickets.cannot_cancel", number=number)
            show_menu(ctx, "menu.more")
        elif choice == "no":
            await show(ctx, number)
        else:
            ctx.say("common.pick_one")
    elif ctx.state == S.RATE:
        if choice.startswith("star:"):
            ctx.data["stars"] = int(choice[5:])
        elif match_form(text).isdigit() and 1 <= int(match_form(text)) <= 5:
            ctx.data["stars"] = int(match_form(text))
        else:
            ctx.say("tickets.rate_prompt", STARS)
            return
        ctx.state = S.RATE_COMMENT
        ctx.say("tickets.rate_comment", [SKIP])
    elif ctx.state == S.RATE_COMMENT:
        comment = "" if choice == "skip" else text
        ok = await ctx.desk.rate_ticket(ctx.person_id, number, ctx.data["stars"], comment[:1000])
        ctx.say("tickets.rated" if ok else "tickets.cannot_rate", number=number)
        show_menu(ctx, "menu.more")


async def ask(ctx: Ctx) -> None:
    """Ask the current state's question again (the owner comes back to this flow after an emergency)."""
    number = ctx.data.get("number", "")
    if ctx.state == S.LIST:
        await start(ctx)
    elif ctx.state == S.DETAIL:
        await show(ctx, number)
    elif ctx.state == S.ADD_INFO:
        if ctx.data.get("replying"):
            ctx.say("tickets.reply_prompt", [DONE], number=number)
        else:
            ctx.say("tickets.add_prompt", [DONE])
    elif ctx.state == S.CONFIRM_CANCEL:
        ctx.say("tickets.cancel_confirm", YES_NO, number=number)
    elif ctx.state == S.RATE:
        ctx.say("tickets.rate_prompt", STARS)
    elif ctx.state == S.RATE_COMMENT:
        ctx.say("tickets.rate_comment", [SKIP])
