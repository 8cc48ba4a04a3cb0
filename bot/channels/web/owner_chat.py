"""The local web chat: owners talk to propdesk in a browser exactly as on a messenger (the embedded default)."""
from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import App
from bot.conversation.engine import Sender
from bot.delivery.media import image_type
from bot.delivery.uploads import save_upload
from handlers.messages import Inbound, Reply

CHANNEL = "web"
STATIC = Path(__file__).resolve().parent / "static"
_USER = re.compile(r"^w-[A-Za-z0-9_-]{4,40}$")
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _user(value: object) -> str | None:
    return value if isinstance(value, str) and _USER.match(value) else None


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except Exception:  # noqa: BLE001
        return None
    return data if isinstance(data, dict) else None


def _render(replies: list[Reply]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in replies]


class WebChat:
    def __init__(self, app: App):
        self.app = app
        self.uploads = Path(app.settings.upload_dir)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def owners(self, request: web.Request) -> web.Response:
        """Demo owners on the roster, to try propdesk as one of them (demo mode only; names and homes, no phones)."""
        return web.json_response([{k: v for k, v in o.items() if k != "phone"}
                                  for o in await self.app.owner_accounts.roster_owners()])

    async def session(self, request: web.Request) -> web.Response:
        """Start chatting as a roster owner (already bound to their home) or as a new, unbound person."""
        data = await _json(request)
        if data is None:
            return _bad("expected a JSON object")
        user = "w-" + secrets.token_urlsafe(9)
        person_id = data.get("person_id")
        if person_id is not None:
            if not isinstance(person_id, int) or isinstance(person_id, bool) or not 0 < person_id < 2**63:
                return _bad("person_id must be a number")
            name = await self.app.owner_accounts.attach_roster_owner(CHANNEL, user, user, person_id)
            if name is None:
                return _bad("no such owner", 404)
        else:
            name = str(data.get("name") or "访客 Guest")[:100]
        lang = data.get("lang") if data.get("lang") in ("zh", "en") else "zh"
        replies = await self.app.engine.handle(Sender(CHANNEL, user, user, name, lang),
                                               Inbound(kind="command", command="start"))
        return web.json_response({"user": user, "name": name, "replies": _render(replies)})

    async def send(self, request: web.Request) -> web.Response:
        data = await _json(request)
        if data is None:
            return _bad("expected a JSON object")
        user = _user(data.get("user"))
        if not user:
            return _bad("missing or malformed user")
        if isinstance(data.get("choice"), str) and data["choice"]:
            msg = Inbound(kind="choice", choice=data["choice"][:200])
        elif isinstance(data.get("text"), str):
            msg = Inbound.text_or_command(data["text"])
        elif data.get("latitude") is not None:
            try:
                msg = Inbound(kind="location", latitude=float(data["latitude"]),
                              longitude=float(data["longitude"]), text=str(data.get("label", ""))[:200])
            except (TypeError, ValueError, KeyError):
                return _bad("latitude and longitude must be numbers")
        else:
            msg = Inbound(kind="unsupported", raw_type=str(data.get("type", "unknown"))[:30])
        replies = await self.app.engine.handle(Sender(CHANNEL, user, user), msg)
        return web.json_response({"replies": _render(replies)})

    async def photo(self, request: web.Request) -> web.Response:
        """A photo upload: stored under the upload dir, passed on as a photo reference."""
        limit_mb = self.app.settings.max_upload_bytes // (1024 * 1024)
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return _bad(f"照片太大了，最大 {limit_mb} MB，请压缩后再发。"
                        f"The photo is too large ({limit_mb} MB at most).", 413)
        except Exception:  # noqa: BLE001 - a broken multipart body
            return _bad("照片没能上传成功，请重新选择后再发一次。The photo could not be uploaded; please try again.")
        user = _user(form.get("user"))
        field = form.get("file")
        if not user or not isinstance(field, web.FileField):
            return _bad("need user and file")
        ext = IMAGE_TYPES.get(field.content_type)
        body = field.file.read()
        if ext is None or image_type(body) is None:
            replies = await self.app.engine.handle(Sender(CHANNEL, user, user),
                                                   Inbound(kind="unsupported", raw_type=field.content_type or "file"))
            return web.json_response({"replies": _render(replies)})
        ref = save_upload(self.uploads, body, ext)
        replies = await self.app.engine.handle(Sender(CHANNEL, user, user), Inbound(kind="photo", photo_ref=ref))
        return web.json_response({"replies": _render(replies), "photo": f"/uploads/{ref.removeprefix('web:')}"})

    async def upload(self, request: web.Request) -> web.FileResponse:
        name = request.match_info["name"]
        if not re.fullmatch(r"[0-9a-f]{24}\.(jpg|png|gif|webp)", name):
            raise web.HTTPNotFound()
        path = self.uploads / name
        if not path.exists():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def poll(self, request: web.Request) -> web.Response:
        """Messages queued for this owner (status updates from staff), oldest first."""
        user = _user(request.query.get("user"))
        if not user:
            return _bad("missing or malformed user")
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _bad("after must be a number")
        if not 0 <= after < 2**63:
            return _bad("after must be a message id")
        messages = await self.app.owner_accounts.take_messages(CHANNEL, user, after)
        return web.json_response({"messages": messages})


def setup(webapp: web.Application, app: App) -> None:
    chat = WebChat(app)
    webapp.router.add_get("/", chat.index)
    webapp.router.add_static("/static", STATIC)
    webapp.router.add_get("/api/web/owners", chat.owners)
    webapp.router.add_post("/api/web/session", chat.session)
    webapp.router.add_post("/api/web/send", chat.send)
    webapp.router.add_post("/api/web/photo", chat.photo)
    webapp.router.add_get("/api/web/poll", chat.poll)
    webapp.router.add_get("/uploads/{name}", chat.upload)
