"""WeChat official account (公众号): owners' messages and events in, answers out, with wechatpy's crypto and parser.

WeChat waits 5 s for an answer and retries a request up to 3 times. An answer ready within
`wechat_reply_within_seconds` goes back in the request (a passive reply); a later one is answered `success` and
sent through the customer-service message API by the delivery worker. Every message leaves a receipt keyed by
MsgId (events: sender + time + event), so a retry — on any worker — never runs the flow twice and gets the
original's answer.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import timedelta, timezone
from typing import Any, Coroutine
from xml.etree import ElementTree
from xml.parsers.expat import ExpatError

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.app import App
from bot.desk.group_cards import GroupCard
from bot.delivery.outbox_worker import DeliveryError
from bot.conversation.engine import Sender, StepTx
from bot.conversation.step_outbox import queue_in_step
from handlers.messages import Inbound, Reply, merge_replies

from bot.channels.wechat.api import WeChatAPI, WeChatAPIError
from bot.conversation.wechat_receipts import Nonces, Receipts, Windows

CHANNEL = "wechat"
TEXT_BYTES = 2040  # WeChat takes at most 2048 bytes of text in one message
MAX_BODY = 64 * 1024
# Menu CLICK keys (see `propdesk wechat menu`) -> the flows' commands.
CLICK_COMMANDS = {"repair": "repair", "complaint": "complain", "fees": "fees", "mytickets": "mytickets",
                  "bind": "bind", "lang": "lang", "help": "help"}
# WeChat refusals that mean "no more customer-service messages to this owner now": try a template instead.
OUT_OF_WINDOW = {45015, 45047}
log = logging.getLogger("propdesk.wechat")


def render_text(reply: dict) -> str:
    """A reply as WeChat text: choices become a numbered list the owner answers with a digit or the words."""
    text = reply.get("text", "")
    choices = reply.get("choices") or []
    if choices:
        text += "\n" + "\n".join(f"{n}. {c['label']}" for n, c in enumerate(choices, start=1))
    return text


def split_bytes(text: str, limit: int = TEXT_BYTES) -> list[str]:
    """Split at line breaks so that each piece is at most `limit` bytes of UTF-8."""
    if len(text) * 4 <= limit or len(text.encode()) <= limit:  # the common case: it fits
        return [text]
    pieces, current = [], ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line.encode()) > limit:  # a single overlong line: cut by characters
            cut = limit // 3
            pieces.append(line[:cut])
            line = line[cut:]
        current = line
    return pieces + [current] if current or not pieces else pieces


def inbound_from(msg: BaseMessage) -> tuple[Inbound | None, str]:
    """The core's inbound message for a WeChat message or event, and which reply window it opens."""
    kind = msg.type if msg.type != "event" else f"event:{msg.event or ''}"
    if kind == "text":
        return Inbound.text_or_command(msg.content or ""), "message"
    if kind == "image":
        return Inbound(kind="photo", photo_ref=f"wx:{msg.media_id}"), "message"
    if kind == "voice":
        if msg.recognition:  # WeChat's own speech recognition, when the account has it on
            return Inbound(kind="text", text=msg.recognition), "message"
        return Inbound(kind="unsupported", raw_type="voice"), "message"
    if kind == "location":
        try:
            lat, lon = float(msg.location_x), float(msg.location_y)
        except (TypeError, ValueError):
            return Inbound(kind="unsupported", raw_type="location"), "message"
        return Inbound(kind="location", latitude=lat, longitude=lon, text=msg.label or ""), "message"
    if kind == "link":
        return Inbound(kind="text", text=f"{msg.title or ''} {msg.description or ''} {msg.url or ''}".strip()), \
            "message"
    if kind in ("event:subscribe_scan", "event:scan"):  # a parametric QR code: scene = a place code
        return Inbound(kind="command", command="start", args=str(msg.scene_id or "")), "event"
    if kind == "event:subscribe":
        return Inbound(kind="command", command="start"), "event"
    if kind == "event:click":
        command = CLICK_COMMANDS.get((msg.key or "").lower())
        return (Inbound(kind="command", command=command) if command else None), "event"
    if kind.startswith("event:"):  # unfollow, menu links, location reports, job notices: nothing to answer
        return None, "event"
    return Inbound(kind="unsupported", raw_type=kind), "message"


def receipt_key(msg: BaseMessage) -> str:
    if msg.id:
        return f"{CHANNEL}:{msg.id}"
    return f"{CHANNEL}:{msg.source}:{msg.time}:{getattr(msg, 'event', '') or msg.type}"


