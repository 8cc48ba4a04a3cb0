"""Repair (报修): describe -> confirm the classifier's guess -> where -> photos -> visit time -> phone -> confirm.

An emergency skips the queue: the ticket is created from the first message, the owner gets safety advice and the
duty phone, and the remaining questions become optional additions to that ticket. A hazard reported in the middle of
another flow takes the same path (`emergency_from`, called by the router); the interrupted flow is offered back
when the emergency's optional questions are done.
"""
from __future__ import annotations

from enum import StrEnum

from handlers.common import (COMPLAINT_CATEGORIES, DONE, MENU, SKIP, REPAIR_CATEGORIES, ask_estate, category_choices,
                             choice_of, clean_text, mask_phone, offer_back, parse_phone, pick_estate_if_needed,
                             place_in, promise_text, show_menu, take_estate, urgency_choices)
from config.i18n import has
from handlers.context import Ctx
from handlers.messages import Inbound
from handlers.ports import NewTicket

FLOW = "repair"


class S(StrEnum):
    DESCRIBE = "describe"
    CONFIRM_CLASS = "confirm_class"
    PICK_CATEGORY = "pick_category"
    PICK_URGENCY = "pick_urgency"
    WHERE = "where"
    ESTATE = "estate"
    PUBLIC_PLACE = "public_place"
    PHOTOS = "photos"
    VISIT_TIME = "visit_time"
    PHONE = "phone"
    SUMMARY = "summary"
    EMERGENCY_WHERE = "emergency_where"
    EMERGENCY_PHONE = "emergency_phone"


VISIT_TIMES = ["asap", "today", "tomorrow_am", "tomorrow_pm", "weekend"]


async def start(ctx: Ctx, description: str = "", location: str = "", estate_id: int | None = None,
                photo: str = "") -> None:
    ctx.goto(FLOW, S.DESCRIBE)
    ctx.data = {"kind": "repair", "photos": [photo] if photo else []}
    if location:
        ctx.data.update(location_text=location, location_fixed=True)
    if estate_id:
        ctx.data["estate_id"] = estate_id
    if description:
        await described(ctx, description)
    else:
        ctx.say("repair.describe_at" if location else "repair.describe", place=location)


async def described(ctx: Ctx, text: str) -> None:
    """Classify the description; an emergency becomes a ticket before any other question."""
    c = ctx.desk.classify(text)
    category = c["category"] if c["category"] in REPAIR_CATEGORIES else "other"
    ctx.data.update(description=text, category=category, urgency=c["urgency"], reasons=c["reasons"],
                    hazard=hazard_of(c))
    if c["urgency"] == "emergency":
        await create_emergency(ctx)
        return
    ctx.state = S.CONFIRM_CLASS
    _ask_class(ctx)


def _ask_class(ctx: Ctx) -> None:
    d = ctx.data
    ctx.say("repair.classified", [("ok", "repair.class_ok"), ("cat", "repair.class_cat"),
                                  ("urg", "repair.class_urg")],
            category=ctx.label("category", d["category"]), urgency=ctx.label("urgency", d["urgency"]))


def hazard_of(c: dict) -> str:
    """The hazard a classification reports, named as the safety advice is: a fire wins over the category it came
    with (smoke from a flat is labelled by its keywords, e.g. "doors_windows", and that advice would be wrong)."""
    if c["category"] == "fire" or any(r == "fire" or r.endswith(":fire") for r in c["reasons"]):
        return "fire"
    return c["category"]


async def emergency_from(ctx: Ctx, text: str, c: dict, interrupted: dict | None = None) -> None:
    """A hazard reported in the middle of something else: its own emergency ticket, the same path as a description.

    `interrupted` (flow, state, data) is kept and offered back once the emergency's optional questions are done.
    """
    kind = "complaint" if c["kind"] == "complaint" else "repair"
    categories = COMPLAINT_CATEGORIES if kind == "complaint" else REPAIR_CATEGORIES
    category = c["category"] if c["category"] in categories else "other"
    ctx.goto(FLOW, S.DESCRIBE)
    ctx.data = {"kind": kind, "photos": [], "description": text, "category": category, "urgency": "emergency",
                "reasons": c["reasons"], "hazard": hazard_of(c)}
    if kind == "complaint":
        ctx.data["subject"] = ctx.label("category", category)
    if interrupted:
        ctx.data["_interrupted"] = interrupted
    await create_emergency(ctx)


