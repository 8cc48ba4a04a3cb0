"""Fee query (缴费查询): outstanding bills with overdue marks, last 12 months of payments, how to pay."""
from __future__ import annotations

from handlers.common import show_menu
from handlers.context import Ctx
from handlers.messages import Inbound

FLOW = "fees"


async def start(ctx: Ctx) -> None:
    units = await ctx.desk.bound_units(ctx.person_id)
    if not units:
        ctx.finish()
        ctx.say("fees.need_binding", [("bind", "menu.bind")])
        return
    bills, payments = await ctx.desk.bills(ctx.person_id)
    lines = []
    for b in bills:
        mark = ctx.t("fees.overdue") if b.overdue else ""
        lines.append(ctx.t("fees.bill_line", unit=b.unit, period=b.period, item=b.item, outstanding=b.outstanding,
                           due=b.due_date.isoformat(), overdue=mark))
    text = ctx.t("fees.outstanding_header") + "\n" + ("\n".join(lines) if lines else ctx.t("fees.none_outstanding"))
    pay_lines = [ctx.t("fees.payment_line", unit=p.unit, item=p.item, period=p.period, amount=p.amount,
                       date=p.paid_at.date().isoformat()) for p in payments]
    text += "\n\n" + ctx.t("fees.payments_header") + "\n" + ("\n".join(pay_lines) if pay_lines
                                                              else ctx.t("fees.no_payments"))
    text += "\n\n" + ctx.t("fees.how_to_pay", office=ctx.settings.office_name)
    ctx.say_text(text)
    show_menu(ctx, "menu.more")


async def step(ctx: Ctx, msg: Inbound) -> None:
    await start(ctx)
