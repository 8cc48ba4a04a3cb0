"""The mobile staff page behind a robot card's link: log in, then claim, mark on site, resolve with a photo,
reject with a reason or comment. The link is signed and expires; without a logged-in staff member nothing changes.
"""
from __future__ import annotations

import html
from urllib.parse import quote

from aiohttp import web

from bot.app import App
from bot.delivery.media import image_type
from bot.delivery.uploads import save_upload
from bot.channels.web.security import client_address
from bot.desk.group_cards import NUMBER_RE
from bot.desk.signing import sign, verify
from bot.desk.staff_auth import StaffAuth
from bot.desk.staff_desk import StaffActionError, StaffRef
from config.i18n import label, t

LINK_PURPOSE = "ticket-link"
SESSION_PURPOSE = "staff-session"
COOKIE = "propdesk_staff"
SESSION_HOURS = 12
PAGE_ACTIONS = ["claim", "start", "hold", "resume", "resolve", "reject"]
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<link rel="stylesheet" href="/console/static/staff_page.css"></head><body>{body}</body></html>"""


def page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=PAGE.format(title=html.escape(title), body=body), status=status,
                        content_type="text/html")


class StaffPage:
    def __init__(self, app: App):
        self.app = app
        self.secret = app.settings.secret_key
        self.auth = StaffAuth(app.sessionmaker, app.settings, app.clock, app.staff_desk)

    def _link_ok(self, request: web.Request) -> str | None:
        """The ticket number when the link's signature holds and has not expired."""
        number = request.match_info["number"]
        return number if verify(self.secret, LINK_PURPOSE, request.query.get("k", "")) == number else None

    async def _staff(self, request: web.Request) -> StaffRef | None:
        staff_id = verify(self.secret, SESSION_PURPOSE, request.cookies.get(COOKIE, ""))
        if not staff_id or not staff_id.isdigit():
            return None
        return await self.app.staff_desk.staff_by_id(int(staff_id))

    async def show(self, request: web.Request) -> web.Response:
        number = self._link_ok(request)
        if number is None:
            return page("链接无效 Invalid link", "<p class=note>链接无效或已过期。Link invalid or expired.</p>", 403)
        staff = await self._staff(request)
        if staff is None:
            return self._login_form(str(request.rel_url))
        card = await self.app.staff_desk.group_card(staff, number)
        if card is None:
            return page("无此工单", "<p class=note>没有这个工单。No such ticket.</p>", 404)
        allowed = set(card.actions)
        lang = self.app.settings.staff_lang
        notice = html.escape(request.query.get("m", ""))
        forms = "".join(
            f"<form method=post action='{html.escape(self._act_url(request))}' enctype=multipart/form-data>"
            f"<input type=hidden name=action value={a}>"
            + ("<textarea name=note required placeholder='退单原因 Reason'></textarea>" if a == "reject" else "")
            + ("<input type=file name=photo accept='image/*'>" if a == "resolve" else "")
            + f"<button>{html.escape(label(lang, 'action', a))}</button></form>"
            for a in PAGE_ACTIONS if a in allowed)
        comment = (f"<form method=post action='{html.escape(self._act_url(request))}' enctype=multipart/form-data>"
                   "<input type=hidden name=action value=comment><textarea name=note placeholder='留言给业主 "
                   "Message to the owner'></textarea><input type=file name=photo accept='image/*'>"
                   f"<button>{html.escape(label(lang, 'action', 'comment'))}</button></form>")
        contact = await self.app.staff_desk.contact(staff, number)
        call = (f"<p><a class=call href='tel:{html.escape(contact.phone)}'>📞 {html.escape(t(lang, 'staff.call'))} "
                f"{html.escape(contact.name)} {html.escape(contact.phone)}</a></p>"
                if contact is not None and contact.phone and not contact.hidden else "")
        key = quote(request.query.get("k", ""))
        photos = "".join(f"<img src='/staff/t/{number}/photo/{i}?k={key}' alt='📷 {i + 1}'>"
                         for i in range(len(card.photos)))
        return page(number, f"<pre>{html.escape(card.text)}</pre>" + call + photos
                            + (f"<p class=ok>{notice}</p>" if notice else "") + forms + comment)

    async def photo(self, request: web.Request) -> web.Response:
        """A photo of the ticket, whichever channel it came through (fetched from there once, then kept)."""
        number = self._link_ok(request)
        staff = await self._staff(request) if number is not None else None
        if number is None or staff is None:
            return web.Response(status=403, text="forbidden")
        body = await self.app.staff_desk.photo(staff, number, int(request.match_info["index"]))
        if body is None:
            return web.Response(status=404, text="no such photo")
        return web.Response(body=body, content_type=image_type(body),
                            headers={"Cache-Control": "private, max-age=3600"})

    def _act_url(self, request: web.Request) -> str:
        return f"/staff/t/{request.match_info['number']}/act?k={quote(request.query.get('k', ''))}"

    def _login_form(self, next_url: str, error: str = "", status: int = 200) -> web.Response:
        return page("员工登录 Staff login",
                    (f"<p class=note>{html.escape(error)}</p>" if error else "")
                    + "<form method=post action='/staff/login'><input name=phone placeholder='手机号 Phone' required>"
                    "<input name=password type=password placeholder='密码 Password' required>"
                    f"<input type=hidden name=next value='{html.escape(next_url)}'><button>登录 Log in</button></form>",
                    status)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        phone, password = str(form.get("phone", ""))[:32], str(form.get("password", ""))[:200]
        next_url = str(form.get("next", ""))
        if not next_url.startswith("/staff/t/"):
            next_url = "/"
        checked = await self.auth.verify(phone, password, client_address(request, self.app.settings))
        if checked.locked_until is not None:
            return self._login_form(next_url, "登录失败次数过多，请稍后再试。Too many failed sign-ins; try later.", 429)
        staff = checked.staff
        if staff is None:
            return self._login_form(next_url, "手机号或密码不对。Wrong phone or password.", 401)
        response = web.HTTPSeeOther(next_url)
        response.set_cookie(COOKIE, sign(self.secret, SESSION_PURPOSE, str(staff.id), SESSION_HOURS * 3600),
                            max_age=SESSION_HOURS * 3600, httponly=True, samesite="Lax", path="/staff")
        raise response

    async def act(self, request: web.Request) -> web.Response:
        number = self._link_ok(request)
        if number is None:
            return page("链接无效 Invalid link", "<p class=note>链接无效或已过期。</p>", 403)
        staff = await self._staff(request)
        if staff is None:
            return self._login_form(f"/staff/t/{number}?k={quote(request.query.get('k', ''))}",
                                    "请先登录。Log in first.", 401)
        try:
            form = await request.post()
        except Exception:  # noqa: BLE001 - oversize or malformed upload
            return page("上传失败", "<p class=note>上传失败（太大或格式不对）。Upload failed.</p>", 413)
        photo = self._save_photo(form.get("photo"))
        try:
            await self.app.staff_desk.act(staff, number, str(form.get("action", "")),
                                          note=str(form.get("note", ""))[:1000], photo=photo, channel="web")
        except StaffActionError as exc:
            message = f"未完成 Not done: {exc}"
        else:
            action = str(form.get("action", ""))
            lang = self.app.settings.staff_lang
            message = t(lang, "staff.done", action=label(lang, "action", action), number=number)
        raise web.HTTPSeeOther(f"/staff/t/{number}?k={quote(request.query.get('k', ''))}&m={quote(message)}")

    def _save_photo(self, field: str | bytes | bytearray | web.FileField | None) -> str:
        if not isinstance(field, web.FileField) or field.content_type not in IMAGE_TYPES:
            return ""
        body = field.file.read()
        if image_type(body) not in IMAGE_TYPES:  # what the bytes are, not only what the form says
            return ""
        return save_upload(self.app.settings.upload_dir, body, IMAGE_TYPES[field.content_type])


def setup(webapp: web.Application, app: App) -> None:
    staff = StaffPage(app)
    webapp.router.add_get(rf"/staff/t/{{number:{NUMBER_RE}}}", staff.show)
    webapp.router.add_post(rf"/staff/t/{{number:{NUMBER_RE}}}/act", staff.act)
    webapp.router.add_get(rf"/staff/t/{{number:{NUMBER_RE}}}/photo/{{index:\d{{1,3}}}}", staff.photo)
    webapp.router.add_post("/staff/login", staff.login)

