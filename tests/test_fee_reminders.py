"""Fee reminders to bound owners: before the due date, monthly arrears, quiet hours, never twice."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.app import App
from bot.jobs.fee_reminders import send_fee_reminders
from config.settings import Settings
from models import Binding, FeeReminder, Identity, OutboxMessage, Residency


async def test_due_and_arrears_reminders_once_outside_quiet_hours(desk_engine, clock):
    # The demo: each owner has a bill due on the 28th (in three days) and a parking bill overdue since last month.
    app = App.create(Settings(database_url=desk_engine.settings.database_url), clock=clock)
    try:
        async with app.sessionmaker() as s, s.begin():
            res = await s.scalar(select(Residency).order_by(Residency.id))
            s.add(Binding(person_id=res.person_id, unit_id=res.unit_id, status="active", created_at=clock.now()))
            s.add(Identity(channel="web", external_id="w-zhang", chat_id="w-zhang", person_id=res.person_id,
                           created_at=clock.now()))
        clock.at = datetime(2026, 11, 25, 14, 0)  # 22:00 in Shanghai: quiet hours
        assert await send_fee_reminders(app) == 0
        clock.at = datetime(2026, 11, 25, 2, 0)  # 10:00
        assert await send_fee_reminders(app) == 6  # three units, a due and an arrears reminder each
        async with app.sessionmaker() as s:
            texts = [m.payload["text"] for m in (await s.scalars(select(OutboxMessage))).all()]
            log = (await s.scalars(select(FeeReminder))).all()
        assert len(texts) == 2  # only the bound owner has somewhere to be told
        assert any("缴费提醒" in t and "物业费" in t and "2026-11-28" in t for t in texts)
        assert any("催缴通知" in t and "停车费" in t for t in texts)
        assert sorted((r.kind, r.round) for r in log)[:2] == [("arrears", "2026-11"), ("arrears", "2026-11")]
        assert sum(r.recipients for r in log) == 2
        # Again later that day, or from another worker: nothing new.
        assert await send_fee_reminders(app) == 0
        # Next month the arrears notice comes round again (the due reminder does not).
        clock.at = datetime(2026, 12, 6, 2, 0)
        assert await send_fee_reminders(app) >= 3
    finally:
        await app.close()


async def test_notice_reaches_owners_of_the_chosen_buildings_after_quiet_hours(desk_engine, clock):
    from bot.jobs.notices import send_notice

    settings = Settings(database_url=desk_engine.settings.database_url)
    async with desk_engine.sm() as s, s.begin():
        for res in (await s.scalars(select(Residency).order_by(Residency.id))).all():  # 3-2-1502, 1-1-101 (SG)
            s.add(Binding(person_id=res.person_id, unit_id=res.unit_id, status="active", created_at=clock.now()))
            s.add(Identity(channel="web", external_id=f"w-{res.person_id}", chat_id=f"w-{res.person_id}",
                           person_id=res.person_id, created_at=clock.now()))
    async with desk_engine.sm() as s, s.begin():
        assert await send_notice(s, settings, clock, estate="SG", buildings=["3"], text="明天9点至12点停水") == 1
        assert await send_notice(s, settings, clock, estate="SG", buildings=[], text="电梯检修") == 2
    clock.at = datetime(2026, 11, 25, 15, 0)  # 23:00 in Shanghai
    async with desk_engine.sm() as s, s.begin():
        await send_notice(s, settings, clock, estate="CH", buildings=["2"], text="夜间通知")
    async with desk_engine.sm() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [r.chat_id for r in rows[:1]] == ["w-1"] and "停水" in rows[0].payload["text"]
    assert rows[-1].next_attempt_at == datetime(2026, 11, 26, 0, 0)  # held until 08:00 local


async def test_managers_digest_once_a_day(desk_engine, clock):
    from bot.jobs.sweeps import managers_digest
    from bot.desk.ticket_service import TicketService

    settings = Settings(database_url=desk_engine.settings.database_url,
                        staff_groups={"managers": {"channel": "telegram", "chat_id": "-9"}})
    app = App.create(settings, clock=clock)
    try:
        async with app.sessionmaker() as s, s.begin():
            await TicketService(s, clock, app.engine.dispatch).create(
                kind="repair", category="water", urgency="high", description="漏水", channel="web",
                reporter_id=None, actor="t")
        clock.advance(days=1, hours=1)
        assert await managers_digest(app) is True
        assert await managers_digest(app) is False  # the same day: already sent (by this or another worker)
        async with app.sessionmaker() as s:
            [digest] = (await s.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == "-9",
                                                                     OutboxMessage.kind == "message"))).all()
        text = digest.payload["text"]
        assert "日报" in text and "超时未完成：1" in text and "BX-" in text
    finally:
        await app.close()
