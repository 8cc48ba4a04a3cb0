"""Phone numbers as owners write them are accepted and kept in one form."""
from __future__ import annotations

import pytest

from handlers.common import parse_phone
from tests.helpers.dialog import file_repair
from tests.helpers.dialog import bind, tickets


@pytest.mark.parametrize("written, kept", [
    ("139-0000-1111", "13900001111"),
    ("+86 139 0000 1111", "13900001111"),
    ("0086-139-0000-1111", "13900001111"),
    ("139 0000 1111", "13900001111"),
    ("１３９００００１１１１", "13900001111"),
    ("(0755) 8888 1234", "0755-88881234"),
    ("（0755）8888-1234", "0755-88881234"),
    ("075588881234", "0755-88881234"),
    ("010 6512 3456", "010-65123456"),
    ("+86 755 8888 1234", "0755-88881234"),
    ("8888 1234", "88881234"),
])
def test_accepted_and_normalised(written, kept):
    assert parse_phone(written) == kept


@pytest.mark.parametrize("written", ["123", "12345678901", "139-0000-111", "call me", "", "1390000111122"])
def test_not_a_phone_number(written):
    assert parse_phone(written) is None


async def test_flows_take_written_numbers(chat, desk_engine):
    a, b = chat("a"), chat("b")
    assert "绑定成功" in await bind(a, "3-2-1502", "+86 138 0000 0001")  # the roster's 13800000001
    await file_repair(b, "阳台灯不亮了")  # answers the phone question with 13912345678
    await b.send("/repair")
    await b.send("卫生间灯不亮了")
    await b.choose("ok")
    await b.send("卫生间")
    await b.choose_like("estate:")
    await b.choose("done")
    await b.choose("vt:asap")
    out = await b.send("(0755) 8888 1234")
    assert "请确认" in out
    await b.choose("submit")
    _, tk = await tickets(desk_engine)
    assert tk.contact_phone == "0755-88881234"
