"""Small helpers shared by the flows: menus, yes/no, input parsing."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from config.i18n import t
from handlers.context import Ctx
from handlers.messages import Inbound
from handlers.ports import TicketView

MENU = [("repair", "menu.repair"), ("complaint", "menu.complaint"), ("fees", "menu.fees"),
        ("tickets", "menu.tickets"), ("bind", "menu.bind")]
YES_NO = [("yes", "common.yes"), ("no", "common.no")]
SKIP = ("skip", "common.skip")
DONE = ("done", "common.done")

REPAIR_CATEGORIES = ["water", "electrical", "gas", "lift", "doors_windows", "building", "public_facility",
                     "parking", "other"]
COMPLAINT_CATEGORIES = ["noise", "sanitation", "security", "neighbor", "service", "parking", "other"]
URGENCIES = ["emergency", "high", "normal", "low"]

_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑–—.()]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"(010|02\d|0[3-9]\d\d)(\d{7,8})")  # area codes: 010 and 02x have three digits, others four
_LOCAL = re.compile(r"[2-9]\d{6,7}")
_UNIT = re.compile(r"^\s*(\d+[a-z]?)\s*(?:栋|幢|号楼|座|-|/|\s)\s*(\d+)\s*(?:单元|-|/|\s)\s*(\d+)\s*(?:室|号)?\s*$",
                   re.I)


# A place an owner names in a message: a building (with its entrance, floor, room or spot: "1号楼电梯",
# "3栋2单元楼道"), a public place ("地下车库", "北门口"), or in English "tower 1", "building 3".
_PLACE_SPOTS = "电梯|电梯厅|大堂|门厅|楼道|走廊|楼梯间?|门口|地下室|天台|楼顶|外墙|配电房|管道井|水井|消防通道"
_PLACE = re.compile(
    r"(?:\d+|[一二三四五六七八九十]+)\s*(?:号楼|栋|幢|座)"
    r"(?:\s*\d+\s*单元)?(?:\s*\d+\s*(?:楼|层))?(?:\s*\d{3,4}\s*(?:室|号)?)?"
    rf"(?:\s*(?:{_PLACE_SPOTS}))?"
    r"|(?:地下)?(?:车库|停车场)(?:\s*[A-Za-z0-9]+\s*区)?"
    r"|小区(?:[东南西北]|大)?门口?|(?:[东南西北]|大)门口?|会所|游泳池|儿童(?:乐园|游乐场)|中心花园|垃圾(?:站|房)|水?泵房"
    r"|\b(?:building|tower|block)\s*\d+[a-z]?\b|\b(?:car ?park|garage)\b", re.I)


def place_in(text: str) -> str:
    """The place a message names, as the owner wrote it ("1号楼电梯"); "" when it names none."""
    m = _PLACE.search(text or "")
    return m.group(0).strip() if m else ""


def show_menu(ctx: Ctx, key: str = "menu.prompt") -> None:
    ctx.finish()
    ctx.say(key, MENU + [("lang", "menu.lang")])


def choice_of(msg: Inbound) -> str:
    """The chosen option's id, or a command/keyword the owner typed for one."""
    return msg.choice if msg.kind == "choice" else ""


def clean_text(text: str) -> str:
    """What the owner wrote, as it is stored and shown: only the surrounding blanks go."""
    return (text or "").strip()


def match_form(text: str) -> str:
    """The owner's text for matching only (commands, option words, numbers): half-width digits and letters
    (NFKC), never stored."""
    return unicodedata.normalize("NFKC", text or "").strip()


def parse_phone(text: str) -> str | None:
    """A phone number as owners write it, in one form: '139-0000-1111', '+86 139 0000 1111', '139 0000 1111' ->
    '13900001111'; '(0755) 8888 1234', '0755-88881234', '+86 755 8888 1234' -> '0755-88881234'; a local number
    without its area code ('8888 1234') as its digits. None when it is not a phone number."""
    digits = _PHONE_SEPARATORS.sub("", match_form(text))
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
            digits = digits if digits[:1] in ("1", "0") else "0" + digits  # a landline's area code without its 0
            break
    else:
        if len(digits) == 13 and digits.startswith("861"):
            digits = digits[2:]
    if _MOBILE.fullmatch(digits) or _LOCAL.fullmatch(digits):
        return digits
    landline = _LANDLINE.fullmatch(digits)
    return f"{landline.group(1)}-{landline.group(2)}" if landline else None


def parse_unit(text: str) -> str | None:
    """'3-2-1502', '3栋2单元1502', '3 2 1502' -> '3-2-1502'."""
    m = _UNIT.match(match_form(text))
    return f"{m.group(1).upper()}-{m.group(2)}-{m.group(3)}" if m else None


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 11 else phone


def category_choices(categories: list[str]) -> list[tuple[str, str]]:
    return [(f"cat:{c}", f"category.{c}") for c in categories]


def urgency_choices() -> list[tuple[str, str]]:
    return [(f"urg:{u}", f"urgency.{u}") for u in URGENCIES]


def when_text(lang: str, at: datetime, now: datetime) -> str:
    """A local time as people say it, relative to local `now`: "今天 15:30", "明天 12:30", "11月27日 09:00"."""
    days = (at.date() - now.date()).days
    key = "when.today" if days == 0 else "when.tomorrow" if days == 1 else "when.date"
    return t(lang, key, time=f"{at:%H:%M}", month=at.month, day=at.day, mon=at.strftime("%b"))


def promise_text(ctx: Ctx, ticket: TicketView) -> str:
    """What the owner is promised for a ticket just created: the claim deadline its SLA clock set (business hours
    included), "明天 12:30 前"; an emergency's in minutes, "5 分钟内"."""
    due, created = ticket.claim_due, ticket.created_at
    if due is None:
        return ctx.t("promise.soon")
    if ticket.urgency == "emergency":
        return ctx.t("promise.within_minutes", n=max(1, round((due - created).total_seconds() / 60)))
    return ctx.t("promise.by", when=when_text(ctx.lang, due, created))


async def pick_estate_if_needed(ctx: Ctx, next_state: str) -> bool:
    """Ask which estate when there are several and nothing tells; True when a question was asked."""
    if ctx.data.get("estate_id"):
        return False
    units = await ctx.desk.bound_units(ctx.person_id)
    estates = await ctx.desk.estates()
    if units and len({u.estate_id for u in units}) == 1:
        ctx.data["estate_id"] = units[0].estate_id
        return False
    if len(estates) == 1:
        ctx.data["estate_id"] = estates[0].id
        return False
    ctx.data["_after_estate"] = next_state
    ctx.state = "estate"
    ctx.say("common.which_estate", [(f"estate:{e.id}", e.name) for e in estates])
    return True


async def ask_estate(ctx: Ctx) -> None:
    estates = await ctx.desk.estates()
    ctx.say("common.which_estate", [(f"estate:{e.id}", e.name) for e in estates])


def take_estate(ctx: Ctx, msg: Inbound) -> bool:
    choice = choice_of(msg)
    if choice.startswith("estate:"):
        ctx.data["estate_id"] = int(choice.split(":", 1)[1])
        ctx.state = ctx.data.pop("_after_estate", ctx.state)
        return True
    return False


RESUME_FLOW = "resume"


def offer_back(ctx: Ctx, interrupted: dict) -> None:
    """After an emergency: "continue the repair you were reporting?" yes resumes `interrupted` where it stood."""
    ctx.flow, ctx.state, ctx.data = RESUME_FLOW, "offer", {"_interrupted": interrupted}
    ctx.say(f"resume.{interrupted['flow']}", YES_NO)
