"""Bind my home (绑定房屋): unit -> roster phone; a roster match binds at once. Anything else waits for staff, who
need to know who asks: the person's name and relation to the home (owner, family, tenant) are asked first."""
from __future__ import annotations

from enum import StrEnum

from handlers.common import ask_estate, choice_of, clean_text, parse_phone, parse_unit, show_menu, take_estate
from handlers.context import Ctx
from handlers.messages import Inbound

FLOW = "bind"
RELATIONS = [("rel:owner", "relation.owner"), ("rel:family", "relation.family"), ("rel:tenant", "relation.tenant")]


class S(StrEnum):
    ESTATE = "estate"
    UNIT = "unit"
    PHONE = "phone"
    NAME = "name"
    RELATION = "relation"


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


async def _bind(ctx: Ctx, **details: str) -> None:
    d = ctx.data
    result = await ctx.desk.bind_unit(ctx.person_id, d.get("estate_id"), d["unit"], d["phone"], **details)
    if result == "needs_details":  # not on the roster: staff will decide, and need to know who asks
        ctx.state = S.NAME
        ctx.say("bind.name")
        return
    ctx.say(f"bind.{result}", unit=d["unit"])
    show_menu(ctx, "menu.more")


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
        d["phone"] = phone
        await _bind(ctx)
    elif ctx.state == S.NAME:
        if not text or len(text) > 50:
            ctx.say("bind.name_again")
            return
        d["name"] = text
        ctx.state = S.RELATION
        ctx.say("bind.relation", RELATIONS)
    elif ctx.state == S.RELATION:
        choice = choice_of(msg)
        if not choice.startswith("rel:"):
            ctx.say("common.pick_one")
            return
        await _bind(ctx, name=d["name"], relation=choice[4:])


async def ask(ctx: Ctx) -> None:
    """Ask the current state's question again (the owner comes back to this flow after an emergency)."""
    if ctx.state == S.ESTATE:
        await ask_estate(ctx)
    elif ctx.state == S.UNIT:
        ctx.say("bind.unit")
    elif ctx.state == S.PHONE:
        ctx.say("bind.phone")
    elif ctx.state == S.NAME:
        ctx.say("bind.name")
    elif ctx.state == S.RELATION:
        ctx.say("bind.relation", RELATIONS)
