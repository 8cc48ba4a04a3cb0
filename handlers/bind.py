"""Bind my home (绑定房屋): unit -> roster phone; a roster match binds at once, anything else waits for staff."""
from __future__ import annotations

from enum import StrEnum

from handlers.common import ask_estate, clean_text, parse_phone, parse_unit, show_menu, take_estate
from handlers.context import Ctx
from handlers.messages import Inbound

FLOW = "bind"


class S(StrEnum):
    ESTATE = "estate"
    UNIT = "unit"
    PHONE = "phone"


async def start(ctx: Ctx) -> None:
    ctx.goto(FLOW, S.UNIT)
    ctx.data = {}
    estates = await ctx.desk.estates()
    if len(estates) > 1:
        ctx.data["_after_estate"] = S.UNIT
        ctx.state = S.ESTATE
        ctx.say("common.which_estate", [(f"estate:{e.id}", e.name) for e in estates])
        return
    if estates:
        ctx.data["estate_id"] = estates[0].id
    ctx.say("bind.unit")


async def step(ctx: Ctx, msg: Inbound) -> None:
    d = ctx.data
    text = clean_text(msg.text) if msg.kind == "text" else ""
    if ctx.state == S.ESTATE:
        if take_estate(ctx, msg):
            ctx.say("bind.unit")
        else:
            ctx.say("common.pick_one")
    elif ctx.state == S.UNIT:
        unit = parse_unit(text)
        if not unit:
            ctx.say("bind.unit_invalid")
            return
        d["unit"] = unit
        ctx.state = S.PHONE
        ctx.say("bind.phone")
    elif ctx.state == S.PHONE:
        phone = parse_phone(text)
        if not phone:
            ctx.say("bind.phone_invalid")
            return
        result = await ctx.desk.bind_unit(ctx.person_id, d.get("estate_id"), d["unit"], phone)
        ctx.say(f"bind.{result}", unit=d["unit"])
        show_menu(ctx, "menu.more")


async def ask(ctx: Ctx) -> None:
    """Ask the current state's question again (the owner comes back to this flow after an emergency)."""
    if ctx.state == S.ESTATE:
        await ask_estate(ctx)
    elif ctx.state == S.UNIT:
        ctx.say("bind.unit")
    elif ctx.state == S.PHONE:
        ctx.say("bind.phone")