async def _done_within(task: asyncio.Task, seconds: float) -> bool:
    """Wait up to `seconds` for the task, which goes on either way (asyncio.wait, without its sets and loops)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


class _Receipt:
    """The message's receipt and reply window, written at the end of the conversation step, in its transaction."""

    def __init__(self, channel: "WeChatChannel", key: str, openid: str, window: str):
        self.channel, self.key, self.openid, self.window = channel, key, openid, window
        self.first = ""  # what one message can carry: the passive reply
        self.queued = False  # the rest went to the outbox

    async def after(self, tx: StepTx, replies: list[Reply]) -> bool:
        texts = [render_text(r.as_dict()) for r in merge_replies(replies, 10**6)]
        pieces = split_bytes("\n\n".join(t for t in texts if t))
        self.first = pieces[0]
        # A retry finds the original's receipt (on PostgreSQL a concurrent one has waited for the conversation's
        # row lock until the original committed): the step is undone and the retry gets the original's answer.
        if not await self.channel.receipts.record(tx, self.key, self.openid, self.first, self.window):
            return False
        if pieces[1:]:  # more than one message can carry: the rest through the customer-service API
            self.queued = True
            await queue_in_step(tx, CHANNEL, self.openid, pieces[1:], self.channel.app.clock.now())
        return True


