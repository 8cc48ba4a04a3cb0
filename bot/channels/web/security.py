"""HTTP hardening for every page propdesk serves: security headers, and Host/Origin checks on state changes.

Browsers send `Origin` with every POST from a page; a request that changes something must come from a page of an
allowed host (the console's own). The console's routes additionally need a CSRF token (bot/channels/web/console.py).
Machine callbacks (/wechat, the Telegram webhook) are not checked here: they carry signatures of their own.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from config.settings import Settings

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "media-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths whose state changes must prove they come from our own pages (Origin or Referer required).
STRICT_PREFIXES = ("/console", "/api/console")
# Paths checked when the browser says where it comes from (old forms without Origin still work).
CHECKED_PREFIXES = STRICT_PREFIXES + ("/staff", "/api/web", "/api/staff")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_enabled(settings: Settings) -> bool:
    """The web chat's demo (talk as any roster owner): on when listening on loopback, else only when set."""
    if settings.web_demo is not None:
        return settings.web_demo
    return is_loopback(settings.http_host)


def allowed_hosts(settings: Settings) -> list[str]:
    if settings.allowed_hosts:
        return [h.lower() for h in settings.allowed_hosts]
    hosts = list(LOOPBACK_NAMES)
    public = urlsplit(settings.public_base_url).hostname
    if public:
        hosts.append(public.lower())
    if settings.http_host not in ("0.0.0.0", "::", ""):
        hosts.append(settings.http_host.lower())
    return hosts


def _host_allowed(hostport: str, allowed: list[str]) -> bool:
    hostport = hostport.lower()
    host = urlsplit("//" + hostport).hostname or ""
    return any(hostport == a or (":" not in a.strip("[]") and host == a.strip("[]")) for a in allowed)


def client_address(request: web.Request, settings: Settings) -> str:
    if settings.trust_proxy_headers:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return (request.remote or "")[:64]


def is_https(request: web.Request, settings: Settings) -> bool:
    if settings.cookie_secure != "auto":
        return settings.cookie_secure == "always"
    if settings.trust_proxy_headers and request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        return True
    return request.secure


def origin_ok(request: web.Request, settings: Settings, required: bool) -> bool:
    """The request's Host is an allowed one and the page it came from (Origin, else Referer) is on that host."""
    host = request.headers.get("Host", "")
    if not _host_allowed(host, allowed_hosts(settings)):
        return False
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return not required and source != "null"
    return (urlsplit(source).netloc or "").lower() == host.lower()


def _with_headers(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def middlewares(settings: Settings) -> list[Middleware]:
    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if request.method in UNSAFE and path.startswith(CHECKED_PREFIXES):
            if not origin_ok(request, settings, required=path.startswith(STRICT_PREFIXES)):
                return _with_headers(web.json_response({"error": "cross-site or unknown host request refused"},
                                                       status=403))
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _with_headers(exc)
            raise
        if not response.prepared:
            _with_headers(response)
        return response

    return [security]
