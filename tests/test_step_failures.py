"""A step that fails never leaves an owner unanswered: an apology and the menu, the error logged, the conversation
usable again; with the database gone, an apology with the duty phone."""
from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

import handlers.fees
from bot.app import App
from bot.desk.demo_seed import seed_demo
from bot.server import build_app
from config.settings import Settings


def _broken_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in one flow (the fees flow's start): a stand-in for any exception a flow may raise."""
    async def boom(ctx):  # noqa: ANN001, ANN202
        raise RuntimeError("a bug in the fees flow")

    monkeypatch.setattr(handlers.fees, "start", boom)
    from handlers import menu
    monkeypatch.setitem(menu.STARTERS, "fees", boom)


async def test_a_failing_flow_answers_with_an_apology_and_the_menu(chat, monkeypatch, caplog):
    owner = chat("u-fail")
    await owner.send("我要报修")  # in the middle of a flow
    _broken_flow(monkeypatch)
    with caplog.at_level(logging.ERROR, logger="propdesk.engine"):
        answer = await owner.send("/fees")
    assert "抱歉，系统刚才出了点问题" in answer
    assert "repair" in owner.choices and "fees" in owner.choices  # the menu, to start again
    assert any("step failed" in r.getMessage() and "u-fail" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    # The conversation was reset, not left half-way: the next message starts cleanly.
    assert "物业费" in await owner.send("/fees") or owner.choices


async def test_web_chat_gets_an_answer_not_a_500(db_url, clock, tmp_path, monkeypatch):
    app = App.create(Settings(database_url=db_url, upload_dir=str(tmp_path / "up")), clock=clock)
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s, today=clock.local().date())
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as client:
        user = (await (await client.post("/api/web/session", json={})).json())["user"]
        _broken_flow(monkeypatch)
        resp = await client.post("/api/web/send", json={"user": user, "text": "/fees"})
        assert resp.status == 200
        replies = (await resp.json())["replies"]
        assert "抱歉" in replies[0]["text"] and any(c["id"] == "repair" for r in replies for c in r["choices"])
    await app.close()


async def test_with_the_database_gone_the_owner_still_hears_the_duty_phone(clock, tmp_path):
    app = App.create(Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
                              upload_dir=str(tmp_path / "up")), clock=clock)
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as client:
        resp = await client.post("/api/web/send", json={"user": "w-abcdefgh", "text": "楼道里好大一股煤气味"})
        assert resp.status == 200
        text = (await resp.json())["replies"][0]["text"]
        assert "值班电话" in text and app.settings.duty_phone in text
    await app.close()
