"""WeCom (企业微信) group robots as staff groups: ticket cards as markdown, each with a signed link to the staff page.

Robots only send, so a card goes out once, carrying an expiring signed link to propdesk's mobile staff page
(`staff_page`), where a logged-in staff member works the ticket; the page always shows the live state.
A robot takes 20 messages a minute: a strict sliding window per robot keeps under it.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from bot.app import App
from bot.desk.group_cards import GroupCard
from bot.delivery.outbox_worker import DeliveryError
from bot.delivery.ratelimit import WindowsByKey
from bot.desk.signing import sign
from config.i18n import t

from bot.channels.web import staff_page

CHANNEL = "wecom"
MARKDOWN_BYTES = 4096
RATE_LIMITED = 45009  # "api freq out of limit"
log = logging.getLogger("propdesk.wecom")


def card_link(app: App, number: str) -> str:
    s = app.settings
    token = sign(s.secret_key, staff_page.LINK_PURPOSE, number, s.staff_link_hours * 3600)
    return f"{s.public_base_url.rstrip('/')}/staff/t/{quote(number)}?k={quote(token)}"


def clip_bytes(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


# WeCom markdown has no escape character: the characters that make markup (links, bold, code, headings, quotes,
# <font> and other tags) are shown as their full-width look-alikes instead, so an owner's words stay words.
_PLAIN = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "<": "＜", ">": "＞", "*": "＊", "`": "｀",
                        "#": "＃", "_": "＿", "~": "～", "|": "｜", "!": "！", "\\": "＼", "\r": " "})


def plain(text: str) -> str:
    """Text (an owner's words, a card's lines) made inert in WeCom markdown."""
    return text.translate(_PLAIN)


def card_markdown(card: GroupCard, link: str) -> str:
    """The card as WeCom markdown: a bold header, the details quoted, and the link to act on it. Only the markup
    written here is live: the card's text, which carries the owner's words, is made plain."""
    header, *details = plain(card.text).split("\n")
    footer = f"\n[👉 处理工单 Work this ticket]({link})"
    body = "\n".join(f"> {line}" for line in details if line and "回复此消息" not in line and "Reply to" not in line)
    return clip_bytes(f"**{header}**\n{body}", MARKDOWN_BYTES - len(footer.encode())) + footer


class WeComChannel:
    channel = CHANNEL

    def __init__(self, app: App):
        self.app = app
        self.base = app.settings.wecom_api_base_url.rstrip("/")
        self.windows = WindowsByKey(app.settings.wecom_robot_limit, app.settings.wecom_robot_period_seconds)
        self.http: aiohttp.ClientSession | None = None

    def setup_routes(self, webapp: web.Application) -> None:
        staff_page.setup(webapp, self.app)

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        if self.http:
            await self.http.close()

    async def _post(self, key: str, body: dict[str, Any]) -> None:
        if self.http is None:
            raise RuntimeError("the WeCom channel is not started")
        async with self.windows.get(key):
            try:
                async with self.http.post(f"{self.base}/cgi-bin/webhook/send", params={"key": key},
                                          json=body) as resp:
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise DeliveryError(f"wecom unreachable: {exc!r}") from exc
        code = int(data.get("errcode", 0) or 0)
        if code == RATE_LIMITED:
            raise DeliveryError("wecom robot rate limit", retry_after=60)
        if code:
            raise DeliveryError(f"wecom {code}: {data.get('errmsg', '')}", permanent=code != -1)

    async def put_card(self, chat_id: str, card: GroupCard, message_id: str | None) -> str:
        if message_id:  # robots cannot edit: the card went out once, its link shows the ticket as it is now
            return message_id
        await self._post(chat_id, {"msgtype": "markdown",
                                   "markdown": {"content": card_markdown(card, card_link(self.app, card.number))}})
        return "robot"

    digest_size = 15

    def free(self, chat_id: str) -> int:
        return self.windows.get(chat_id).backlog_free()

    async def put_digest(self, chat_id: str, cards: list[GroupCard]) -> str:
        """Several new tickets in one markdown message, each with its header and its own staff-page link."""
        lines = [f"**📋 {len(cards)} 张新工单 New tickets**"]
        lang = self.app.settings.staff_lang
        for card in cards:
            what = t(lang, "card.description", description=card.description.replace("\n", " "))[:60]
            lines.append(f"> {plain(card.header)} {plain(what)} [处理 Open]({card_link(self.app, card.number)})")
        await self._post(chat_id, {"msgtype": "markdown",
                                   "markdown": {"content": clip_bytes("\n".join(lines), MARKDOWN_BYTES)}})
        return "robot"

    async def send(self, chat_id: str, payload: dict, reply_to: str | None = None) -> str | None:
        text = payload.get("text", "") or "📷"
        await self._post(chat_id, {"msgtype": "text", "text": {"content": clip_bytes(text, 2048)}})
        return None
