"""What an operator relies on: /metrics behind its token, /readyz, and workers that start together."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import App
from bot.conversation.engine import Sender
from bot.jobs.sweeps import sla_sweep
from bot.runner import prepare
from bot.server import build_app
from config.settings import Settings
from handlers.messages import Inbound
from models import Estate


@pytest.fixture
async def client(db_url, clock, tmp_path):
    app = App.create(Settings(database_url=db_url, upload_dir=str(tmp_path / "up"), metrics_token="s3cret"),
                     clock=clock)
    await prepare(app, demo=True)
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as c:
        c.propdesk = app
        yield c
    await app.close()


async def test_metrics_need_the_token_and_report_the_desk(client):
    app = client.propdesk
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    for i in range(3):
        await app.engine.handle(Sender("web", f"w-m{i}", f"w-m{i}"), Inbound.text_or_command("楼道里好大一股煤气味"))
    app.clock.advance(minutes=20)
    await sla_sweep(app)
    resp = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert resp.status == 200
    body = await resp.text()
    assert 'propdesk_messages_in_total{channel="web"} 3.0' in body
    assert 'propdesk_tickets{status="new",urgency="emergency"} 3.0' in body
    assert 'propdesk_tickets_overdue{urgency="emergency"} 3.0' in body
    assert 'propdesk_step_seconds_count{channel="web"} 3.0' in body
    assert 'propdesk_sweep_seconds_count{sweep="sla"} 1.0' in body
    assert "propdesk_outbox_messages" in body


async def test_metrics_are_off_without_a_token(db_url, clock):
    app = App.create(Settings(database_url=db_url), clock=clock)
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as c:
        assert (await c.get("/metrics")).status == 404
    await app.close()


async def test_readyz_only_once_the_worker_is_up(client):
    assert (await client.get("/readyz")).status == 503
    client.propdesk.ready = True
    assert (await client.get("/readyz")).status == 200


async def test_workers_started_together_seed_once(db_url, clock):
    apps = [App.create(Settings(database_url=db_url), clock=clock) for _ in range(3)]
    try:
        await asyncio.gather(*(prepare(a, demo=True) for a in apps))
        async with apps[0].sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Estate)) == 2
    finally:
        for a in apps:
            await a.close()
