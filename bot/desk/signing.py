"""Signed, expiring tokens (links in staff cards, staff login sessions) and password hashes, stdlib only."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time


def sign(secret: str, purpose: str, value: str, ttl_seconds: int, now: float | None = None) -> str:
    """`value.expiry.signature`: only whoever knows the secret makes one, and it stops working at expiry."""
    expires = int((now or time.time()) + ttl_seconds)
    mac = hmac.new(secret.encode(), f"{purpose}|{value}|{expires}".encode(), hashlib.sha256).digest()
    return f"{value}.{expires}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def verify(secret: str, purpose: str, token: str, now: float | None = None) -> str | None:
    """The signed value, or None when the token is forged, for another purpose, malformed or expired."""
    try:
        value, expires, _ = token.rsplit(".", 2)
        expiry = int(expires)
    except (ValueError, AttributeError):
        return None
    good = sign(secret, purpose, value, 0, now=expiry)
    if not hmac.compare_digest(good.encode(), token.encode()) or (now or time.time()) > expiry:
        return None
    return value


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    try:
        scheme, salt, digest = (stored or "").split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)
