"""Every time an owner reads is in the estate's time zone (Asia/Shanghai here), like the notifications."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.clock import FrozenClock
from tests.test_flow_others import file_repair
from tests.test_flow_repair import tickets


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


async def test_promise_is_the_deadline_the_sla_clock_set(chat, desk_engine, clock):
    """21:25 on a Wednesday: four business hours from 08:30 the next morning is 12:30, not "4 hours"."""
    c = chat()
    await file_repair(c, "阳台灯不亮了")
    out = "\n".join(r.text for r in c.last)
    [tk] = await tickets(desk_engine)
    assert f"{clock.local(tk.claim_due_at):%H:%M}" == "12:30"
    assert "我们会在明天 12:30 前响应" in out and "小时" not in out


async def test_promise_in_english_and_during_business_hours(chat, desk_engine, clock):
    clock.at = datetime(2026, 11, 25, 3, 30)  # 11:30 in Shanghai
    c = chat("en-owner", lang="en")
    await file_repair(c, "the balcony light does not work")
    assert "We will respond by 15:30 today" in "\n".join(r.text for r in c.last)


async def test_emergency_promise_says_minutes(chat, desk_engine):
    c = chat()
    out = await c.send("楼道里好大一股煤气味")
    assert "值班人员将在 5 分钟内响应" in out and "5 分钟 内" not in out
