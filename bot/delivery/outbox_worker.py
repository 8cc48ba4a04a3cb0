"""The outbox delivery worker: sends queued messages and cards through each channel's outlet, with retries.

Each chat with due messages gets its own worker task, so a slow or rate-limited staff group never holds up an
owner's messages. A row is claimed with a lease (next_attempt_at pushed ahead) under `FOR UPDATE SKIP LOCKED`, so
several workers never send one row twice and a worker that dies mid-send leaves it to be picked up when the lease
runs out. Messages to one chat go out in order (by priority, then age); a failure holds back the rest of that chat
until its retry.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeGuard, cast

from aiohttp import web
from sqlalchemy import ColumnElement, CursorResult, Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.i18n import t
from config.settings import StaffGroup
from models import OutboxMessage, Ticket, PostedCard, TicketEvent

from bot.desk.group_cards import GroupCard, build_group_card
from bot.desk.routing import priority_of
from bot.clock import Clock

log = logging.getLogger("propdesk.delivery")
DIGEST = "digest:"  # a PostedCard message id with this prefix: the ticket went out in a digest, not as a card
CLOSED = ("closed", "cancelled")  # a card stops mattering when its ticket is one of these


class DeliveryError(Exception):
    """A send that did not go through: retried later (after retry_after when given) unless permanent."""

    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Outlet(Protocol):
    """What a channel offers the delivery worker."""

    channel: str

    async def send(self, chat_id: str, payload: dict[str, Any], reply_to: str | None = None) -> str | None:
        """Send a text (with choices) or a photo; the platform's message id."""

    async def put_card(self, chat_id: str, card: GroupCard, message_id: str | None) -> str:
        """Post the card, or edit it in place when it has a message id; the message id."""


class DigestOutlet(Outlet, Protocol):
    """An outlet whose limit can leave a backlog: `free(chat_id)` is how many messages may go now, and
    `put_digest(chat_id, cards)` posts up to `digest_size` new cards as one message (its id, prefixed with DIGEST
    where the tickets should still get cards of their own when they change)."""

    digest_size: int

    def free(self, chat_id: str) -> int:
        ...

    async def put_digest(self, chat_id: str, cards: list[GroupCard]) -> str:
        ...


def _digests(outlet: Outlet) -> TypeGuard[DigestOutlet]:
    return getattr(outlet, "free", None) is not None


class Channel(Outlet, Protocol):
    """A messenger channel as the server runs it: its routes, start and stop, and its outlet."""

    def setup_routes(self, webapp: web.Application) -> None:
        ...

    async def start(self) -> None:
        ...

    async def stop(self) -> None:
        ...


