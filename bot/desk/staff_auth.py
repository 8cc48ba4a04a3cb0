"""Staff sign-in for the console: server-side sessions, CSRF tokens, and sign-in throttling with a lockout.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, with the staff member, a
CSRF token, an absolute expiry and the last time it was used (idle expiry). Sign-ins are counted per phone and
per client address *before* the password is checked (an atomic upsert), so a burst of parallel guesses cannot
slip past the limit; a lockout refuses even the right password until it ends, and is logged.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.settings import Settings
from models import LoginThrottle, Staff, StaffSession
from models.db import dialect_name, insert_for

from bot.clock import Clock
from bot.desk.access import StaffRef, active_staff
from bot.desk.staff_desk import StaffDesk

log = logging.getLogger("propdesk.auth")
LAST_SEEN_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: `staff` and `token`/`csrf` on success; `locked_until` when locked out."""

    staff: StaffRef | None = None
    token: str = ""
    csrf: str = ""
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Session:
    staff: StaffRef
    csrf: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


class StaffAuth:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 desk: StaffDesk):
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.desk = desk

    # -- throttle --------------------------------------------------------------------------------------------
    async def _charge(self, keys: dict[str, int]) -> datetime | None:
        """Count an attempt against each key (key -> allowed failures); when a key goes over, lock it. The end of
        the longest lockout now in force, or None."""
        s = self.settings
        now = self.clock.now()
        window_start = now - timedelta(minutes=s.login_window_minutes)
        locked: list[datetime] = []
        async with self.sessionmaker() as session, session.begin():
            insert = insert_for(dialect_name(session))
            for key, allowed in keys.items():
                stale = LoginThrottle.window_start < window_start
                stmt = insert(LoginThrottle).values(key=key, failures=1, window_start=now, locked_until=None)
                stmt = stmt.on_conflict_do_update(index_elements=[LoginThrottle.key], set_={
                    "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
                    "window_start": case((stale, now), else_=LoginThrottle.window_start),
                }).returning(LoginThrottle.failures, LoginThrottle.locked_until)
                failures, until = (await session.execute(stmt)).one()
                if until is not None and until > now:
                    locked.append(until)
                elif failures > allowed:
                    until = now + timedelta(minutes=s.login_lockout_minutes)
                    await session.execute(update(LoginThrottle).where(LoginThrottle.key == key)
                                          .values(locked_until=until))
                    log.warning("staff sign-in locked out: %s after %d failed attempts within %s min, until %sZ",
                                key, failures - 1, s.login_window_minutes, until.isoformat(timespec="seconds"))
                    locked.append(until)
        return max(locked) if locked else None

    async def _refund(self, phone_key: str, address_key: str) -> None:
        """A right password: the phone's count starts over, the address gets its attempt back."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(LoginThrottle).where(LoginThrottle.key == phone_key))
            await session.execute(update(LoginThrottle).where(LoginThrottle.key == address_key,
                                                              LoginThrottle.failures > 0)
                                  .values(failures=LoginThrottle.failures - 1))

    # -- sign in and out -------------------------------------------------------------------------------------
    async def verify(self, phone: str, password: str, address: str) -> SignIn:
        """Check a phone and password under the throttle (no session): SignIn with `staff`, or `locked_until`."""
        phone, address = phone.strip()[:32], address[:64]
        phone_key, address_key = f"phone:{phone}", f"addr:{address}"
        until = await self._charge({phone_key: self.settings.login_max_failures,
                                    address_key: self.settings.login_address_max_failures})
        if until is not None:
            return SignIn(locked_until=until)
        staff = await self.desk.sign_in(phone, password)  # scrypt off the event loop, dummy hash when unknown
        if staff is None:
            return SignIn()
        await self._refund(phone_key, address_key)
        return SignIn(staff=staff)

    async def sign_in(self, phone: str, password: str, address: str) -> SignIn:
        """verify(), then a new session: SignIn with `staff`, `token` (the cookie) and `csrf`."""
        checked = await self.verify(phone, password, address)
        staff = checked.staff
        if staff is None:
            return checked
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            session.add(StaffSession(id=_digest(token), staff_id=staff.id, csrf=csrf, address=address[:64],
                                     created_at=now, last_seen_at=now,
                                     expires_at=now + timedelta(hours=self.settings.console_session_hours)))
            # Expired sessions of anyone are dropped now and then, here.
            await session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        log.info("staff #%d signed in to the console", staff.id)
        return SignIn(staff=staff, token=token, csrf=csrf)

    async def session(self, token: str | None) -> Session | None:
        """The live session of this cookie, or None (unknown, expired, idle too long, staff no longer active)."""
        if not token or len(token) > 100:
            return None
        now = self.clock.now()
        idle = timedelta(minutes=self.settings.console_idle_minutes)
        async with self.sessionmaker() as session:
            row = await session.scalar(select(StaffSession).join(Staff, Staff.id == StaffSession.staff_id)
                                       .where(StaffSession.id == _digest(token), StaffSession.expires_at > now,
                                              StaffSession.last_seen_at > now - idle, Staff.active.is_(True)))
            if row is None:
                return None
            staff = await active_staff(session, row.staff_id)
            if staff is None:
                return None
            if now - row.last_seen_at > LAST_SEEN_EVERY:
                await session.execute(update(StaffSession).where(StaffSession.id == row.id)
                                      .values(last_seen_at=now))
                await session.commit()
            return Session(staff=staff, csrf=row.csrf, expires_at=row.expires_at)

    async def sign_out(self, token: str | None) -> None:
        if not token:
            return
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(StaffSession).where(StaffSession.id == _digest(token)))

    async def sign_out_everywhere(self, staff_id: int) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
