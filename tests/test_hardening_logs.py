"""Personal data stays out of logs: database errors that carry a row's values."""
from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from config.log_format import setup_logging
from models import Person
from models.db import make_engine


async def failing_insert(url: str) -> DBAPIError:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(Person).values(id=1, name="张伟", phone="13912345678"))
            await conn.execute(insert(Person).values(id=1, name="张伟", phone="13912345678"))  # duplicate key
    except DBAPIError as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("no error")


async def test_a_database_error_in_the_log_shows_no_phone(db_url, capsys):
    error = await failing_insert(db_url)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("INFO", "kv")
    try:
        try:
            raise error
        except DBAPIError:
            logging.getLogger("propdesk.test").exception("step failed")
        out = capsys.readouterr().err + capsys.readouterr().out
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert "13912345678" not in out


async def test_database_errors_carry_no_parameters(db_url):
    error = await failing_insert(db_url)
    assert "张伟" not in str(error) and "13912345678" not in str(error)