class Delivery:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, outlets: dict[str, Outlet], *,
                 staff_lang: str = "zh", lease_seconds: float = 120, max_attempts: int | None = None,
                 backoff_seconds: float = 2.0, max_backoff_seconds: float = 300, give_up_hours: float = 12,
                 late_after_attempts: int = 8, fallback: tuple[str, StaffGroup] | None = None,
                 fallback_after_minutes: float = 5):
        """`max_attempts`: a hard limit (None: retry while the message matters: a card until its ticket closes,
        anything else for `give_up_hours`). `fallback`: (name, StaffGroup) of the group that gets a card whose own
        group has been unreachable for `fallback_after_minutes`."""
        self.sm = sessionmaker
        self.clock = clock
        self.outlets = outlets
        self.staff_lang = staff_lang
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.give_up = timedelta(hours=give_up_hours)
        self.late_after = late_after_attempts
        self.fallback = fallback
        self.fallback_after = timedelta(minutes=fallback_after_minutes)
        self._wake = asyncio.Event()
        self._busy: dict[tuple[str, str], asyncio.Task[int]] = {}

    def wake(self) -> None:
        """Something was queued: look now rather than at the next tick."""
        self._wake.set()

    def _due(self, now: datetime) -> tuple[ColumnElement[bool], ...]:
        return (OutboxMessage.status == "pending", OutboxMessage.channel.in_(list(self.outlets)),
                or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))

    async def due_chats(self, limit: int = 200) -> list[tuple[str, str]]:
        async with self.sm() as s:
            rows = await s.execute(select(OutboxMessage.channel, OutboxMessage.chat_id)
                                   .where(*self._due(self.clock.now())).distinct().limit(limit))
            return [(channel, chat_id) for channel, chat_id in rows]

    async def claim_next(self, channel: str, chat_id: str) -> OutboxMessage | None:
        """Lease the chat's next due row: highest priority first, then oldest."""
        now = self.clock.now()
        async with self.sm() as s, s.begin():
            for _ in range(5):
                row = await s.scalar(
                    select(OutboxMessage).where(*self._due(now), OutboxMessage.channel == channel,
                                                OutboxMessage.chat_id == chat_id)
                    .order_by(OutboxMessage.priority.desc(), OutboxMessage.id).limit(1)
                    .with_for_update(skip_locked=True))
                if row is None:
                    return None
                # Compare-and-set the lease: SQLite has no row locks, and only one worker may win the row.
                won = await s.execute(update(OutboxMessage).where(OutboxMessage.id == row.id, *self._due(now))
                                      .values(next_attempt_at=now + self.lease)
                                      .execution_options(synchronize_session=False))
                if cast(CursorResult[Any], won).rowcount == 1:  # an UPDATE's result is a CursorResult
                    break
                s.expunge(row)
            else:
                return None
            row.next_attempt_at = now + self.lease
            if row.kind == "card":
                # Older queued updates of the same card are covered by this one: it renders the current state.
                for older in (await s.scalars(select(OutboxMessage).where(
                        OutboxMessage.status == "pending", OutboxMessage.kind == "card",
                        OutboxMessage.ticket_id == row.ticket_id, OutboxMessage.channel == channel,
                        OutboxMessage.chat_id == chat_id, OutboxMessage.id != row.id)
                        .with_for_update(skip_locked=True))).all():
                    older.status, older.last_error, older.sent_at = "sent", "merged into a later update", now
            return row

    async def run_once(self) -> int:
        """Start a worker for each chat with due messages (one at a time per chat) and wait for them."""
        started = self._start_chat_workers(await self.due_chats())
        return sum(await asyncio.gather(*started)) if started else 0

    def _start_chat_workers(self, chats: list[tuple[str, str]]) -> list[asyncio.Task[int]]:
        started = []
        for chat in chats:
            if chat not in self._busy:
                task = asyncio.create_task(self._supervised(*chat))
                self._busy[chat] = task
                task.add_done_callback(functools.partial(self._done, chat))
                started.append(task)
        return started

    def _done(self, chat: tuple[str, str], _task: asyncio.Task[int]) -> None:
        self._busy.pop(chat, None)

    async def _supervised(self, channel: str, chat_id: str) -> int:
        """A chat worker that never dies silently: whatever stops it is logged, and the next sweep starts the chat
        again (its leased row, if any, is taken up when the lease runs out)."""
        try:
            return await self._chat_worker(channel, chat_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - e.g. the database went away mid-send
            log.exception("delivery worker for %s:%s stopped; it is restarted at the next sweep", channel, chat_id)
            return 0

    async def _chat_worker(self, channel: str, chat_id: str) -> int:
        """Send a chat's messages in order until none is due; stop at a failure (the rest waits for its retry)."""
        settled = 0
        while (row := await self.claim_next(channel, chat_id)) is not None:
            try:
                await self._send(row)
            except Exception as exc:  # noqa: BLE001 - an outlet bug must not stop the worker
                if not isinstance(exc, DeliveryError):
                    log.exception("delivery of outbox row %s failed", row.id)
                    exc = DeliveryError(repr(exc))
                retry_at = await self._failed(row, exc)
                if retry_at is not None:
                    await self._hold_back(channel, chat_id, retry_at)
                    return settled
            settled += 1
        return settled

    async def _send(self, row: OutboxMessage) -> None:
        outlet = self.outlets[row.channel]
        if row.kind == "card":
            await self._send_card(outlet, row)
            return
        reply_to = None
        if row.payload.get("reply_to_card") and row.ticket_id:
            async with self.sm() as s:
                reply_to = await s.scalar(select(PostedCard.message_id).where(
                    PostedCard.ticket_id == row.ticket_id, PostedCard.channel == row.channel,
                    PostedCard.chat_id == row.chat_id))
        await outlet.send(row.chat_id, row.payload, reply_to=(reply_to or "").removeprefix(DIGEST) or None)
        await self._settle(row, "sent")

    async def _send_card(self, outlet: Outlet, row: OutboxMessage) -> None:
        async with self.sm() as s:
            ticket = await s.get(Ticket, row.ticket_id)
            slot = await s.scalar(select(PostedCard).where(
                PostedCard.ticket_id == row.ticket_id, PostedCard.channel == row.channel,
                PostedCard.chat_id == row.chat_id))
            if ticket is None or slot is None:
                await self._settle(row, "failed", note="no such ticket card")
                return
            card = await build_group_card(s, ticket, self.clock, self.staff_lang)
        if slot.fallback_from:
            card.text += "\n" + t(self.staff_lang, "card.fallback", group=slot.fallback_from)
        # A ticket listed in a digest has no card of its own yet: its first change posts one.
        current = None if (slot.message_id or "").startswith(DIGEST) else slot.message_id
        first_post = current is None
        if first_post and slot.posting_since is not None and self.clock.now() - slot.posting_since < self.lease:
            # Another worker's post of this card is under way (it keeps posting_since fresh while it waits for the
            # platform's answer): posting now could post the card twice. Once that post is recorded, this becomes
            # an edit.
            raise DeliveryError("an earlier post of this card is still under way", retry_after=self.lease.seconds / 4)
        if first_post and slot.posting_since is not None:
            log.warning("card %s to %s:%s: an earlier post was interrupted before its answer; posting again",
                        card.number, row.channel, row.chat_id)
        if first_post and _digests(outlet):
            # More new cards wait than the chat's limit lets through now: send them together.
            free = outlet.free(row.chat_id)
            if (free <= 0 or await self._new_cards_waiting(row) >= free) and await self._send_digest(outlet, row, card):
                return
        if first_post:
            # Recorded before the call: if this worker dies waiting for the answer, the next one knows a post may
            # have gone out.
            await self._mark_posting(row, slot.id)
            heartbeat = asyncio.create_task(self._keep_lease(row, slot.id))
        try:
            message_id = await outlet.put_card(row.chat_id, card, current)
        except BaseException:
            if first_post:
                heartbeat.cancel()
                await self._mark_posting(row, slot.id, clear=True)  # the platform said no: nothing went out
            raise
        if first_post:
            heartbeat.cancel()
        async with self.sm() as s, s.begin():
            slot = await s.get_one(PostedCard, slot.id)
            slot.message_id = str(message_id)
            slot.posting_since = None
            await self._settle(row, "sent", session=s)
        if first_post:
            for ref in card.photos[:10]:
                try:
                    await outlet.send(row.chat_id, {"text": "", "photo_ref": ref}, reply_to=str(message_id))
                except Exception as exc:  # noqa: BLE001 - the card is out; a photo that cannot go is noted
                    log.warning("photo %s of %s not posted to %s: %s", ref, card.number, row.chat_id, exc)

    async def _mark_posting(self, row: OutboxMessage, slot_id: int, clear: bool = False) -> None:
        async with self.sm() as s, s.begin():
            slot = await s.get_one(PostedCard, slot_id)
            slot.posting_since = None if clear else self.clock.now()
            if not clear:
                db_row = await s.get_one(OutboxMessage, row.id)
                db_row.next_attempt_at = self.clock.now() + self.lease

    async def _keep_lease(self, row: OutboxMessage, slot_id: int) -> None:
        """While a first post waits for the platform's answer, keep its lease and its posting mark fresh, so that no
        other worker takes the row and posts the card a second time."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 4)
            try:
                await self._mark_posting(row, slot_id)
            except Exception:  # noqa: BLE001 - the next beat tries again
                log.warning("could not extend the lease of outbox row %s", row.id, exc_info=True)

    def _new_cards(self, row: OutboxMessage, now: datetime) -> Select[OutboxMessage]:
        """Due rows that would post a new card (or one only listed in a digest) to the row's chat, but the row."""
        return (select(OutboxMessage).join(PostedCard, (PostedCard.ticket_id == OutboxMessage.ticket_id)
                                           & (PostedCard.channel == OutboxMessage.channel)
                                           & (PostedCard.chat_id == OutboxMessage.chat_id))
                .where(*self._due(now), OutboxMessage.kind == "card", OutboxMessage.channel == row.channel,
                       OutboxMessage.chat_id == row.chat_id, OutboxMessage.id != row.id,
                       PostedCard.message_id.is_(None) | PostedCard.message_id.startswith(DIGEST)))

    async def _new_cards_waiting(self, row: OutboxMessage) -> int:
        async with self.sm() as s:
            waiting = select(func.count()).select_from(self._new_cards(row, self.clock.now()).subquery())
            return await s.scalar(waiting) or 0

    async def _send_digest(self, outlet: DigestOutlet, row: OutboxMessage, card: GroupCard) -> bool:
        """The chat's limit is reached and more new cards wait: post them all as one digest instead of queueing
        them for minutes. False when this card is the only one waiting."""
        now = self.clock.now()
        async with self.sm() as s, s.begin():
            others = (await s.scalars(
                self._new_cards(row, now).where(PostedCard.message_id.is_(None))  # not yet in a digest either
                .order_by(OutboxMessage.priority.desc(), OutboxMessage.id).limit(outlet.digest_size - 1)
                .with_for_update(skip_locked=True, of=OutboxMessage))).all()
            for other in others:
                other.next_attempt_at = now + self.lease
        if not others:
            return False
        async with self.sm() as s:
            cards = [card] + [await build_group_card(s, await s.get_one(Ticket, o.ticket_id), self.clock,
                                                     self.staff_lang) for o in others]
        try:
            message_id = await outlet.put_digest(row.chat_id, cards)
        except Exception:
            async with self.sm() as s, s.begin():  # the others go back to waiting with this one
                for other in others:
                    (await s.get_one(OutboxMessage, other.id)).next_attempt_at = now
            raise
        async with self.sm() as s, s.begin():
            for done in [row, *others]:  # each has its card's slot (unique): `_new_cards` joins it
                slot = (await s.scalars(select(PostedCard).where(
                    PostedCard.ticket_id == done.ticket_id, PostedCard.channel == done.channel,
                    PostedCard.chat_id == done.chat_id))).one()
                slot.message_id = str(message_id)
                await self._settle(done, "sent", note=f"in a digest of {len(cards)}", session=s)
        log.info("posted %d cards to %s:%s as one digest", len(cards), row.channel, row.chat_id)
        return True

    async def _settle(self, row: OutboxMessage, status: str, note: str = "",
                      session: AsyncSession | None = None) -> None:
        async def apply(s: AsyncSession) -> None:
            db_row = await s.get_one(OutboxMessage, row.id)
            db_row.status = status
            db_row.attempts += 1
            db_row.last_error = note[:500]
            db_row.next_attempt_at = None
            if status == "sent":
                db_row.sent_at = self.clock.now()
            elif row.ticket_id:
                # Failed for good: say so on the ticket, where staff see it.
                s.add(TicketEvent(ticket_id=row.ticket_id, at=self.clock.now(), actor="system",
                                  action="undelivered", note=f"{row.channel}:{row.chat_id} {note}"[:1000]))

        if session is not None:
            await apply(session)
            return
        async with self.sm() as s, s.begin():
            await apply(s)

    async def _failed(self, row: OutboxMessage, exc: DeliveryError) -> datetime | None:
        """Record a failed attempt; the time of the next one, or None when it failed for good (refused for good by
        the platform, or no longer worth sending: a card whose ticket is closed, a message older than
        `give_up`)."""
        now = self.clock.now()
        async with self.sm() as s, s.begin():
            db_row = await s.get_one(OutboxMessage, row.id)
            attempts = db_row.attempts + 1
            ticket = await s.get(Ticket, row.ticket_id) if row.ticket_id else None
            if row.kind == "card":
                matters = ticket is not None and ticket.status not in CLOSED
            else:
                matters = now - db_row.created_at < self.give_up
            if exc.permanent or not matters or (self.max_attempts is not None and attempts >= self.max_attempts):
                log.warning("outbox row %s to %s:%s failed for good: %s", row.id, row.channel, row.chat_id, exc)
                await self._settle(row, "failed", note=str(exc), session=s)
                return None
            delay = exc.retry_after if exc.retry_after is not None else \
                min(self.backoff * 2 ** min(attempts - 1, 30), self.max_backoff)
            db_row.attempts = attempts
            db_row.last_error = str(exc)[:500]
            db_row.next_attempt_at = now + timedelta(seconds=delay)
            if attempts == self.late_after and ticket is not None:
                s.add(TicketEvent(ticket_id=ticket.id, at=now, actor="system", action="delivery_late",
                                  note=f"{row.channel}:{row.chat_id} {attempts} attempts, still trying: {exc}"[:1000]))
            if row.kind == "card" and ticket is not None:
                fallback_at = await self._fall_back(s, row, ticket, now)
                if fallback_at is not None and fallback_at < db_row.next_attempt_at:
                    db_row.next_attempt_at = fallback_at  # try once more then, and fall back if it fails
            log.info("outbox row %s to %s:%s: retry in %.1fs (%s)", row.id, row.channel, row.chat_id, delay, exc)
            return db_row.next_attempt_at

    async def _fall_back(self, s: AsyncSession, row: OutboxMessage, ticket: Ticket, now: datetime) -> datetime | None:
        """A card that has not reached its group for `fallback_after` goes to the fallback group too, once. When
        that time is still to come: that time."""
        if self.fallback is None:
            return None
        name, group = self.fallback
        if (group.channel, group.chat_id) == (row.channel, row.chat_id) or group.channel not in self.outlets:
            return None
        slot = await s.scalar(select(PostedCard).where(
            PostedCard.ticket_id == ticket.id, PostedCard.channel == row.channel, PostedCard.chat_id == row.chat_id))
        if slot is None or (slot.message_id and not slot.message_id.startswith(DIGEST)):
            return None
        if await s.scalar(select(PostedCard.id).where(PostedCard.ticket_id == ticket.id,
                                                      PostedCard.channel == group.channel,
                                                      PostedCard.chat_id == group.chat_id)) is not None:
            return None  # the fallback group has the card already (its own route, or an earlier fallback)
        if now - slot.created_at < self.fallback_after:
            return slot.created_at + self.fallback_after
        s.add(PostedCard(ticket_id=ticket.id, group=name, channel=group.channel, chat_id=group.chat_id,
                         created_at=now, fallback_from=slot.group))
        s.add(OutboxMessage.new(group.channel, group.chat_id, {}, at=now, kind="card", ticket_id=ticket.id,
                                priority=priority_of(ticket.urgency) + 1))
        s.add(TicketEvent(ticket_id=ticket.id, at=now, actor="system", action="fallback",
                          note=f"{slot.group} unreachable since {slot.created_at:%H:%M} UTC: card sent to {name}"))
        log.warning("card of ticket %s: group %s unreachable, sent to the fallback group %s", ticket.number,
                    slot.group, name)
        self.wake()
        return None

    async def _hold_back(self, channel: str, chat_id: str, retry_at: datetime) -> None:
        """Later messages of a chat wait for the earlier one, so they are read in order."""
        async with self.sm() as s, s.begin():
            rows = (await s.scalars(select(OutboxMessage).where(
                *self._due(self.clock.now()), OutboxMessage.channel == channel, OutboxMessage.chat_id == chat_id)
                .with_for_update(skip_locked=True))).all()
            for row in rows:
                row.next_attempt_at = retry_at

    async def run_forever(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Keep starting chat workers for due messages until stopped; then let the running ones finish."""
        while not stop.is_set():
            try:
                self._start_chat_workers(await self.due_chats())
            except Exception:  # noqa: BLE001 - e.g. the database restarting: try again next tick
                log.exception("delivery sweep failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        if self._busy:
            await asyncio.wait(list(self._busy.values()), timeout=10)
