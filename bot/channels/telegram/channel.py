"""Telegram: owners in private chats and staff groups, over python-telegram-bot (polling or our own webhook).

The adapter only translates: a Telegram message or button press becomes an `Inbound` for the engine, and the
engine's `Reply`s become messages with inline keyboards. Staff groups are handled in `telegram_staff`.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import warnings
from typing import Any, Callable, Coroutine

from aiohttp import web
from telegram import (BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeAllGroupChats,
                      Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters, Update, User)
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning
from telegram.ext import (AIORateLimiter, Application, CallbackQueryHandler, ContextTypes, ExtBot, MessageHandler,
                          filters)

from bot.app import App
from bot.desk.group_cards import GroupCard
from bot.delivery.outbox_worker import DIGEST, DeliveryError
from bot.conversation.engine import Sender
from bot.delivery.ratelimit import WindowsByKey
from bot.ops.lease import Lease
from config.i18n import label, t
from handlers.messages import Inbound, Reply, merge_replies

from bot.channels.telegram.transport import AiohttpRequest
from bot.channels.telegram.staff_groups import TelegramStaff

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
log = logging.getLogger("propdesk.telegram")
# TelegramChannel.send_text calls sendMessage through do_api_request on purpose (see there).
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage' instead", category=PTBUserWarning)

# (command, Chinese description, English description): registered with setMyCommands in both languages.
OWNER_COMMANDS = [("start", "主菜单", "Main menu"), ("repair", "报修", "Report a repair"),
                  ("complain", "投诉", "Make a complaint"), ("fees", "缴费查询", "Fees and payments"),
                  ("mytickets", "我的工单", "My tickets"), ("bind", "绑定房屋", "Bind my home"),
                  ("cancel", "取消当前操作", "Cancel"), ("help", "帮助", "Help"),
                  ("lang", "中文 / English", "Language")]
STAFF_COMMANDS = [("open", "本群未完成工单", "Open tickets of this group"), ("mine", "我负责的工单", "My tickets"),
                  ("ticket", "查看工单", "Show a ticket")]
# Message content that has no meaning for the flows, by the attribute that carries it.
UNSUPPORTED = ("sticker", "voice", "video_note", "video", "audio", "animation", "document", "poll", "dice", "game")


def inbound_from(message: Message) -> Inbound:
    """Translate a Telegram message into the core's inbound message."""
    if message.text:
        return Inbound.text_or_command(message.text)
    if message.photo:
        return Inbound(kind="photo", photo_ref="tg:" + message.photo[-1].file_id, text=message.caption or "")
    if message.venue:
        loc = message.venue.location
        return Inbound(kind="location", latitude=loc.latitude, longitude=loc.longitude,
                       text=f"{message.venue.title} {message.venue.address}".strip())
    if message.location:
        return Inbound(kind="location", latitude=message.location.latitude, longitude=message.location.longitude)
    if message.contact and message.contact.phone_number:
        return Inbound(kind="text", text=message.contact.phone_number)
    kind = next((name for name in UNSUPPORTED if getattr(message, name, None)), "message")
    return Inbound(kind="unsupported", raw_type=kind, text=message.caption or "")


def keyboard(choices: list[dict]) -> InlineKeyboardMarkup | None:
    """Choices as inline buttons: two a row, one when a label is long."""
    if not choices:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for c in choices:
        button = InlineKeyboardButton(c["label"][:64], callback_data=c["id"][:64])
        if rows and len(rows[-1]) == 1 and len(c["label"]) <= 12 and len(rows[-1][0].text) <= 12:
            rows[-1].append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at line breaks (else at the limit) so no piece exceeds Telegram's limit."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return pieces + [text] if text or not pieces else pieces


def as_delivery_error(exc: TelegramError) -> DeliveryError:
    if isinstance(exc, RetryAfter):
        retry = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else exc.retry_after
        return DeliveryError(str(exc), retry_after=float(retry))
    if isinstance(exc, (Forbidden, BadRequest)):  # blocked by the user, chat gone, malformed: retrying won't help
        return DeliveryError(str(exc), permanent=True)
    return DeliveryError(str(exc))  # network errors and timeouts: retry with backoff


