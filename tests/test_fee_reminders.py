"""Fee reminders to bound owners: before the due date, monthly arrears, quiet hours, never twice."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.app import App
from bot.fee_reminders import send_fee_reminders
from config.settings import Settings
from models import Binding, FeeReminder, Identity, OutboxMessage, Residency


async def test_due_and_arrears_reminders_once_outside_quiet_hours(any_engine, clock):
    # The demo: each owner has a bill due on the 28th (in three days) and a parking bill overdue since last month.
    app = App.create(Settings(database_url=any_engine.settings.database_url), clock=clock)
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
