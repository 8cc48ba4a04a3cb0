"""One log format: key=value or JSON lines, ticket fields on ticket lines, no phone numbers anywhere."""
from __future__ import annotations

import io
import json
import logging

import pytest

from config.log_format import mask_personal, setup_logging, ticket_fields


@pytest.fixture
def captured():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield stream
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def _lines(stream: io.StringIO, fmt: str) -> list[str]:
    setup_logging("INFO", fmt)
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    log = logging.getLogger("propdesk.test")
    log.info("ticket created for %s", "138-0000-1234", extra=ticket_fields("BX-20261125-0001", 3, "emergency"))
    try:
        raise ValueError("duplicate key (phone)=(13912345678)")
    except ValueError:
        log.exception("insert failed")
    return stream.getvalue().splitlines()


def test_key_value_lines_carry_ticket_fields_and_no_phone(captured):
    lines = _lines(captured, "kv")
    first = lines[0]
    assert "level=info" in first and "logger=propdesk.test" in first
    assert "ticket=BX-20261125-0001" in first and "estate=3" in first and "urgency=emergency" in first
    text = "\n".join(lines)
    assert "13800001234" not in text.replace("-", "") and "13912345678" not in text
    assert "138****34" in text and "139****78" in text


def test_json_lines(captured):
    lines = _lines(captured, "json")
    record = json.loads(lines[0])
    assert record["ticket"] == "BX-20261125-0001" and record["msg"] == "ticket created for 138****34"
    assert "139****78" in json.loads(lines[1])["error"]


@pytest.mark.parametrize("raw", ["13900001111", "139-0000-1111", "+86 139 0000 1111", "(0755) 8888 1234",
                                 "0755-88881234"])
def test_phone_numbers_as_owners_write_them_are_masked(raw):
    assert raw not in mask_personal(f"call {raw} now")


def test_ticket_numbers_and_ids_are_not_taken_for_phones():
    text = "BX-20261125-0001 outbox row 123456789 at 2026-11-25"
    assert mask_personal(text) == text
