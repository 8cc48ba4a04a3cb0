"""One entry point for every inbound message: global commands first, then the current flow's step."""
from __future__ import annotations

import functools
import re

from handlers import bind, complaint, fees, menu, my_tickets, repair
from handlers.common import choice_of, clean_text, show_menu
from handlers.context import Ctx
from config.i18n import LANGS
from handlers.messages import Inbound

# The flows, wired in one visible place.
FLOWS = {"menu": menu, "repair": repair, "complaint": complaint, "fees": fees, "tickets": my_tickets, "bind": bind}

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
    text = clean_text(msg.text).lower()
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
    return _NOT_WORDS.sub("", clean_text(text).lower())


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
    word = clean_text(msg.text).lower() if msg.kind == "text" else ""
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
    else:
        flow = FLOWS.get(ctx.flow, menu)
        await flow.step(ctx, msg)
    _remember_choices(ctx)


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