async def create_emergency(ctx: Ctx) -> None:
    """The ticket at once, where the words say ("1号楼电梯困人了"); with no place named, at the owner's only home,
    marked as such for staff, and the owner is asked where it is."""
    d = ctx.data
    units = await ctx.desk.bound_units(ctx.person_id)
    if not d.get("location_text") and place_in(d.get("description", "")):
        d["location_text"] = place_in(d["description"])[:300]
    if not d.get("location_text") and len(units) == 1:
        d.update(unit_id=units[0].id, estate_id=units[0].estate_id, at_home=True)
    elif not d.get("estate_id"):
        estates = await ctx.desk.estates()
        if len(estates) == 1:
            d["estate_id"] = estates[0].id
        elif units and len({u.estate_id for u in units}) == 1:
            d["estate_id"] = units[0].estate_id
    phone = await ctx.desk.person_phone(ctx.person_id)
    ticket = await ctx.desk.create_ticket(ctx.person_id, ctx.channel,
                                          new_ticket(d, urgency="emergency", contact_phone=phone))
    d["hazard"] = d.get("hazard") or d["category"]
    ctx.say("repair.emergency_created", number=ticket.number, advice=safety_advice(ctx, d["hazard"]),
            duty_phone=ctx.settings.duty_phone, promise=promise_text(ctx, ticket))
    d["number"] = ticket.number
    d["phone_known"] = bool(phone)
    if not d.get("location_text"):
        ctx.goto(FLOW, S.EMERGENCY_WHERE)
        _ask_emergency_where(ctx, units)
    else:
        await _emergency_phone(ctx)


def _ask_emergency_where(ctx: Ctx, units: list | None = None) -> None:
    home = ctx.data.get("home_label") or (units[0].label if ctx.data.get("at_home") and units else "")
    if home:
        ctx.data["home_label"] = home
        ctx.say("repair.emergency_where_home", [("home", ctx.t("repair.at_home", unit=home)), SKIP], unit=home)
    else:
        ctx.say("repair.emergency_where", [SKIP])




def safety_advice(ctx: Ctx, hazard: str) -> str:
    # Advice per hazard lives in the message catalogs: a new "safety.<hazard>" text is used without code.
    return ctx.t(f"safety.{hazard}" if has(ctx.lang, f"safety.{hazard}") else "safety.general")


async def _emergency_phone(ctx: Ctx) -> None:
    if ctx.data.get("phone_known"):
        _emergency_done(ctx)
        return
    ctx.goto(FLOW, S.EMERGENCY_PHONE)
    ctx.say("repair.emergency_phone", [SKIP])


def _emergency_done(ctx: Ctx) -> None:
    """The emergency's questions are over: back to the menu, or to the flow the hazard interrupted."""
    number, interrupted = ctx.data["number"], ctx.data.get("_interrupted")
    if interrupted:
        ctx.say("repair.emergency_done", number=number)
        offer_back(ctx, interrupted)
        return
    ctx.finish()
    ctx.say("repair.emergency_done", MENU, number=number)


async def _ask_where(ctx: Ctx) -> None:
    if ctx.data.get("location_fixed"):
        if not await pick_estate_if_needed(ctx, S.PHOTOS):
            await _ask_photos(ctx)
        return
    ctx.state = S.WHERE
    await _where_question(ctx)


async def _where_question(ctx: Ctx) -> None:
    units = await ctx.desk.bound_units(ctx.person_id)
    choices = [(f"unit:{u.id}", ctx.t("repair.my_unit", unit=u.label)) for u in units]
    ctx.say("repair.where", choices + [("public", "repair.public_area")])


async def _ask_photos(ctx: Ctx) -> None:
    ctx.state = S.PHOTOS
    ctx.say("repair.photos", [DONE])


async def _ask_visit_time(ctx: Ctx) -> None:
    ctx.state = S.VISIT_TIME
    ctx.say("repair.visit_time", [(f"vt:{v}", f"visit.{v}") for v in VISIT_TIMES])


async def _ask_phone(ctx: Ctx) -> None:
    ctx.state = S.PHONE
    phone = await ctx.desk.person_phone(ctx.person_id)
    ctx.data["known_phone"] = phone
    if phone:
        ctx.say("repair.phone_known", [("use_known", ctx.t("repair.use_phone", phone=mask_phone(phone)))])
    else:
        ctx.say("repair.phone")


async def summary(ctx: Ctx) -> None:
    d = ctx.data
    ctx.state = S.SUMMARY
    ctx.say("repair.summary", [("submit", "common.submit"), ("cancel", "common.cancel")],
            kind=ctx.label("kind", d["kind"]), category=ctx.label("category", d["category"]),
            urgency=ctx.label("urgency", d["urgency"]), description=d["description"],
            location=d.get("location_label") or d.get("location_text") or "-",
            photos=len(d.get("photos", [])), visit=d.get("visit_label", "-"), phone=mask_phone(d.get("phone", "")))


