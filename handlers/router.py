"""One entry point for every inbound message: global commands first, then a hazard check, then the flow's step.

Hazards first. Before a flow step reads an owner's typed text, the triage reads it (`desk.classify`, once per text
and step: the desk keeps the answer, so a flow that classifies the same text again pays nothing). When it reports a
current hazard (urgency "emergency"), the emergency path runs at once, whatever the flow was doing:

1. Interrupt (every state not named in 2 or 3: a choice, a location, a visit time, a phone or unit number, a ticket
   number, a complaint's subject, words at a photo step, the "continue?" offer itself). The text becomes its own
   emergency ticket on the existing path (`repair.emergency_from` -> `create_emergency`: the number, the hazard's
   safety advice, the duty phone; then its optional where/phone questions), and afterwards the interrupted flow is
   offered back ("继续刚才的报修？"): its flow, state and data wait in ctx.data, "yes" resumes the same question
   with the same answers so far, "no" is the menu. The text is not also taken as the interrupted question's answer.
2. The text describes the ticket being reported (menu free text, repair `describe`, complaint `details`): the flow
   classifies it itself and a hazard becomes that very ticket, on the same path. Nothing is interrupted, so the
   router does not classify there.
3. The text is about a ticket already filed (`tickets.add_info` — added information or a reply to staff —,
   `tickets.rate_comment`, and `repair.emergency_where` / `emergency_phone` after an emergency ticket). Ordinary
   words there belong to that ticket and are never hijacked; a hazard still wins:
   - the same hazard as the open emergency ticket the conversation is about ("3栋楼道里，煤气味很重" when asked
     where the gas smell is): no second ticket. The safety advice and duty phone are said again with that ticket's
     number, and the text is the step's answer (the location, a note on the ticket);
   - any other hazard: its own emergency ticket, as in 1. A reply to staff is also added to the ticket it answered
     (staff asked, and it may be about that ticket); a rating comment is not saved as one, the rating waits in the
     offer back.
4. Never classified: choices (buttons, and digits or option words typed for them), commands, photos, locations.
"""
from __future__ import annotations

import functools
import re

from handlers import bind, complaint, fees, menu, my_tickets, repair, resume
from handlers.common import RESUME_FLOW, choice_of, clean_text, match_form, show_menu
from handlers.context import Ctx
from config.i18n import LANGS
from handlers.messages import Inbound

# The flows, wired in one visible place.
FLOWS = {"menu": menu, "repair": repair, "complaint": complaint, "fees": fees, "tickets": my_tickets, "bind": bind,
         "resume": resume}

# The states of rule 2 and 3 above, as (flow, state) strings (a stored state comes back as a plain str).
DESCRIBING = {(repair.FLOW, str(repair.S.DESCRIBE)), (complaint.FLOW, str(complaint.S.DETAILS))}
ABOUT_TICKET = {(my_tickets.FLOW, str(my_tickets.S.ADD_INFO)), (my_tickets.FLOW, str(my_tickets.S.RATE_COMMENT)),
                (repair.FLOW, str(repair.S.EMERGENCY_WHERE)), (repair.FLOW, str(repair.S.EMERGENCY_PHONE))}

COMMANDS = {"repair": "repair", "complain": "complaint", "complaint": "complaint", "fees": "fees",
            "mytickets": "tickets", "tickets": "tickets", "bind": "bind"}
CANCEL_WORDS = {"取消", "退出", "cancel", "/cancel", "quit"}
MENU_WORDS = {"菜单", "menu", "主菜单", "帮助", "help", "你好", "hi", "hello"}
LANG_WORDS = {"english": "en", "英文": "en", "中文": "zh", "chinese": "zh", "简体中文": "zh"}


def _typed_choice(ctx: Ctx, msg: Inbound) -> Inbound:
    """A digit or an option's words typed in answer to the last choices (WeChat, or a typing web user)."""
    offered = ctx.data.get("_offered") or []
    if msg.kind != "text" or not offered:
        return msg
    text = match_form(msg.text).lower()
    if text.isdigit() and 1 <= int(text) <= len(offered):
        return Inbound(kind="choice", choice=offered[int(text) - 1][0], text=msg.text)
    words = _words(text)
    for cid, lbl in offered:
        if words and words in (_words(lbl), cid.lower()):
            return Inbound(kind="choice", choice=cid, text=msg.text)
    return msg


@functools.lru_cache(maxsize=4096)  # the same few option labels, step after step
def _words(text: str) -> str:
    """An option's words as an owner types them: "📋 我的工单" -> "我的工单", "Yes, submit!" -> "yessubmit"."""
    return _NOT_WORDS.sub("", match_form(text).lower())


_NOT_WORDS = re.compile(r"[\W_]+")


