"""A fake WeChat on loopback that behaves like WeChat, both ways.

- As the messaging platform it POSTs owners' messages to propdesk's callback URL: signed, in safe mode encrypted
  with the account's EncodingAESKey (wechatpy's WeChatCrypto), and when no answer comes within its timeout
  (WeChat: 5 s) it retries the same message, up to 3 times.
- As the API server it serves the endpoints propdesk uses — token, custom send, template send, menu, QR codes —
  checks the access token, records every call and can refuse with a WeChat error code (e.g. 45015).
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from dataclasses import dataclass, field

import aiohttp
import segno
import xmltodict
from aiohttp import web

from tests.fakes.loopback import FakeServer
from wechatpy.crypto import WeChatCrypto

APP_ID, APP_SECRET, TOKEN = "wx1234567890abcdef", "s3cr3t-app-secret", "callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues them
ACCOUNT = "gh_propdesk"


@dataclass
class Delivery:
    """What happened to one message WeChat pushed: each attempt's HTTP status and (decrypted) reply."""

    attempts: list[tuple[int, str]] = field(default_factory=list)

    @property
    def reply(self) -> str:
        return self.attempts[-1][1] if self.attempts else ""

    @property
    def content(self) -> str:
        """The passive reply's text, or "" when the answer was `success`."""
        if not self.reply.startswith("<xml>"):
            return ""
        return xmltodict.parse(self.reply)["xml"].get("Content") or ""


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class FakeWeChat(FakeServer):
    def __init__(self, timeout: float = 5.0, retries: int = 3):
        super().__init__()
        self.timeout, self.retries = timeout, retries
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
        self.calls: list[tuple[str, dict]] = []
        self.failures: dict[str, list[int]] = {}
        self.tokens_issued = 0
        self.media: dict[str, bytes] = {}  # temporary media owners sent, by media id
        self.valid_token = ""
        self._msg_ids = itertools.count(int(time.time()) * 1000)

    # -- the API server ------------------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_get("/cgi-bin/showqrcode", self.showqrcode)
        app.router.add_get("/cgi-bin/media/get", self.media_get)
        app.router.add_post("/cgi-bin/{path:.+}", self.api)

    def fail(self, path: str, code: int, times: int = 1) -> None:
        self.failures.setdefault(path, []).extend([code] * times)

    def sent(self, openid: str | None = None) -> list[str]:
        """Texts sent through the customer-service API (to one owner)."""
        return [body["text"]["content"] for path, body in self.calls
                if path == "message/custom/send" and (openid is None or body["touser"] == openid)]

    def templates(self, openid: str | None = None) -> list[dict]:
        return [body for path, body in self.calls
                if path == "message/template/send" and (openid is None or body["touser"] == openid)]

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("appid") != APP_ID or q.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        self.tokens_issued += 1
        self.valid_token = f"ACCESS-{self.tokens_issued}"
        return web.json_response({"access_token": self.valid_token, "expires_in": 7200})

    async def api(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if request.query.get("access_token") != self.valid_token:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = await request.json()
        self.calls.append((path, body))
        if self.failures.get(path):
            code = self.failures[path].pop(0)
            return web.json_response({"errcode": code, "errmsg": f"fake error {code}"})
        if path == "qrcode/create":
            scene = body["action_info"]["scene"]["scene_str"]
            return web.json_response({"ticket": f"TICKET-{scene}", "url": f"http://weixin.qq.com/q/{scene}"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": len(self.calls)})

    async def media_get(self, request: web.Request) -> web.Response:
        """The file itself, or a JSON error (as WeChat answers an expired or unknown media id)."""
        q = request.query
        self.calls.append(("media/get", dict(q)))
        if q.get("access_token") != self.valid_token:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = self.media.get(q.get("media_id", ""))
        if body is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        return web.Response(body=body, content_type="image/jpeg",
                            headers={"Content-disposition": f'attachment; filename="{q["media_id"]}.jpg"'})

    async def showqrcode(self, request: web.Request) -> web.Response:
        import io

        buf = io.BytesIO()
        segno.make(request.query.get("ticket", "")).save(buf, kind="png")
        return web.Response(body=buf.getvalue(), content_type="image/png")

    # -- the platform pushing messages -------------------------------------------------------------------------
    def text(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return self._xml(openid, "text", f"<Content><![CDATA[{content}]]></Content>", msg_id)

    def image(self, openid: str, media_id: str) -> str:
        self.media.setdefault(media_id, b"\xff\xd8\xff\xe0wechat-jpeg-" + media_id.encode())
        return self._xml(openid, "image", f"<PicUrl><![CDATA[http://mmbiz/{media_id}]]></PicUrl>"
                                          f"<MediaId><![CDATA[{media_id}]]></MediaId>")

    def voice(self, openid: str, recognition: str = "") -> str:
        return self._xml(openid, "voice", "<MediaId><![CDATA[v1]]></MediaId><Format><![CDATA[amr]]></Format>"
                                          f"<Recognition><![CDATA[{recognition}]]></Recognition>")

    def location(self, openid: str, lat: float, lon: float, label: str) -> str:
        return self._xml(openid, "location", f"<Location_X>{lat}</Location_X><Location_Y>{lon}</Location_Y>"
                                             f"<Scale>15</Scale><Label><![CDATA[{label}]]></Label>")

    def event(self, openid: str, event: str, key: str = "", at: int | None = None) -> str:
        extra = f"<EventKey><![CDATA[{key}]]></EventKey>" if key else ""
        return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
                f"</FromUserName><CreateTime>{at or int(time.time())}</CreateTime><MsgType><![CDATA[event]]>"
                f"</MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>")

    def _xml(self, openid: str, kind: str, body: str, msg_id: int | None = None) -> str:
        return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
                f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>"
                f"{body}<MsgId>{msg_id or next(self._msg_ids)}</MsgId></xml>")

    def signed_request(self, xml: str, mode: str = "plain", token: str = TOKEN) -> tuple[dict, str]:
        """The query string and body WeChat would POST: signed, and in safe/compatible mode encrypted."""
        ts, nonce = str(int(time.time())), f"n{next(self._msg_ids)}"
        query = {"signature": signature(token, ts, nonce), "timestamp": ts, "nonce": nonce,
                 "openid": xmltodict.parse(xml)["xml"]["FromUserName"]}
        if mode == "plain":
            return query, xml
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        if mode == "compat":  # the plaintext fields travel beside the encrypted copy
            inner = xml[len("<xml>"):-len("</xml>")]
            body = f"<xml>{inner}<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
        else:
            body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
        return query, body

    async def push(self, callback_url: str, xml: str, mode: str = "plain") -> Delivery:
        """Deliver one message as WeChat does: wait `timeout` for the answer, else retry the same message."""
        delivery = Delivery()
        async with aiohttp.ClientSession() as http:
            for _ in range(1 + self.retries):
                query, body = self.signed_request(xml, mode)
                try:
                    async with http.post(callback_url, params=query, data=body.encode(),
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                        text = await resp.text()
                except asyncio.TimeoutError:
                    delivery.attempts.append((0, "timeout"))
                    continue
                if mode != "plain" and text.startswith("<xml>"):
                    envelope = xmltodict.parse(text)["xml"]
                    assert envelope["MsgSignature"] == signature(TOKEN, envelope["TimeStamp"], envelope["Nonce"],
                                                                 envelope["Encrypt"])
                    text = self.crypto.decrypt_message(text, envelope["MsgSignature"], envelope["TimeStamp"],
                                                       envelope["Nonce"])
                delivery.attempts.append((resp.status, text))
                if resp.status == 200:
                    break
        return delivery
