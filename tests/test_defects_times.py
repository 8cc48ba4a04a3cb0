"""Every time an owner reads is in the estate's time zone (Asia/Shanghai here), like the notifications."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import FrozenClock
from tests.test_flow_others import file_repair


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 25, 13, 25))  # 21:25 in Shanghai, a Wednesday evening


async def test_ticket_timeline_and_list_are_in_local_time(chat, desk_engine, clock):
    c = chat()
    await file_repair(c, "阳台灯不亮了")
    out = await c.send("/mytickets")
    assert "2026-11-25" in out
    out = await c.choose_like("t:")
    assert "21:25 提交" in out and "13:25" not in out
    clock.advance(hours=3)  # 00:25 on the 26th in Shanghai, still the 25th in UTC
    await file_repair(c, "门铃不响")
    out = await c.send("/mytickets")
    assert "2026-11-26" in out
