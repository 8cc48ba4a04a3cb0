"""Main menu: the five services, and free text classified into the right flow."""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from handlers import bind, complaint, fees, my_tickets, repair
from handlers.common import choice_of, clean_text, match_form, show_menu
from handlers.context import Ctx
from handlers.messages import Inbound

FLOW = "menu"

STARTERS: dict[str, Callable[[Ctx], Awaitable[None]]] = {
    "repair": repair.start, "complaint": complaint.start, "fees": fees.start, "tickets": my_tickets.start,
    "bind": bind.start}


async def from_free_text(ctx: Ctx, text: str) -> None:
    """"厨房漏水了" at the menu starts a repair with the description filled in."""
    c = ctx.desk.classify(text)
    if c["kind"] == "repair" or c["urgency"] == "emergency" and c["kind"] != "complaint":
        await repair.start(ctx, description=text)
    elif c["kind"] == "complaint":
        await complaint.start(ctx, details=text, category=c["category"])
    elif c["kind"] == "fee":
        await fees.start(ctx)
    else:
        ctx.finish()
        ctx.say("menu.inquiry", phone=ctx.settings.duty_phone)
        show_menu(ctx, "menu.prompt")


TICKET_NUMBER = re.compile(r"^(BX|TS)-\d{8}-\d{4}$", re.I)


async def step(ctx: Ctx, msg: Inbound) -> None:
    choice = choice_of(msg)
    if choice in STARTERS:
        await STARTERS[choice](ctx)
    elif msg.kind == "text" and TICKET_NUMBER.match(match_form(msg.text)):
        await my_tickets.show(ctx, match_form(msg.text).upper())
    elif msg.kind == "text" and clean_text(msg.text):
        await from_free_text(ctx, clean_text(msg.text))
    elif msg.kind == "photo":
        await repair.start(ctx, photo=msg.photo_ref)
    else:
        show_menu(ctx)
