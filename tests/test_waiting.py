"""The tests' wait helper itself: it returns what it waited for, wakes on a signal, and fails naming the wait."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.helpers.dialog import Chat, verify_dialog
from tests.waiting import Signal, wait_for


async def test_returns_the_condition_value_once_it_holds():
    box: list[int] = []
    asyncio.get_running_loop().call_later(0.05, box.append, 7)
    assert await wait_for(lambda: box, what="a value in the box") == [7]

    async def query() -> int:  # a coroutine condition, e.g. a database query
        return len(box)

    assert await wait_for(query, what="the count") == 1
    assert await wait_for(asyncio.sleep(0, result="done"), what="an awaitable") == "done"


async def test_a_signal_wakes_the_wait_at_once():
    signal, box = Signal(), []

    def change() -> None:
        box.append(1)
        signal.fire()

    asyncio.get_running_loop().call_later(0.01, change)
    began = time.monotonic()
    await wait_for(lambda: box, on=signal, what="the change")
    assert time.monotonic() - began < 0.09  # well before the fallback poll (0.1 s)


async def test_a_timeout_names_what_was_awaited_and_shows_the_state():
    with pytest.raises(AssertionError, match=r"(?s)waited 0\.05 s for: the card.*state: \['nothing'\]"):
        await wait_for(lambda: False, timeout=0.05, what="the card", show=lambda: ["nothing"])
    with pytest.raises(AssertionError, match="never set"):
        await wait_for(asyncio.Event().wait(), timeout=0.05, what="never set")
    with pytest.raises(AssertionError, match="lambda: 1 == 2"):
        await wait_for(lambda: 1 == 2, timeout=0.02)  # no name given: the condition's source


async def test_verify_dialog_names_the_turn_that_went_wrong(chat):
    c: Chat = chat()
    with pytest.raises(AssertionError, match=r"turn 2: '1' answered"):
        await verify_dialog(c, [("/start", None), ("1", "this is not in the answer")])