JSONDict = dict[str, Any]  # a Bot API answer, as PTB's rate limiter passes it on


class GroupWindowLimiter(AIORateLimiter):
    """PTB's limiter (overall rate, 429 retried after retry_after) with a strict sliding window per group."""

    def __init__(self, overall_per_second: float, group_limit: int, group_period: float, max_retries: int):
        super().__init__(overall_max_rate=overall_per_second, overall_time_period=1 if overall_per_second else 0,
                         group_max_rate=0,
                         group_time_period=0, max_retries=max_retries)
        self.groups = WindowsByKey(group_limit, group_period)

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
                              args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> bool | JSONDict | list[JSONDict]:
        chat_id: Any = data.get("chat_id")  # whatever the call was given: an int, a str, or nothing
        try:
            chat_id = int(chat_id)
        except (TypeError, ValueError):
            pass
        if (isinstance(chat_id, int) and chat_id < 0) or isinstance(chat_id, str):
            async with self.groups.get(chat_id):
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


class TelegramChannel:
    channel = CHANNEL

    def __init__(self, app: App):
        self.app = app
        s = app.settings
        base = s.telegram_api_base_url.rstrip("/")
        self.limiter = GroupWindowLimiter(s.telegram_overall_per_second, s.telegram_group_limit,
                                          s.telegram_group_period_seconds, s.telegram_max_retries)
        if not s.telegram_token:
            raise InvalidToken("You must pass the token you received from https://t.me/Botfather!")
        builder = (Application.builder().token(s.telegram_token).base_url(f"{base}/bot")
                   .base_file_url(f"{base}/file/bot")
                   .request(AiohttpRequest(proxy=s.telegram_proxy))
                   .get_updates_request(AiohttpRequest(connection_pool_size=1, proxy=s.telegram_proxy))
                   .rate_limiter(self.limiter))
        self.webhook = bool(s.telegram_webhook_url)
        self._poller: asyncio.Task | None = None
        self._poll_stop = asyncio.Event()
        self.secret = s.telegram_webhook_secret or secrets.token_urlsafe(24)
        if self.webhook:
            builder = builder.updater(None)
        # Updates are processed concurrently (a slow Bot API call for one owner must not hold up the others);
        # one chat's updates still run one after another, in order, under a per-chat lock.
        self.ptb = builder.concurrent_updates(s.telegram_concurrent_updates).build()
        self._chat_locks: dict[int, list] = {}
        app.media.register("tg", self.download)
        self.staff = TelegramStaff(self)
        self.ptb.add_handler(CallbackQueryHandler(self.staff.on_button, pattern=r"^tk:"))
        self.ptb.add_handler(CallbackQueryHandler(self.on_private_choice))
        self.ptb.add_handler(MessageHandler(filters.ChatType.PRIVATE, self.on_private_message))
        for handler in self.staff.group_handlers():
            self.ptb.add_handler(handler)
        self.ptb.add_error_handler(self.on_error)

    @property
    def bot(self) -> ExtBot[int]:
        return self.ptb.bot

    # -- lifecycle -------------------------------------------------------------------------------------------
    def setup_routes(self, webapp: web.Application) -> None:
        if self.webhook:
            webapp.router.add_post(self.app.settings.telegram_webhook_path, self.on_webhook)

    async def start(self) -> None:
        await self.ptb.initialize()
        await self.register_commands()
        await self.ptb.start()
        allowed = ["message", "callback_query"]
        url = self.app.settings.telegram_webhook_url
        if self.webhook and url:  # (the same: `webhook` is whether the URL is set)
            await self.bot.set_webhook(url, secret_token=self.secret,
                                       allowed_updates=allowed)
        else:
            # One worker long-polls (Telegram answers a second poller with 409 Conflict): whoever holds the lease.
            self._poll_stop = asyncio.Event()
            lease = Lease(self.app.db, f"telegram-poller:{self.bot.id}", self._start_polling, self._stop_polling)
            self._poller = asyncio.create_task(lease.run(self._poll_stop))
        log.info("telegram channel up as @%s (%s)", self.bot.username, "webhook" if self.webhook else "polling")

    async def _start_polling(self) -> None:
        await self.bot.delete_webhook()
        if self.ptb.updater is None:  # built with an updater: always there
            raise RuntimeError("the Telegram application has no updater to poll with")
        await self.ptb.updater.start_polling(allowed_updates=["message", "callback_query"], poll_interval=0.0,
                                             timeout=10)
        self.app.metrics.poller.set(1)

    async def _stop_polling(self) -> None:
        self.app.metrics.poller.set(0)
        if self.ptb.updater and self.ptb.updater.running:
            await self.ptb.updater.stop()

    async def stop(self) -> None:
        if self._poller is not None:
            self._poll_stop.set()
            await self._poller
        if self.ptb.updater and self.ptb.updater.running:
            await self.ptb.updater.stop()
        if self.ptb.running:
            await self.ptb.stop()
        await self.ptb.shutdown()

    async def register_commands(self) -> None:
        for lang, idx in (("zh", 1), ("en", 2), (None, 1)):
            await self.bot.set_my_commands([BotCommand(c[0], c[idx]) for c in OWNER_COMMANDS],
                                           scope=BotCommandScopeAllPrivateChats(), language_code=lang)
            await self.bot.set_my_commands([BotCommand(c[0], c[idx]) for c in STAFF_COMMANDS],
                                           scope=BotCommandScopeAllGroupChats(), language_code=lang)

    async def on_webhook(self, request: web.Request) -> web.Response:
        """Telegram's POST: only with the right secret header; the update is queued for PTB to process."""
        given = request.headers.get(WEBHOOK_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self.bot)
        except Exception:  # noqa: BLE001 - not an update
            return web.json_response({"error": "malformed update"}, status=400)
        await self.ptb.update_queue.put(update)
        return web.json_response({"ok": True})

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)

    # -- owners --------------------------------------------------------------------------------------------------
    def sender(self, user: User, chat: Chat) -> Sender:
        return Sender(CHANNEL, str(chat.id), str(user.id), user.full_name or "", user.language_code)

    async def on_private_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_user is None or update.effective_message is None:
            return
        await self.converse(update, inbound_from(update.effective_message))

    async def on_private_choice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        await query.answer()
        if query.message is None or query.message.chat.type != "private":
            return
        await self.converse(update, Inbound(kind="choice", choice=query.data or ""))

    async def converse(self, update: Update, msg: Inbound) -> None:
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return
        chat_id = chat.id
        entry = self._chat_locks.setdefault(chat_id, [asyncio.Lock(), 0])  # the lock, and how many use it
        entry[1] += 1
        try:
            async with entry[0]:
                replies = await self.app.engine.handle(self.sender(user, chat), msg)
                await self.reply(chat_id, replies)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._chat_locks[chat_id]

    async def reply(self, chat_id: int, replies: list[Reply]) -> None:
        """Send the engine's answers now; what Telegram does not take is queued for the delivery worker."""
        replies = merge_replies(replies, TEXT_LIMIT)
        for i, reply in enumerate(replies):
            try:
                await self.send(str(chat_id), reply.as_dict())
            except DeliveryError as exc:
                log.warning("reply to %s not sent (%s): queued for retry", chat_id, exc)
                await self.app.queue_messages(CHANNEL, str(chat_id), [r.as_dict() for r in replies[i:]])
                return

    # -- photos --------------------------------------------------------------------------------------------------
    async def download(self, file_id: str) -> bytes:
        """A Telegram photo's bytes (for the other channels' staff sides)."""
        return bytes(await (await self.bot.get_file(file_id)).download_as_bytearray())

    async def photo_input(self, ref: str) -> str | bytes | None:
        """A photo reference as Telegram takes it: our own file_id, else the bytes (a web upload, a WeChat
        photo), or None when they cannot be had."""
        kind, _, value = ref.partition(":")
        if kind == "tg":
            return value
        return await self.app.media.fetch(ref)

    # -- the delivery worker's outlet ----------------------------------------------------------------------------

    async def send(self, chat_id: str, payload: dict, reply_to: str | None = None) -> str | None:
        text = payload.get("text", "")
        markup = keyboard(payload.get("choices") or [])
        reply = ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True) if reply_to else None
        photo = await self.photo_input(payload["photo_ref"]) if payload.get("photo_ref") else None
        try:
            if photo is not None:
                caption_fits = len(text) <= CAPTION_LIMIT
                sent = await self.bot.send_photo(int(chat_id), photo, caption=text if caption_fits else None,
                                                 reply_markup=markup if caption_fits else None,
                                                 reply_parameters=reply)
                if caption_fits:
                    return str(sent.message_id)
            pieces = split_text(text or "📷")
            for n, piece in enumerate(pieces):
                last = n == len(pieces) - 1
                message_id = await self.send_text(int(chat_id), piece, markup if last else None,
                                                  reply if n == 0 else None)
            return str(message_id)
        except TelegramError as exc:
            raise as_delivery_error(exc) from exc

    async def send_text(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                        reply: ReplyParameters | None = None) -> int:
        """sendMessage, keeping only the new message's id: PTB's send_message would rebuild the whole Message
        Telegram returns, keyboard and all, which costs more than the call (bench/telegram_updates.py). Same
        request, rate limiter and errors."""
        params = {"chat_id": chat_id, "text": text, "reply_markup": markup, "reply_parameters": reply}
        result = await self.bot.do_api_request("sendMessage", api_kwargs=params)
        return int(result["message_id"])

    digest_size = 50

    def free(self, chat_id: str) -> int:
        """How many messages a group's flood window lets through now (private chats: no such window)."""
        chat = int(chat_id)
        return self.limiter.groups.get(chat).backlog_free() if chat < 0 else 1_000_000

    async def put_digest(self, chat_id: str, cards: list[GroupCard]) -> str:
        """Many new tickets in one message: a line each, and a Claim button each; a ticket gets its own card
        when it changes."""
        lang = self.app.settings.staff_lang
        lines = [t(lang, "card.digest", n=len(cards))]
        lines += [f"{card.header} {card.description[:40]}" for card in cards]
        claim = label(lang, "action", "claim")
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(f"{claim} {c.number}",
                                                             callback_data=f"tk:claim:{c.number}")]
                                       for c in cards[:100]])
        try:
            sent = await self.bot.send_message(int(chat_id), "\n".join(lines)[:TEXT_LIMIT], reply_markup=markup)
        except TelegramError as exc:
            raise as_delivery_error(exc) from exc
        return f"{DIGEST}{sent.message_id}"

    async def put_card(self, chat_id: str, card: GroupCard, message_id: str | None) -> str:
        markup = InlineKeyboardMarkup([
            [InlineKeyboardButton(lbl, callback_data=f"tk:{action}:{card.number}") for action, lbl in row]
            for row in (card.buttons[i:i + 3] for i in range(0, len(card.buttons), 3))])
        text = f"{card.text}\n{card.reply_hint}"[:TEXT_LIMIT] if card.reply_hint else card.text[:TEXT_LIMIT]
        try:
            if message_id:
                try:
                    await self.bot.edit_message_text(text, chat_id=int(chat_id), message_id=int(message_id),
                                                     reply_markup=markup)
                    return message_id
                except BadRequest as exc:
                    if "not modified" in str(exc).lower():
                        return message_id
                    if "not found" not in str(exc).lower():
                        raise
                    # The card was deleted in the group: post it again.
            sent = await self.bot.send_message(int(chat_id), text, reply_markup=markup)
            return str(sent.message_id)
        except TelegramError as exc:
            raise as_delivery_error(exc) from exc
