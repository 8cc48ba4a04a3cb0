"""The tests' one way to wait: for a condition to hold, or for something awaitable to finish, within a deadline.

Nothing in the tests sleeps a fixed time and hopes. A fake server fires its `changed` Signal on every request it
has handled, so a wait on it wakes at once; a condition on the database (or anything else nobody signals) is
polled briefly. A check that something did NOT happen first waits for a later, positive marker.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable

POLL = 0.02  # how often a condition is looked at again when nothing signals a change


class Signal:
    """Fired on every change a test might wait for (a fake's request handled); `wait_for(..., on=signal)` wakes on
    it instead of sleeping out a polling interval."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next(self, timeout: float) -> None:
        """Return at the next fire, or after `timeout` seconds (whichever is first)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


def describe(target: Any) -> str:
    """The source of a lambda, as a default name for what was waited for."""
    try:
        source = inspect.getsource(target).strip()
    except (OSError, TypeError):
        return repr(target)
    return source if len(source) < 300 else source[:300] + "…"


async def wait_for(target: Callable[[], Any] | Awaitable[Any], *, timeout: float = 20.0, what: str | None = None,
                   on: Signal | None = None, show: Callable[[], Any] | None = None) -> Any:
    """Wait until `target` is done and return its value.

    `target` is either a condition — a callable returning something truthy when it holds (it may be a coroutine
    function, e.g. a database query) — or an awaitable (e.g. `queue.join()`). `on`: a Signal fired when the
    condition may have changed (the condition is still looked at every POLL seconds, so a change nobody signals
    is seen too). On timeout: an AssertionError naming `what` (default: the condition's source) and, when given,
    `show()` (it may be a coroutine function) — the state the test would want to see.
    """
    if inspect.isawaitable(target):
        try:
            return await asyncio.wait_for(target, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(await _failure(what or repr(target), timeout, show)) from None
    deadline = time.monotonic() + timeout
    while True:
        value = target()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(await _failure(what or describe(target), timeout, show))
        if on is not None:
            await on.next(min(left, POLL * 5))
        else:
            await asyncio.sleep(min(left, POLL))


async def _failure(what: str, timeout: float, show: Callable[[], Any] | None) -> str:
    message = f"waited {timeout:g} s for: {what}"
    if show is not None:
        state = show()
        if inspect.isawaitable(state):
            state = await state
        message += f"\nstate: {state!r}"
    return message
