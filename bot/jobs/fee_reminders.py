"""Fee reminders to bound owners: before a bill falls due, and a monthly arrears notice (催缴), outside quiet hours.

Each reminder is logged per unit and bill (`fee_reminders`, unique per bill, kind and round) in the same
transaction that queues it, so several workers or a restart never remind anyone twice.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from config.i18n import t
from models import Bill, Binding, FeeReminder, Identity, OutboxMessage, Person, Unit
from models.db import insert_for

from bot.app import App
from bot.jobs.notices import after_quiet_hours

log = logging.getLogger("propdesk.fees")


async def send_fee_reminders(app: App) -> int:
    """Queue the reminders due now; how many bills were reminded."""
    if after_quiet_hours(app.settings, app.clock) is not None:
        return 0  # quiet hours: the next run after them sends
    s_ = app.settings
    today = app.clock.local().date()
    rounds = []
    async with app.sessionmaker() as s, s.begin():
        soon = (await s.scalars(select(Bill).where(Bill.amount_paid < Bill.amount_due, Bill.due_date >= today,
                                                   Bill.due_date <= today + timedelta(days=s_.fee_due_days_before))
                                .options(selectinload(Bill.unit).selectinload(Unit.building)))).all()
        rounds += [(bill, "due", "due") for bill in soon]
        if today.day >= s_.fee_arrears_day:
            late = (await s.scalars(select(Bill).where(Bill.amount_paid < Bill.amount_due, Bill.due_date < today)
                                    .options(selectinload(Bill.unit).selectinload(Unit.building)))).all()
            rounds += [(bill, "arrears", f"{today:%Y-%m}") for bill in late]
        insert = insert_for(s.bind.dialect.name)
        done = 0
        for bill, kind, round_ in rounds:
            logged = await s.execute(insert(FeeReminder).values(unit_id=bill.unit_id, bill_id=bill.id, kind=kind,
                                                                round=round_, recipients=0,
                                                                created_at=app.clock.now())
                                     .on_conflict_do_nothing().returning(FeeReminder.id))
            reminder_id = logged.scalar()
            if reminder_id is None:
                continue  # this round was done already (here or by another worker)
            reminder = await s.get(FeeReminder, reminder_id)
            reminder.recipients = await _queue(app, s, bill, kind)
            done += 1
    if done:
        app.wake_delivery()
        log.info("queued %d fee reminders", done)
    return done


async def _queue(app: App, s: AsyncSession, bill: Bill, kind: str) -> int:
    """The reminder to every active chat account of everyone bound to the bill's unit, in their language."""
    rows = (await s.execute(select(Identity, Person).join(Person, Person.id == Identity.person_id)
                            .join(Binding, Binding.person_id == Person.id)
                            .where(Binding.unit_id == bill.unit_id, Binding.status == "active",
                                   Identity.active.is_(True)))).all()
    for ident, person in rows:
        lang = person.lang or app.settings.default_lang
        text = t(lang, f"fees.remind_{kind}", unit=bill.unit.label, period=bill.period, item=bill.item,
                 amount=f"{bill.amount_due - bill.amount_paid:.2f}", due=bill.due_date.isoformat(),
                 how=t(lang, "fees.how_to_pay", office=app.settings.office_name))
        s.add(OutboxMessage.new(ident.channel, ident.chat_id, {"text": text, "template": "fee"}, at=app.clock.now()))
    return len(rows)