class WeChatChannel:
    channel = CHANNEL

    def __init__(self, app: App):
        s = app.settings
        self.app = app
        self.token = s.wechat_token
        self.crypto = WeChatCrypto(s.wechat_token, s.wechat_aes_key, s.wechat_app_id) if s.wechat_aes_key else None
        self.api = WeChatAPI(app)
        app.media.register("wx", self.api.get_media)
        self.receipts = Receipts(app)
        self.windows = Windows(app)
        self.tolerance = s.wechat_timestamp_tolerance_seconds
        self.nonces = Nonces(app, timedelta(seconds=self.tolerance))
        self.reply_within = s.wechat_reply_within_seconds
        self.templates = s.wechat_templates
        self._pending: set[asyncio.Task] = set()

    def setup_routes(self, webapp: web.Application) -> None:
        path = self.app.settings.wechat_path
        webapp.router.add_get(path, self.on_verify)
        webapp.router.add_post(path, self.on_message)

    async def start(self) -> None:
        await self.api.start()
        log.info("wechat channel up at %s", self.app.settings.wechat_path)

    async def stop(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=10)
        await self.api.close()

    # -- WeChat's requests -------------------------------------------------------------------------------------
    def _signed(self, request: web.Request) -> bool:
        q = request.query
        try:
            check_signature(self.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            return False
        return True

    async def on_verify(self, request: web.Request) -> web.Response:
        """The URL check when the account's server settings are saved: echo echostr if the signature holds."""
        if not self._signed(request):
            return web.Response(status=403, text="invalid signature")
        return web.Response(text=request.query.get("echostr", ""))

    def _timely(self, request: web.Request) -> bool:
        """The signed timestamp is within the tolerance of now (a captured signature set soon goes stale)."""
        stamp = request.query.get("timestamp", "")
        if not stamp.isdigit() or len(stamp) > 12 or len(request.query.get("nonce", "")) > 64:
            return False
        now = self.app.clock.now().replace(tzinfo=timezone.utc).timestamp()
        return abs(now - int(stamp)) <= self.tolerance

    async def on_message(self, request: web.Request) -> web.Response:
        if not self._signed(request):
            return web.Response(status=403, text="invalid signature")
        if not self._timely(request):
            return web.Response(status=403, text="stale or malformed timestamp")
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="too large")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return web.Response(status=413, text="too large")
        q = request.query
        encrypted = q.get("encrypt_type") == "aes"
        if self.crypto is not None and not encrypted:
            # The plain signature covers only timestamp and nonce, not the body: with a key, only messages whose
            # msg_signature covers the ciphertext are taken.
            return web.Response(status=403, text="this account takes encrypted messages only")
        try:
            if encrypted:
                if self.crypto is None:
                    return web.Response(status=400, text="encrypted message but no AES key configured")
                # The envelope's one field read with ElementTree (half the cost of wechatpy's own parse of it);
                # wechatpy checks msg_signature against it and decrypts.
                envelope = {"Encrypt": ElementTree.fromstring(body).findtext("Encrypt")}
                if not envelope["Encrypt"]:
                    return web.Response(status=400, text="malformed message")
                body = self.crypto.decrypt_message(envelope, q.get("msg_signature", ""), q.get("timestamp", ""),
                                                   q.get("nonce", ""))
            msg = parse_message(body)
        except (InvalidSignatureException, InvalidAppIdException):
            return web.Response(status=403, text="invalid signature")
        except (ExpatError, ElementTree.ParseError, KeyError, ValueError, TypeError, AttributeError):
            return web.Response(status=400, text="malformed message")
        if msg is None or not msg.source:
            return web.Response(status=400, text="malformed message")
        # In plain mode the signature covers timestamp and nonce but not the body: a nonce may serve one body only.
        # An encrypted message's msg_signature covers its ciphertext, so another body cannot reuse it, and the same
        # body again is WeChat's own retry, answered from the receipt: no extra write per message there.
        digest = hashlib.sha256(body if isinstance(body, bytes) else body.encode()).hexdigest()
        if not encrypted and not await self.nonces.first_use(q.get("timestamp", ""), q.get("nonce", ""), digest):
            log.warning("wechat request refused: its nonce was used before with another body (a replay)")
            return web.Response(status=403, text="replayed request")
        xml = await self.answer(msg)
        if xml and encrypted and self.crypto is not None:  # (encrypted: there is a crypto, see above)
            xml = self.crypto.encrypt_message(xml, q.get("nonce", ""), q.get("timestamp", ""))
        return web.Response(text=xml or "success", content_type="application/xml" if xml else "text/plain")

    async def answer(self, msg: BaseMessage) -> str:
        """The passive reply XML for a message, or "" (answer `success`, the reply follows by the API)."""
        inbound, window = inbound_from(msg)
        openid = msg.source
        if msg.type == "event" and msg.event == "unsubscribe":
            await self._unfollowed(openid)
            return ""
        if inbound is None:
            return ""
        hooks = _Receipt(self, receipt_key(msg), openid, window)
        if inbound.photo_ref:
            # Fetched now, while WeChat still has it (temporary media last three days), for the staff side.
            self._background(self.app.media.fetch(inbound.photo_ref))
        task = asyncio.create_task(self.app.engine.handle(Sender(CHANNEL, openid, openid), inbound, hooks))
        if not await _done_within(task, self.reply_within):
            self._pending.add(task)
            task.add_done_callback(lambda t: self._later(t, hooks))
            return ""
        if task.result() is None:  # a retry: its step found the receipt the first delivery committed
            text = await self.receipts.answer_of(hooks.key)
        else:
            if hooks.queued:
                self.app.wake_delivery()
            text = hooks.first
        return TextReply(message=msg, content=text).render() if text else ""

    def _later(self, task: asyncio.Task, hooks: "_Receipt") -> None:
        """The flow finished after the request was answered: its reply goes out through the API."""
        self._pending.discard(task)
        if task.cancelled() or task.exception() is not None:
            log.error("wechat message %s failed", hooks.key, exc_info=None if task.cancelled() else task.exception())
            return
        if task.result() is None:
            return

        async def queue() -> None:
            await self.app.queue_messages(CHANNEL, hooks.openid, [{"text": hooks.first}])
            await self.receipts.queued(hooks.key)

        self._background(queue())

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Work after the request, finished before the channel stops."""
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _unfollowed(self, openid: str) -> None:
        """An owner unfollowed: the account is marked inactive, nothing is deleted."""
        await self.app.owner_accounts.deactivate(CHANNEL, openid)

    # -- the delivery worker's outlet ----------------------------------------------------------------------
    async def send(self, chat_id: str, payload: dict, reply_to: str | None = None) -> str | None:
        """A customer-service message while the owner's window allows; a template message for a status update
        outside it; otherwise a refusal the outbox records (and shows on the ticket)."""
        text = render_text(payload)
        if payload.get("photo_ref") and not text:
            text = "📷"
        pieces = split_bytes(text)
        try:
            if await self.windows.take(chat_id, len(pieces)):
                for piece in pieces:
                    await self.api.send_text(chat_id, piece)
                return None
            await self._template(chat_id, payload, text, "outside the customer-service window")
            return None
        except WeChatAPIError as exc:
            if exc.code in OUT_OF_WINDOW:
                await self.windows.close(chat_id)
                await self._template(chat_id, payload, text, str(exc))
                return None
            # -1: system busy; anything else (bad openid, blocked, no permission) will not change on retry.
            raise DeliveryError(f"wechat {exc}", permanent=exc.code != -1) from exc
        except (OSError, asyncio.TimeoutError) as exc:
            raise DeliveryError(f"wechat unreachable: {exc!r}") from exc

    async def _template(self, openid: str, payload: dict, text: str, why: str) -> None:
        template_id = self.templates.get(payload.get("template", ""))
        if not template_id:
            raise DeliveryError(f"{why}, and no template message configured for it", permanent=True)
        try:
            await self.api.send_template(openid, template_id, {
                "content": text[:200], "time": self.app.clock.local().strftime("%Y-%m-%d %H:%M")})
        except WeChatAPIError as exc:
            raise DeliveryError(f"wechat template: {exc}", permanent=exc.code != -1) from exc

    async def put_card(self, chat_id: str, card: GroupCard, message_id: str | None) -> str:
        raise DeliveryError("staff cards do not go to WeChat official-account chats", permanent=True)