def new_ticket(d: dict, *, urgency: str, contact_phone: str, preferred_time: str = "",
               anonymous: bool = False) -> NewTicket:
    """The ticket a repair or complaint conversation has gathered in its data."""
    return NewTicket(kind=d["kind"], category=d["category"], urgency=urgency, description=d["description"],
                     subject=d.get("subject", ""), reasons=d.get("reasons", []), estate_id=d.get("estate_id"),
                     unit_id=d.get("unit_id"), location_text=d.get("location_text", ""),
                     photos=d.get("photos", []), preferred_time=preferred_time, contact_phone=contact_phone,
                     anonymous=anonymous, at_reporter_home=bool(d.get("at_home")))


async def submit(ctx: Ctx) -> None:
    d = ctx.data
    ticket = await ctx.desk.create_ticket(ctx.person_id, ctx.channel, new_ticket(
        d, urgency=d["urgency"], preferred_time=d.get("visit_label", ""), contact_phone=d.get("phone", ""),
        anonymous=d.get("anonymous", False)))
    ctx.finish()
    ctx.say("ticket.created", MENU, number=ticket.number, promise=promise_text(ctx, ticket))


async def step(ctx: Ctx, msg: Inbound) -> None:
    d, choice, state = ctx.data, choice_of(msg), ctx.state
    text = clean_text(msg.text) if msg.kind == "text" else ""

    if state == S.DESCRIBE:
        if msg.kind == "photo":
            d.setdefault("photos", []).append(msg.photo_ref)
            ctx.say("repair.photo_then_text")
        elif text:
            await described(ctx, text)
        else:
            ctx.say("repair.describe")
    elif state == S.CONFIRM_CLASS:
        if choice == "ok":
            await _ask_where(ctx)
        elif choice == "cat":
            ctx.state = S.PICK_CATEGORY
            ctx.say("repair.pick_category", category_choices(REPAIR_CATEGORIES))
        elif choice == "urg":
            ctx.state = S.PICK_URGENCY
            ctx.say("repair.pick_urgency", urgency_choices())
        else:
            ctx.say("common.pick_one")
    elif state == S.PICK_CATEGORY:
        if choice.startswith("cat:"):
            d["category"] = choice[4:]
            d.setdefault("reasons", []).append("owner:category")
            await _ask_where(ctx)
        else:
            ctx.say("common.pick_one")
    elif state == S.PICK_URGENCY:
        if choice.startswith("urg:"):
            d["urgency"] = choice[4:]
            d.setdefault("reasons", []).append("owner:urgency")
            if d["urgency"] == "emergency":
                await create_emergency(ctx)
            else:
                await _ask_where(ctx)
        else:
            ctx.say("common.pick_one")
    elif state == S.WHERE:
        if choice.startswith("unit:"):
            unit_id = int(choice[5:])
            unit = next((u for u in await ctx.desk.bound_units(ctx.person_id) if u.id == unit_id), None)
            if unit is None:
                ctx.say("common.pick_one")
                return
            d.update(unit_id=unit.id, estate_id=unit.estate_id, location_label=unit.label)
            await _ask_photos(ctx)
        elif choice == "public":
            if not await pick_estate_if_needed(ctx, S.PUBLIC_PLACE):
                ctx.state = S.PUBLIC_PLACE
                ctx.say("repair.public_place")
        elif msg.kind == "location":
            d["location_text"] = f"{msg.text or ''} ({msg.latitude:.5f},{msg.longitude:.5f})".strip()
            if not await pick_estate_if_needed(ctx, S.PHOTOS):
                await _ask_photos(ctx)
        elif text:
            d["location_text"] = text[:300]
            if not await pick_estate_if_needed(ctx, S.PHOTOS):
                await _ask_photos(ctx)
        else:
            ctx.say("common.pick_one")
    elif state == S.ESTATE:
        if take_estate(ctx, msg):
            if ctx.state == S.PUBLIC_PLACE:
                ctx.say("repair.public_place")
            else:
                await _ask_photos(ctx)
        else:
            ctx.say("common.pick_one")
    elif state == S.PUBLIC_PLACE:
        if text or msg.kind == "location":
            loc = text or f"({msg.latitude:.5f},{msg.longitude:.5f})"
            d["location_text"] = loc[:300]
            await _ask_photos(ctx)
        else:
            ctx.say("repair.public_place")
    elif state == S.PHOTOS:
        if msg.kind == "photo":
            d.setdefault("photos", []).append(msg.photo_ref)
            ctx.say("repair.photo_received", [DONE], n=len(d["photos"]))
        elif choice in ("done", "skip") or text:
            if text and choice == "":
                d["description"] = f"{d['description']}\n{text}"
            await _ask_visit_time(ctx)
        else:
            ctx.say("repair.photos", [DONE])
    elif state == S.VISIT_TIME:
        if choice.startswith("vt:"):
            d["visit_label"] = ctx.t(f"visit.{choice[3:]}")
        elif text:
            d["visit_label"] = text[:100]
        else:
            ctx.say("common.pick_one")
            return
        await _ask_phone(ctx)
    elif state == S.PHONE:
        if choice == "use_known" and d.get("known_phone"):
            d["phone"] = d["known_phone"]
        elif text and parse_phone(text):
            d["phone"] = parse_phone(text)
        else:
            ctx.say("repair.phone_invalid")
            return
        await summary(ctx)
    elif state == S.SUMMARY:
        if choice == "submit":
            await submit(ctx)
        elif choice == "cancel":
            show_menu(ctx, "common.cancelled")
        else:
            ctx.say("common.pick_one")
    elif state == S.EMERGENCY_WHERE:
        if choice == "skip":  # filed at the owner's home (marked so for staff), or nowhere yet
            await _emergency_phone(ctx)
        elif choice == "home" and d.get("at_home"):
            await ctx.desk.update_ticket(ctx.person_id, d["number"], location_text="")  # confirmed: no mark
            ctx.say("repair.emergency_noted")
            await _emergency_phone(ctx)
        elif text or msg.kind == "location":
            loc = text or f"({msg.latitude:.5f},{msg.longitude:.5f})"
            # Somewhere else than the home it was filed at: the place the owner names, and no longer the home.
            extra = {"unit_id": None} if d.pop("at_home", False) else {}
            await ctx.desk.update_ticket(ctx.person_id, d["number"], location_text=loc[:300], **extra)
            ctx.say("repair.emergency_noted")
            await _emergency_phone(ctx)
        elif msg.kind == "photo":
            await ctx.desk.add_info(ctx.person_id, d["number"], photo=msg.photo_ref)
            ctx.say("repair.emergency_noted")
        else:
            _ask_emergency_where(ctx)
    elif state == S.EMERGENCY_PHONE:
        if choice == "skip" or (text and parse_phone(text)):
            if text:
                await ctx.desk.update_ticket(ctx.person_id, d["number"], contact_phone=parse_phone(text))
            _emergency_done(ctx)
        elif text and not any(ch.isdigit() for ch in text):
            # Words, not a mistyped number ("the smoke is getting thicker"): on the emergency path nothing the owner
            # says is lost, it becomes a note on the ticket; then the phone question again.
            await ctx.desk.add_info(ctx.person_id, d["number"], text=text)
            ctx.say("repair.emergency_noted")
            ctx.say("repair.emergency_phone", [SKIP])
        else:
            ctx.say("repair.phone_invalid", [SKIP])


