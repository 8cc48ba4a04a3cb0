"""Periodic sweeps run by the scheduler; what is due lives in indexed columns, not in scheduler job stores."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from config.i18n import t
from models import Conversation, JobRun, OutboxMessage, Ticket
from models.db import insert_for

from bot.desk import escalation
from bot.app import App
from bot.jobs.fee_reminders import send_fee_reminders
from bot.jobs.notices import daily_digest, report_summary
from bot.desk.reports import Period
from bot.desk.ticket_service import TicketService

log = logging.getLogger("propdesk.sweeps")


async def expire_conversations(app: App, limit: int = 500) -> int:
    """Close flows abandoned for longer than the timeout, telling the owner so."""
    cutoff = app.clock.now() - timedelta(minutes=app.settings.conversation_timeout_minutes)
    async with app.sessionmaker() as s, s.begin():
        q = (select(Conversation).where(Conversation.flow != "menu", Conversation.updated_at < cutoff)
             .limit(limit).with_for_update(skip_locked=True))
        rows = (await s.scalars(q)).all()
        for conv in rows:
            s.add(OutboxMessage.new(conv.channel, conv.chat_id,
                                    {"text": t(conv.lang or app.settings.default_lang, "common.expired"),
                                     "choices": []}, at=app.clock.now()))
            conv.flow, conv.state, conv.data = "menu", "idle", {}
            conv.updated_at = app.clock.now()
    if rows:
        log.info("expired %d abandoned conversations", len(rows))
    return len(rows)


async def managers_digest(app: App) -> bool:
    """Once a day, by whichever worker gets there first (a job-run row, inserted once)."""
    async with app.sessionmaker() as s, s.begin():
        insert = insert_for(s.bind.dialect.name)
        first = await s.execute(insert(JobRun).values(name="managers_digest",
                                                      run_key=app.clock.local().date().isoformat(),
                                                      created_at=app.clock.now()).on_conflict_do_nothing())
        if first.rowcount != 1:
            return False
        await daily_digest(s, app.settings, app.clock, app.engine.dispatch)
    app.wake_delivery()
    return True


async def managers_report(app: App, which: str) -> bool:
    """The weekly (last Monday to Sunday) or monthly (last month) service report, once per period across workers."""
    today, tz = app.clock.local().date(), app.settings.timezone
    period = Period.week_before(today, tz) if which == "weekly" else Period.month_before(today, tz)
    assert period.first is not None  # a week or a month is whole local days
    async with app.sessionmaker() as s, s.begin():
        insert = insert_for(s.bind.dialect.name)
        first = await s.execute(insert(JobRun).values(name=f"report_{which}", run_key=period.first.isoformat(),
                                                      created_at=app.clock.now()).on_conflict_do_nothing())
        if first.rowcount != 1:
            return False
        await report_summary(s, app.settings, app.clock, app.engine.dispatch, period, which)
    app.wake_delivery()
    return True


async def sla_sweep(app: App, limit: int = 200, batch: int = 20) -> int:
    """Every ticket whose next check is due: reminders, escalations, the end of the return visit.

    Due rows are claimed with FOR UPDATE SKIP LOCKED, so several workers share the work and none does a
    ticket twice; a worker that dies mid-sweep rolls back and the rows are due again for the next sweep. The work
    goes in small transactions, yielding between them: on SQLite a transaction holds the one write lock, and owners'
    messages must not wait behind a sweep of hundreds of tickets.
    """
    with app.metrics.sweep("sla"):
        return await _sla_sweep(app, limit, batch)


async def _sla_sweep(app: App, limit: int, batch: int) -> int:
    now = app.clock.now()
    done = seen = 0
    while seen < limit:
        claimed, changed = await _sweep_batch(app, now, min(batch, limit - seen))
        seen += claimed
        done += changed
        if changed:
            app.wake_delivery()
        if claimed < batch:
            break
        await asyncio.sleep(0)  # let conversation steps and deliveries run between batches
    return done


async def _sweep_batch(app: App, now: datetime, size: int) -> tuple[int, int]:
    """(claimed, handled) for one transaction's worth of due tickets."""
    async with app.sessionmaker() as s, s.begin():
        tickets = (await s.scalars(select(Ticket).where(Ticket.next_check_at <= now)
                                   .order_by(Ticket.next_check_at).limit(size)
                                   .with_for_update(skip_locked=True))).all()
        svc = TicketService(s, app.clock, app.engine.dispatch)
        done = 0
        for ticket in tickets:
            # Compare-and-set on the check time: SQLite has no row locks, and only one worker may do a ticket.
            won = await s.execute(update(Ticket).where(Ticket.id == ticket.id,
                                                       Ticket.next_check_at == ticket.next_check_at)
                                  .values(next_check_at=ticket.next_check_at)
                                  .execution_options(synchronize_session=False))
            if won.rowcount != 1:
                continue
            await escalation.check(svc, ticket, now, app.settings.staff_lang)
            done += 1
    return len(tickets), done


def schedule(app: App, scheduler) -> None:  # noqa: ANN001 - an APScheduler AsyncIOScheduler
    """The jobs of this process: in-memory only (APScheduler 3 job stores must not be shared)."""
    scheduler.add_job(expire_conversations, "interval", args=[app], seconds=60, id="expire_conversations",
                      max_instances=1, coalesce=True)
    scheduler.add_job(sla_sweep, "interval", args=[app], seconds=30, id="sla_sweep", max_instances=1,
                      coalesce=True)
    scheduler.add_job(send_fee_reminders, "interval", args=[app], minutes=30, id="fee_reminders", max_instances=1,
                      coalesce=True)
    hour, minute = (int(x) for x in app.settings.digest_time.split(":"))
    scheduler.add_job(managers_digest, "cron", args=[app], hour=hour, minute=minute, timezone=app.settings.timezone,
                      id="managers_digest", max_instances=1, coalesce=True)
    hour, minute = (int(x) for x in app.settings.report_weekly_time.split(":"))
    scheduler.add_job(managers_report, "cron", args=[app, "weekly"], day_of_week=app.settings.report_weekly_day,
                      hour=hour, minute=minute, timezone=app.settings.timezone, id="report_weekly", max_instances=1,
                      coalesce=True)
    hour, minute = (int(x) for x in app.settings.report_monthly_time.split(":"))
    scheduler.add_job(managers_report, "cron", args=[app, "monthly"], day=app.settings.report_monthly_day,
                      hour=hour, minute=minute, timezone=app.settings.timezone, id="report_monthly", max_instances=1,
                      coalesce=True)
