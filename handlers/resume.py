"""Back to what a hazard interrupted: "继续刚才的报修？" yes resumes the flow exactly where it stood, no is the menu.

The interrupted flow's flow, state and data wait in ctx.data["_interrupted"] (see router.py for when a hazard
interrupts); each flow's `ask` puts its current question again.
"""
from __future__ import annotations

from enum import StrEnum

from handlers import bind, complaint, my_tickets, repair
from handlers.common import RESUME_FLOW, YES_NO, choice_of, show_menu
from handlers.context import Ctx
from handlers.messages import Inbound

FLOW = RESUME_FLOW

# The flows that hold a state between messages, and how each asks its current question again.
ASK = {repair.FLOW: repair.ask, complaint.FLOW: complaint.ask, bind.FLOW: bind.ask, my_tickets.FLOW: my_tickets.ask}


class S(StrEnum):
    OFFER = "offer"


async def step(ctx: Ctx, msg: Inbound) -> None:
    interrupted = ctx.data.get("_interrupted")
    choice = choice_of(msg)
    if not interrupted or choice == "no":
        show_menu(ctx)
    elif choice == "yes":
        await resume(ctx, interrupted)
    else:
        ctx.say(f"resume.{interrupted['flow']}", YES_NO)


async def resume(ctx: Ctx, interrupted: dict) -> None:
    ctx.goto(interrupted["flow"], interrupted["state"])
    ctx.data = dict(interrupted["data"])
    ask = ASK.get(ctx.flow)
    if ask is None:
        show_menu(ctx)
        return
    await ask(ctx)
