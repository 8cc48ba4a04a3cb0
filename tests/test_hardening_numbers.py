"""Ticket numbers past 9,999 a day: one definition (models.ticket) that every matcher uses."""
from __future__ import annotations

import re
from datetime import date

from sqlalchemy import update

from bot.desk.group_cards import NUMBER_PATTERN as CARD_PATTERN
from bot.desk.ticket_service import TicketService
from models import TicketCounter
from models.ticket import NUMBER_PATTERN, NUMBER_RE, format_number, is_number


def test_one_definition_for_four_and_five_digit_sequences():
    assert format_number("BX", date(2026, 11, 25), 7) == "BX-20261125-0007"
    assert format_number("TS", date(2026, 11, 25), 10000) == "TS-20261125-10000"
    assert is_number("BX-20261125-0007") and is_number("TS-20261125-10000") and is_number("BX-20261125-123456")
    assert not is_number("BX-20261125-007") and not is_number("XX-20261125-0007") and not is_number("BX-2026-0007")
    assert CARD_PATTERN == NUMBER_PATTERN
    assert re.search(NUMBER_PATTERN, "工单 BX-20261125-10000 已受理").group(0) == "BX-20261125-10000"
    assert "(" not in NUMBER_RE.replace("(?:", "")  # no capturing group: usable inside route patterns


async def test_the_ten_thousandth_ticket_of_a_day(desk_engine, clock):
    async with desk_engine.sm() as s, s.begin():
        tk = await TicketService(s, clock).create(kind="repair", category="water", urgency="normal",
                                                  description="x", channel="test", reporter_id=None, actor="t")
        await s.execute(update(TicketCounter).values(last=9999))
        tk2 = await TicketService(s, clock).create(kind="repair", category="water", urgency="normal",
                                                   description="y", channel="test", reporter_id=None, actor="t")
    assert tk.number.endswith("-0001") and tk2.number.endswith("-10000")
    assert is_number(tk2.number) and re.fullmatch(NUMBER_PATTERN, tk2.number)
