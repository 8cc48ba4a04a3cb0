"""python-telegram-bot's requests to the Bot API over aiohttp (PTB's documented `BaseRequest` extension point).

PTB ships an httpx transport; on this service's hot path (an answer per owner message) aiohttp's client costs
about half as much CPU per call (measured with bench/telegram_updates.py), and aiohttp is already the server.
Behaviour follows PTB's `HTTPXRequest`: form-encoded parameters, multipart when files are attached, the same
default timeouts, `TimedOut` on a timeout and `NetworkError` on any other transport failure. An optional HTTP(S)
proxy serves deployments that reach Telegram only through one.
"""
from __future__ import annotations

import asyncio
import json

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

Timeout = float | DefaultValue[float] | DefaultValue[None] | None  # a timeout as PTB passes it (its ODVInput[float])


class AiohttpRequest(BaseRequest):
    __slots__ = ("_connections", "_proxy", "_timeouts", "_media_write_timeout", "_session")

    def __init__(self, connection_pool_size: int = 64, proxy: str | None = None, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0):
        self._connections = connection_pool_size
        self._proxy = proxy or None
        self._timeouts = {"read": read_timeout, "write": write_timeout, "connect": connect_timeout,
                          "pool": pool_timeout}
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts["read"]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._connections))

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _timeout(self, name: str, given: Timeout, files: bool) -> float | None:
        if not isinstance(given, DefaultValue):
            return given
        return self._media_write_timeout if name == "write" and files else self._timeouts[name]

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Timeout = BaseRequest.DEFAULT_NONE,
                         write_timeout: Timeout = BaseRequest.DEFAULT_NONE,
                         connect_timeout: Timeout = BaseRequest.DEFAULT_NONE,
                         pool_timeout: Timeout = BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else {}
        headers = {"User-Agent": self.USER_AGENT}
        data: aiohttp.FormData | bytes | None = None
        if request_data is not None and files:
            data = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                data.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                data.add_field(name, content, filename=filename, content_type=mimetype)
        elif request_data is not None and request_data.parameters:
            # The Bot API takes JSON bodies as well as forms; JSON is the cheaper of the two to build.
            data = json.dumps(request_data.parameters, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        connect = self._timeout("connect", connect_timeout, bool(files))
        pool = self._timeout("pool", pool_timeout, bool(files))
        read = self._timeout("read", read_timeout, bool(files))
        write = self._timeout("write", write_timeout, bool(files))
        # aiohttp has no separate write or pool timeout: waiting for a pooled connection counts toward `connect`,
        # and the whole exchange is bounded by the sum of the parts (each None: unbounded).
        timeout = aiohttp.ClientTimeout(
            total=None if connect is None or pool is None or read is None or write is None
            else connect + pool + read + write,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect, sock_read=read)
        try:
            async with self._session.request(method, url, data=data, timeout=timeout, proxy=self._proxy,
                                             headers=headers) as response:
                return response.status, await response.read()
        except asyncio.TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
