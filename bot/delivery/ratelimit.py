"""Sliding-window rate limits, strict enough that a platform counting the same window never answers 429.

A leaky bucket (what python-telegram-bot's AIORateLimiter uses for groups) lets a full burst through and then
keeps leaking, so a group can see up to twice its limit within one window; Telegram counts 20 a minute.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque


class SlidingWindow:
    """At most `limit` calls finish within any `period` seconds: `async with window: await send()`."""

    def __init__(self, limit: int, period: float):
        self.limit = limit
        self.period = period
        self._done: deque[float] = deque()  # when recent calls finished (the platform saw them before that)
        self._in_flight = 0
        self._lock = asyncio.Lock()

    def backlog_free(self) -> int:
        """How many calls could start now without waiting."""
        self._prune(time.monotonic())
        return max(0, self.limit - len(self._done) - self._in_flight)

    def _prune(self, now: float) -> None:
        while self._done and now - self._done[0] >= self.period:
            self._done.popleft()

    async def __aenter__(self) -> "SlidingWindow":
        async with self._lock:  # waiters queue up in order
            while True:
                now = time.monotonic()
                self._prune(now)
                if len(self._done) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return self
                wait = self._done[0] + self.period - now if self._done else 0.05
                await asyncio.sleep(max(wait, 0.01))

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        self._in_flight -= 1
        self._done.append(time.monotonic())


class WindowsByKey:
    """One sliding window per key (e.g. per group chat), created on first use; idle ones are dropped."""

    def __init__(self, limit: int, period: float, max_keys: int = 1024):
        self.limit, self.period, self.max_keys = limit, period, max_keys
        self._windows: dict[object, SlidingWindow] = {}

    def get(self, key: object) -> SlidingWindow:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self.max_keys:
                for k, w in list(self._windows.items()):
                    if w.backlog_free() == w.limit:
                        del self._windows[k]
            window = self._windows[key] = SlidingWindow(self.limit, self.period)
        return window