async def ask(ctx: Ctx) -> None:
    """Ask the current state's question again (the owner comes back to this flow after an emergency)."""
    d, state = ctx.data, ctx.state
    if state == S.DESCRIBE:
        location = d.get("location_text", "") if d.get("location_fixed") else ""
        ctx.say("repair.describe_at" if location else "repair.describe", place=location)
    elif state == S.CONFIRM_CLASS:
        _ask_class(ctx)
    elif state == S.PICK_CATEGORY:
        ctx.say("repair.pick_category", category_choices(REPAIR_CATEGORIES))
    elif state == S.PICK_URGENCY:
        ctx.say("repair.pick_urgency", urgency_choices())
    elif state == S.WHERE:
        await _where_question(ctx)
    elif state == S.ESTATE:
        await ask_estate(ctx)
    elif state == S.PUBLIC_PLACE:
        ctx.say("repair.public_place")
    elif state == S.PHOTOS:
        await _ask_photos(ctx)
    elif state == S.VISIT_TIME:
        await _ask_visit_time(ctx)
    elif state == S.PHONE:
        await _ask_phone(ctx)
    elif state == S.SUMMARY:
        await summary(ctx)
    elif state == S.EMERGENCY_WHERE:
        _ask_emergency_where(ctx)
    elif state == S.EMERGENCY_PHONE:
        ctx.say("repair.emergency_phone", [SKIP])