async def handle(ctx: Ctx, msg: Inbound) -> None:
    """Run one message through propdesk's flows; replies and the next state end up on ctx."""
    # Bad input gets a clear answer, the same options again, and the flow stays where it was.
    again = [tuple(c) for c in ctx.data.get("_offered") or []]
    if msg.kind == "unsupported":
        ctx.say("common.unsupported", again, kind=msg.raw_type or "?")
        return
    if msg.kind == "text" and len(msg.text) > ctx.settings.max_text_length:
        ctx.say("common.too_long", again, limit=ctx.settings.max_text_length)
        return
    msg = _typed_choice(ctx, msg)
    word = match_form(msg.text).lower() if msg.kind == "text" else ""
    command = msg.command if msg.kind == "command" else ""

    if command == "cancel" or word in CANCEL_WORDS or choice_of(msg) == "cancel" and ctx.flow == "menu":
        was_busy = ctx.flow != "menu"
        show_menu(ctx, "common.cancelled" if was_busy else "menu.prompt")
    elif command == "lang" or choice_of(msg) == "lang":
        ctx.lang = "en" if ctx.lang == "zh" else "zh"
        await ctx.desk.set_language(ctx.person_id, ctx.lang)
        show_menu(ctx, "menu.lang_switched")
    elif word in LANG_WORDS and LANG_WORDS[word] in LANGS:
        ctx.lang = LANG_WORDS[word]
        await ctx.desk.set_language(ctx.person_id, ctx.lang)
        show_menu(ctx, "menu.lang_switched")
    elif choice_of(msg).startswith("rate:"):
        await my_tickets.start_rating(ctx, choice_of(msg)[5:])
    elif choice_of(msg).startswith("notfixed:"):
        await my_tickets.not_fixed(ctx, choice_of(msg)[9:])
    elif choice_of(msg).startswith("reply:"):
        await my_tickets.start_reply(ctx, choice_of(msg)[6:])
    elif command == "link":
        await _link_staff(ctx, msg.args)
    elif command == "start" and msg.args:
        await _deep_link(ctx, msg.args)
    elif command in ("start", "help", "menu") or word in MENU_WORDS:
        show_menu(ctx, "menu.welcome" if command == "start" else "menu.prompt")
    elif command in COMMANDS:
        await menu.STARTERS[COMMANDS[command]](ctx)
    elif command:
        ctx.say("common.unknown_command", command=command)
        show_menu(ctx)
    elif not await _hazard_first(ctx, msg):
        flow = FLOWS.get(ctx.flow, menu)
        await flow.step(ctx, msg)
    _remember_choices(ctx)


async def _hazard_first(ctx: Ctx, msg: Inbound) -> bool:
    """The rule in the module docstring; True when the emergency path took the message."""
    where = (ctx.flow, str(ctx.state))
    if msg.kind != "text" or ctx.flow == menu.FLOW or where in DESCRIBING:
        return False
    text = clean_text(msg.text)
    if not text:
        return False
    c = ctx.desk.classify(text)
    if c["urgency"] != "emergency":
        return False
    if where in ABOUT_TICKET and _same_hazard(ctx, c):
        ctx.say("emergency.same_ticket", number=ctx.data["number"], duty_phone=ctx.settings.duty_phone,
                advice=repair.safety_advice(ctx, ctx.data["hazard"]))
        return False
    if ctx.flow == RESUME_FLOW:  # the offer itself is not offered back: what it offered still is
        interrupted = ctx.data.get("_interrupted")
    else:
        interrupted = {"flow": ctx.flow, "state": str(ctx.state),
                       "data": {k: v for k, v in ctx.data.items() if k != "_offered"}}
    if where == (my_tickets.FLOW, str(my_tickets.S.ADD_INFO)) and ctx.data.get("number"):
        await ctx.desk.add_info(ctx.person_id, ctx.data["number"], text=text)
        ctx.say("emergency.also_added", number=ctx.data["number"])
    await repair.emergency_from(ctx, text, c, interrupted)
    return True


def _same_hazard(ctx: Ctx, c: dict) -> bool:
    """The conversation is about an open emergency ticket, and the text reports that ticket's hazard again."""
    hazard = ctx.data.get("hazard")
    return bool(ctx.data.get("number") and ctx.data.get("urgency", "emergency") == "emergency" and hazard
                and hazard in (repair.hazard_of(c), c["category"]))


async def _deep_link(ctx: Ctx, payload: str) -> None:
    """A QR code in a public place (e.g. 'place-A-L3' printed in lift 3-A) starts a repair right there."""
    estate_id, place = await ctx.desk.estate_of_place(payload)
    if not place:
        show_menu(ctx, "menu.welcome")
        return
    await repair.start(ctx, location=place, estate_id=estate_id)


async def _link_staff(ctx: Ctx, code: str) -> None:
    """A staff member links this chat account with the one-time code an administrator gave them."""
    if not code.strip():
        ctx.say("link.usage")
        return
    name = await ctx.desk.link_staff(ctx.person_id, ctx.channel, code.strip())
    ctx.say("link.ok" if name else "link.bad", name=name or "")


def _remember_choices(ctx: Ctx) -> None:
    """Keep the last offered choices so a typed digit or label can answer them."""
    last = next((r for r in reversed(ctx.replies) if r.choices), None)
    if last is not None:
        ctx.data["_offered"] = [(c.id, c.label) for c in last.choices]
    else:
        ctx.data.pop("_offered", None)
