"""Complaint (投诉): subject -> details -> photos -> may the other party learn who complained -> confirm."""
from __future__ import annotations

from enum import StrEnum

from handlers import repair
from handlers.common import (COMPLAINT_CATEGORIES, DONE, ask_estate, category_choices, choice_of, clean_text,
                             pick_estate_if_needed, show_menu, take_estate)
from handlers.context import Ctx
from handlers.messages import Inbound

FLOW = "complaint"
# "Do you want to complain anonymously?" Anonymity is toward the other party: staff still see who and where.
ANONYMITY = [("anon", "complaint.anon"), ("named", "complaint.named")]


class S(StrEnum):
    SUBJECT = "subject"
    DETAILS = "details"
    PHOTOS = "photos"
    ANONYMOUS = "anonymous"
    ESTATE = "estate"
    CONFIRM = "confirm"


async def start(ctx: Ctx, details: str = "", category: str = "") -> None:
    ctx.goto(FLOW, S.SUBJECT)
    ctx.data = {"kind": "complaint", "photos": []}
    if details:
        ctx.data["category"] = category if category in COMPLAINT_CATEGORIES else "other"
        ctx.data["subject"] = ctx.label("category", ctx.data["category"])
        await _details(ctx, details)
        return
    ctx.say("complaint.subject", category_choices(COMPLAINT_CATEGORIES))


async def _details(ctx: Ctx, text: str) -> None:
    c = ctx.desk.classify(text)
    ctx.data.update(description=text, urgency=c["urgency"] if c["urgency"] != "low" else "normal",
                    reasons=ctx.data.pop("subject_reasons", []) + c["reasons"], hazard=repair.hazard_of(c))
    if ctx.data.get("category", "other") == "other" and c["category"] in COMPLAINT_CATEGORIES:
        ctx.data["category"] = c["category"]
    if c["urgency"] == "emergency":
        ctx.data["urgency"] = "emergency"
        await repair.create_emergency(ctx)
        return
    ctx.state = S.PHOTOS
    ctx.say("complaint.photos", [DONE])


async def _confirm(ctx: Ctx) -> None:
    d = ctx.data
    ctx.state = S.CONFIRM
    ctx.say("complaint.summary", [("submit", "common.submit"), ("cancel", "common.cancel")],
            subject=d.get("subject", ""), description=d["description"], photos=len(d["photos"]),
            anonymous=ctx.t("common.yes" if d.get("anonymous") else "common.no"))


async def _submit(ctx: Ctx) -> None:
    """File it with who complained and where they live: staff see both, anonymous or not (anonymity is toward the
    other party, and staff keep it)."""
    d = ctx.data
    homes = [u for u in await ctx.desk.bound_units(ctx.person_id)
             if not d.get("estate_id") or u.estate_id == d["estate_id"]]
    if len(homes) == 1 and not d.get("unit_id"):
        d.update(unit_id=homes[0].id, estate_id=homes[0].estate_id)
    d["phone"] = d.get("phone") or await ctx.desk.person_phone(ctx.person_id)
    await repair.submit(ctx)


async def step(ctx: Ctx, msg: Inbound) -> None:
    d, choice, state = ctx.data, choice_of(msg), ctx.state
    text = clean_text(msg.text) if msg.kind == "text" else ""
    if state == S.SUBJECT:
        if choice.startswith("cat:"):
            d["category"] = choice[4:]
            d["subject"] = ctx.label("category", d["category"])
        elif text:
            # The owner's own words for the subject: labelled as the classifier labels the same words anywhere.
            c = ctx.desk.classify(text)
            d["category"] = c["category"] if c["category"] in COMPLAINT_CATEGORIES else "other"
            d["subject"] = text[:200]
            if d["category"] != "other":
                d["subject_reasons"] = c["reasons"]
        else:
            ctx.say("common.pick_one")
            return
        ctx.state = S.DETAILS
        ctx.say("complaint.details")
    elif state == S.DETAILS:
        if text:
            await _details(ctx, text)
        elif msg.kind == "photo":
            d["photos"].append(msg.photo_ref)
            ctx.say("complaint.details")
        else:
            ctx.say("complaint.details")
    elif state == S.PHOTOS:
        if msg.kind == "photo":
            d["photos"].append(msg.photo_ref)
            ctx.say("repair.photo_received", [DONE], n=len(d["photos"]))
        elif choice in ("done", "skip") or text:
            if text and not choice:
                d["description"] = f"{d['description']}\n{text}"
            ctx.state = S.ANONYMOUS
            ctx.say("complaint.anonymous", ANONYMITY)
        else:
            ctx.say("complaint.photos", [DONE])
    elif state == S.ANONYMOUS:
        if choice not in ("anon", "named"):
            ctx.say("common.pick_one")
            return
        d["anonymous"] = choice == "anon"
        if not await pick_estate_if_needed(ctx, S.CONFIRM):
            await _confirm(ctx)
    elif state == S.ESTATE:
        if take_estate(ctx, msg):
            await _confirm(ctx)
        else:
            ctx.say("common.pick_one")
    elif state == S.CONFIRM:
        if choice == "submit":
            await _submit(ctx)
        elif choice == "cancel":
            show_menu(ctx, "common.cancelled")
        else:
            ctx.say("common.pick_one")


async def ask(ctx: Ctx) -> None:
    """Ask the current state's question again (the owner comes back to this flow after an emergency)."""
    state = ctx.state
    if state == S.SUBJECT:
        ctx.say("complaint.subject", category_choices(COMPLAINT_CATEGORIES))
    elif state == S.DETAILS:
        ctx.say("complaint.details")
    elif state == S.PHOTOS:
        ctx.say("complaint.photos", [DONE])
    elif state == S.ANONYMOUS:
        ctx.say("complaint.anonymous", ANONYMITY)
    elif state == S.ESTATE:
        await ask_estate(ctx)
    elif state == S.CONFIRM:
        await _confirm(ctx)
