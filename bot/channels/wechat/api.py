"""The few WeChat official-account API endpoints propdesk uses, over aiohttp (wechatpy's client is synchronous).

The access token is fetched once and shared by every worker through the database, refreshed five minutes
before it expires, and fetched anew when WeChat says it is invalid.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal, overload

import aiohttp

from bot.app import App

log = logging.getLogger("propdesk.wechat")
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid, malformed, expired access token
EARLY_REFRESH = timedelta(minutes=5)


class WeChatAPIError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class WeChatAPI:
    def __init__(self, app: App):
        s = app.settings
        self.app = app
        self.base = s.wechat_api_base_url.rstrip("/")
        self.mp_base = s.wechat_mp_base_url.rstrip("/")
        self.app_id, self.secret = s.wechat_app_id, s.wechat_app_secret
        self.token_name = f"wechat:{self.app_id}"
        self.http: aiohttp.ClientSession | None = None
        self._memo: tuple[str, datetime] | None = None  # (token, expires_at): saves a read per call

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        if self.http:
            await self.http.close()

    def _http(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("the WeChat API client is not started")
        return self.http

    async def token(self, stale: str | None = None) -> str:
        """A valid access token; `stale` is one WeChat refused, so a newer one (or a fresh fetch) is needed."""
        now = self.app.clock.now()
        if self._memo and self._memo[0] != stale and self._memo[1] - EARLY_REFRESH > now:
            return self._memo[0]
        value, expires_at = await self.app.api_tokens.get(self.token_name, self._fetch_token, stale=stale,
                                                          early=EARLY_REFRESH)
        self._memo = (value, expires_at)
        return value

    async def _fetch_token(self) -> tuple[str, int]:
        if not self.app_id or not self.secret:
            raise WeChatAPIError(-1, "no WeChat app id and secret configured")
        params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret}
        async with self._http().get(f"{self.base}/cgi-bin/token", params=params) as resp:
            data = await resp.json(content_type=None)
        if "access_token" not in data:
            raise WeChatAPIError(int(data.get("errcode", -1)), data.get("errmsg", "no access_token"))
        log.info("fetched a new WeChat access token")
        return data["access_token"], int(data.get("expires_in", 7200))

    @overload
    async def call(self, path: str, body: dict[str, Any] | None = None, method: str = "POST",
                   params: dict[str, str] | None = None, file: Literal[False] = False) -> dict[str, Any]:
        ...

    @overload
    async def call(self, path: str, body: dict[str, Any] | None = None, method: str = "POST",
                   params: dict[str, str] | None = None, *, file: Literal[True]) -> bytes:
        ...

    async def call(self, path: str, body: dict[str, Any] | None = None, method: str = "POST",
                   params: dict[str, str] | None = None, file: bool = False) -> dict[str, Any] | bytes:
        """Call an endpoint with the access token; a refused token is replaced once. `file`: the endpoint answers
        with a file (its bytes are returned), and with JSON only for an error."""
        token = await self.token()
        for attempt in (1, 2):
            async with self._http().request(method, f"{self.base}{path}",
                                            params={"access_token": token, **(params or {})}, json=body) as resp:
                if file and resp.content_type not in ("application/json", "text/plain"):
                    return await resp.read()
                data = await resp.json(content_type=None)
            code = int(data.get("errcode", 0) or 0)
            if code in TOKEN_ERRORS and attempt == 1:
                token = await self.token(stale=token)
                continue
            if code or file:
                raise WeChatAPIError(code or -1, data.get("errmsg") or ("no file" if file else ""))
            return data
        raise AssertionError("unreachable")

    async def send_text(self, openid: str, text: str) -> None:
        await self.call("/cgi-bin/message/custom/send",
                        {"touser": openid, "msgtype": "text", "text": {"content": text}})

    async def send_template(self, openid: str, template_id: str, data: dict[str, str]) -> None:
        await self.call("/cgi-bin/message/template/send",
                        {"touser": openid, "template_id": template_id,
                         "data": {k: {"value": v} for k, v in data.items()}})

    async def get_media(self, media_id: str) -> bytes:
        """A temporary media file an owner sent (kept by WeChat for three days): its bytes, or WeChatAPIError."""
        return await self.call("/cgi-bin/media/get", method="GET", params={"media_id": media_id}, file=True)

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self.call("/cgi-bin/menu/create", menu)

    async def create_qrcode(self, scene: str) -> dict[str, Any]:
        """A permanent parametric QR code whose scene is `scene`: {"ticket", "url"}."""
        return await self.call("/cgi-bin/qrcode/create", {"action_name": "QR_LIMIT_STR_SCENE",
                                                           "action_info": {"scene": {"scene_str": scene}}})

    async def qrcode_image(self, ticket: str) -> bytes:
        async with self._http().get(f"{self.mp_base}/cgi-bin/showqrcode", params={"ticket": ticket}) as resp:
            resp.raise_for_status()
            return await resp.read()
