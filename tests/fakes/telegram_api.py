"""A fake Telegram Bot API server on loopback: the real python-telegram-bot talks to it over HTTP.

It speaks the Bot API wire protocol (POST /bot<token>/<method> with form or multipart fields, JSON answers
{"ok": ..., "result": ...}), records every call, serves getUpdates from a queue, keeps sent messages so edits can
be checked, can answer 429 with retry_after, and can enforce a group's flood limit (Telegram: 20 a minute).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.loopback import FakeServer

BOT_ID = 777000
BOT = {"id": BOT_ID, "is_bot": True, "first_name": "propdesk", "username": "propdesk_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
SEND_METHODS = {"sendMessage", "sendPhoto", "sendMediaGroup", "sendDocument"}


@dataclass
class Call:
    method: str
    params: dict
    at: float = field(default_factory=time.monotonic)
    ok: bool = True  # False when the fake answered with an error


def _decode(value):
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FakeBotAPI(FakeServer):
    client_max_size = 20 * 1024 * 1024

    def __init__(self, token: str = "123:TEST", group_limit: int | None = None, group_period: float = 60):
        super().__init__()
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._new_update = asyncio.Event()
        self.messages: dict[tuple[int, int], dict] = {}
        self.failures: dict[str, list[dict]] = {}
        self.group_limit = group_limit  # at most this many sends to one group per group_period seconds
        self.group_period = group_period
        self.sent_to_group: dict[int, list[float]] = {}
        self.too_many_requests = 0
        self.group_retry_after = 1
        self.files: dict[str, bytes] = {}

    # -- test controls ---------------------------------------------------------------------------------
    def fail(self, method: str, times: int = 1, code: int = 429, retry_after: int = 1,
             description: str = "Too Many Requests: retry after 1") -> None:
        """Answer the next `times` calls of `method` with an error."""
        self.failures.setdefault(method, []).extend(
            [{"error_code": code, "description": description,
              **({"parameters": {"retry_after": retry_after}} if code == 429 else {})}] * times)

    def push(self, update: dict) -> dict:
        update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        self._new_update.set()
        return update

    def of(self, method: str, chat_id: int | None = None) -> list[dict]:
        return [c.params for c in self.calls if c.method == method
                and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)]

    def texts(self, chat_id: int) -> list[str]:
        """What reached the chat: the texts and captions of the send calls that succeeded."""
        return [c.params.get("text") or c.params.get("caption") or "" for c in self.calls
                if c.ok and c.method in SEND_METHODS and int(c.params.get("chat_id", 0)) == chat_id]

    def acknowledged(self, update: dict) -> bool:
        """The bot has taken `update`: it polled again with an offset past it (PTB queues what it fetched before it
        polls again)."""
        return any(c.method == "getUpdates" and int(c.params.get("offset") or 0) > update["update_id"]
                   for c in self.calls)

    # -- server -----------------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self.handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self.file)

    async def file(self, request: web.Request) -> web.Response:
        body = self.files.get(request.match_info["path"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="image/jpeg")

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params: dict = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                params[key] = value.file.read() if hasattr(value, "file") else _decode(value)
        call = Call(method, params)
        self.calls.append(call)
        self.changed.fire()  # a long poll is seen when it begins, not only when it returns
        queued = self.failures.get(method)
        if queued:
            error = queued.pop(0)
            call.ok = False
            if error["error_code"] == 429:
                self.too_many_requests += 1
            return web.json_response({"ok": False, **error}, status=error["error_code"])
        if method in SEND_METHODS and self._over_group_limit(params):
            call.ok = False
            self.too_many_requests += 1
            wait = self.group_retry_after
            return web.json_response({"ok": False, "error_code": 429, "description": f"Too Many Requests: retry "
                                      f"after {wait}", "parameters": {"retry_after": wait}}, status=429)
        handler = getattr(self, "m_" + method, None)
        if handler is None:
            return web.json_response({"ok": True, "result": True})
        result = handler(params) if not asyncio.iscoroutinefunction(handler) else await handler(params)
        if isinstance(result, tuple):  # an error
            code, description = result
            call.ok = False
            return web.json_response({"ok": False, "error_code": code, "description": description}, status=code)
        return web.json_response({"ok": True, "result": result})

    def _over_group_limit(self, params: dict) -> bool:
        chat_id = int(params.get("chat_id", 0))
        if self.group_limit is None or chat_id >= 0:
            return False
        now = time.monotonic()
        recent = [t for t in self.sent_to_group.get(chat_id, []) if now - t < self.group_period]
        if len(recent) >= self.group_limit:
            self.sent_to_group[chat_id] = recent
            self.group_retry_after = max(1, int(self.group_period - (now - recent[0])) + 1)
            return True
        self.sent_to_group[chat_id] = recent + [now]
        return False

    # -- Bot API methods ---------------------------------------------------------------------------------
    def m_getMe(self, params: dict) -> dict:
        return BOT

    async def m_getUpdates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, 0.25)  # short: stopping the bot waits out a poll
        while True:
            ready = [u for u in self.updates if u["update_id"] >= offset]
            if ready or time.monotonic() >= deadline:
                return ready
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout=max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass

    def _message(self, params: dict, **content) -> dict:
        chat_id = int(params["chat_id"])
        msg = {"message_id": next(self._message_ids), "date": int(time.time()), "from": BOT,
               "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}, **content}
        if "inline_keyboard" in (params.get("reply_markup") or {}):  # a Message carries only inline keyboards
            msg["reply_markup"] = params["reply_markup"]
        reply = params.get("reply_parameters") or {}
        if reply.get("message_id"):
            replied = self.messages.get((chat_id, int(reply["message_id"])))
            if replied:  # one level deep, as Telegram sends it
                msg["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        self.messages[(chat_id, msg["message_id"])] = msg
        return msg

    def m_sendMessage(self, params: dict) -> dict:
        if len(params.get("text", "")) > 4096:
            return 400, "Bad Request: message is too long"
        return self._message(params, text=params.get("text", ""))

    def m_sendPhoto(self, params: dict) -> dict:
        photo = params.get("photo")
        file_id = photo if isinstance(photo, str) else f"uploaded-{len(self.files)}"
        if isinstance(photo, bytes):
            self.files[f"photos/{file_id}.jpg"] = photo
        size = {"file_id": file_id, "file_unique_id": file_id[-8:], "width": 640, "height": 480}
        return self._message(params, photo=[size], **({"caption": params["caption"]} if params.get("caption") else {}))

    def m_editMessageText(self, params: dict):  # noqa: ANN201
        key = (int(params["chat_id"]), int(params["message_id"]))
        msg = self.messages.get(key)
        if msg is None:
            return 400, "Bad Request: message to edit not found"
        if msg.get("text") == params.get("text") and msg.get("reply_markup") == params.get("reply_markup"):
            return 400, "Bad Request: message is not modified"
        msg["text"] = params.get("text", "")
        if params.get("reply_markup"):
            msg["reply_markup"] = params["reply_markup"]
        else:
            msg.pop("reply_markup", None)
        return msg

    def m_getFile(self, params: dict) -> dict:
        file_id = params["file_id"]
        path = f"photos/{file_id}.jpg"
        self.files.setdefault(path, b"\xff\xd8\xff\xe0fake-jpeg-" + file_id.encode())
        return {"file_id": file_id, "file_unique_id": file_id[-8:], "file_size": len(self.files[path]),
                "file_path": path}


# -- update factories: what Telegram would POST or return from getUpdates --------------------------------
def user(uid: int, name: str = "Owner", lang: str | None = "zh-hans") -> dict:
    return {"id": uid, "is_bot": False, "first_name": name, **({"language_code": lang} if lang else {})}


_ids = itertools.count(5000)


def message(chat_id: int, sender: dict, **content) -> dict:
    chat = ({"id": chat_id, "type": "private", "first_name": sender["first_name"]} if chat_id > 0
            else {"id": chat_id, "type": "supergroup", "title": "维修群 Repairs"})
    return {"message": {"message_id": next(_ids), "date": int(time.time()), "chat": chat, "from": sender,
                        **content}}


def text(chat_id: int, sender: dict, body: str, reply_to: dict | None = None) -> dict:
    extra = {"reply_to_message": reply_to} if reply_to else {}
    if body.startswith("/"):
        cmd = body.split()[0]
        extra["entities"] = [{"type": "bot_command", "offset": 0, "length": len(cmd)}]
    return message(chat_id, sender, text=body, **extra)


def photo(chat_id: int, sender: dict, file_id: str, caption: str = "", reply_to: dict | None = None) -> dict:
    extra = {"reply_to_message": reply_to} if reply_to else {}
    if caption:
        extra["caption"] = caption
    sizes = [{"file_id": file_id + "-s", "file_unique_id": "s" + file_id[-6:], "width": 90, "height": 90},
             {"file_id": file_id, "file_unique_id": "b" + file_id[-6:], "width": 1280, "height": 960}]
    return message(chat_id, sender, photo=sizes, **extra)


def callback(sender: dict, on_message: dict, data: str) -> dict:
    return {"callback_query": {"id": str(next(_ids)), "from": sender, "chat_instance": "ci",
                               "message": on_message, "data": data}}
