"""The desk services every staff surface calls: scoping by estate, and what the web chat's poll hands out."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import App
from bot.conversation.engine import Sender
from bot.desk.demo_seed import seed_demo
from bot.desk.staff_accounts import add_staff
from bot.desk.access import StaffRef
from bot.desk.console_queries import TicketFilter
from bot.desk.staff_desk import StaffActionError
from config.settings import Settings
from handlers.messages import Inbound
from models import Estate, Person, Staff, Ticket


@pytest.fixture
async def app(db_url, clock, tmp_path):
    app = App.create(Settings(database_url=db_url, upload_dir=str(tmp_path / "uploads")), clock=clock)
    async with app.sessionmaker() as s, s.begin():
        await seed_demo(s, today=clock.local().date())
        await add_staff(s, clock, name="赵师傅 Zhao", phone="13900000009", estates=["CH"])
    yield app
    await app.close()


async def _staff(app: App, phone: str) -> StaffRef:
    """The active staff member with this phone, as the surfaces hold them."""
    async with app.sessionmaker() as s:
        staff_id = await s.scalar(select(Staff.id).join(Person, Person.id == Staff.person_id)
                                  .where(Person.phone == phone))
    ref = await app.staff_desk.staff_by_id(staff_id)
    assert ref is not None
    return ref


ZHAO, WANG = "13900000009", "13900000001"  # Zhao works for CH only; Wang for both estates


async def _ticket_in(app: App, estate: str, user: str, text: str) -> str:
    """A repair reported by a roster owner of `estate` (an emergency: filed from the first message)."""
    owners = [o for o in await app.owner_accounts.roster_owners() if o["estate"].startswith(
        {"SG": "阳光花园", "CH": "翠湖苑"}[estate])]
    await app.owner_accounts.attach_roster_owner("web", user, user, owners[0]["person_id"])
    await app.engine.handle(Sender("web", user, user), Inbound.text_or_command(text))
    async with app.sessionmaker() as s:
        estate_id = await s.scalar(select(Estate.id).where(Estate.code == estate))
        return await s.scalar(select(Ticket.number).where(Ticket.estate_id == estate_id).order_by(Ticket.id.desc()))


async def test_staff_of_one_estate_reach_nothing_of_another(app):
    sg = await _ticket_in(app, "SG", "w-owner-sg", "厨房水管爆了，水漫出来了")
    ch = await _ticket_in(app, "CH", "w-owner-ch", "厨房水管爆了，水漫出来了")
    assert sg and ch
    desk = app.staff_desk
    zhao = await _staff(app, ZHAO)
    # Every way a surface reads or changes a ticket: the view, the card, the photo, the contact, the assignee
    # list, the lists, and every action.
    assert await desk.ticket_view(zhao, ch) is not None
    assert await desk.ticket_view(zhao, sg) is None
    assert await desk.group_card(zhao, sg) is None
    assert await desk.contact(zhao, sg) is None
    assert await desk.photo(zhao, sg, 0) is None
    assert await desk.assignee_choices(zhao, sg) == []
    assert [t["number"] for t in (await desk.console_list(zhao, TicketFilter()))["tickets"]] == [ch]
    for action in ("claim", "comment", "reject", "merge", "resolve"):
        with pytest.raises(StaffActionError):
            await desk.act(zhao, sg, action, note="x")
    assert (await desk.act(zhao, ch, "claim"))["status"] == "assigned"
    # Nor can a ticket of theirs be merged into one of another estate, or passed to someone who cannot see it.
    with pytest.raises(StaffActionError):
        await desk.act(zhao, ch, "merge", note=sg)
    wang = await _staff(app, WANG)
    assert await desk.ticket_view(wang, sg) is not None  # staff of both estates see both
    await desk.act(wang, sg, "claim")
    with pytest.raises(StaffActionError, match="estate"):
        await desk.act(wang, sg, "reassign", assignee_id=zhao.id)
    with pytest.raises(LookupError):
        await desk.send_notice(zhao, "SG", [], "明天停水")
    assert await desk.send_notice(zhao, "CH", [], "明天停水") >= 1


async def test_bindings_are_decided_only_by_staff_of_the_home(app):
    sender = Sender("web", "w-guest-1", "w-guest-1", "访客")
    replies = await app.engine.handle(sender, Inbound(kind="command", command="bind"))
    sg = next(c.id for r in replies for c in r.choices if c.label.startswith("阳光花园"))
    await app.engine.handle(sender, Inbound(kind="choice", choice=sg))
    for text in ("1-2-801", "13812345678", "赵六"):  # a home on the roster, a phone that is not: staff decide
        await app.engine.handle(sender, Inbound.text_or_command(text))
    await app.engine.handle(sender, Inbound(kind="choice", choice="rel:family"))
    desk = app.staff_desk
    zhao = await _staff(app, ZHAO)
    wang = await _staff(app, WANG)
    pending = await desk.pending_bindings(wang)
    sg_binding = next(b for b in pending if b["estate"].startswith("阳光花园"))
    assert sg_binding["id"] not in [b["id"] for b in await desk.pending_bindings(zhao)]
    assert await desk.decide_binding(zhao, sg_binding["id"], True) is None
    assert (await desk.decide_binding(wang, sg_binding["id"], True))["status"] == "active"


async def test_web_poll_holds_a_quiet_hours_notice_until_due(app, clock):
    user = "w-owner-quiet"
    owner = (await app.owner_accounts.roster_owners())[0]
    await app.owner_accounts.attach_roster_owner("web", user, user, owner["person_id"])
    clock.advance(hours=12)  # 22:00 in Shanghai: inside the quiet hours
    wang = await _staff(app, WANG)
    assert await app.staff_desk.send_notice(wang, "SG", [], "明天9点至12点停水") >= 1
    await app.engine.handle(Sender("web", user, user), Inbound.text_or_command("菜单"))
    assert await app.owner_accounts.take_messages("web", user, 0) == []
    # Something else queued later reaches the page at once; the notice still waits.
    await app.queue_messages("web", user, [{"text": "later"}])
    got = await app.owner_accounts.take_messages("web", user, 0)
    assert [m["text"] for m in got] == ["later"]
    after = got[-1]["id"]  # the page asks for what came after the newest it has shown
    clock.advance(hours=10, minutes=1)  # 08:01
    got = await app.owner_accounts.take_messages("web", user, after)
    assert [m["text"] for m in got] == ["📢 明天9点至12点停水"]
    assert await app.owner_accounts.take_messages("web", user, max(after, got[-1]["id"])) == []


async def test_unknown_trade_and_role_are_refused(app, clock):
    async with app.sessionmaker() as s, s.begin():
        with pytest.raises(ValueError, match="unknown trade"):
            await add_staff(s, clock, name="X", phone="13900000111", trade="plumbr")
        with pytest.raises(ValueError, match="unknown role"):
            await add_staff(s, clock, name="X", phone="13900000111", role="boss")


async def test_the_staff_list_costs_the_same_queries_for_3_tickets_as_for_12(app):
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        statements.append(statement)

    wang = await _staff(app, WANG)
    event.listen(app.db.sync_engine, "before_cursor_execute", count)
    try:
        costs = []
        for n in (3, 9):
            for i in range(n):
                user = f"w-n1-{len(costs)}-{i}"
                await app.engine.handle(Sender("web", user, user), Inbound.text_or_command("楼道里好大一股煤气味"))
            statements.clear()
            views = (await app.staff_desk.console_list(wang, TicketFilter()))["tickets"]
            costs.append((len(views), len(statements)))
    finally:
        event.remove(app.db.sync_engine, "before_cursor_execute", count)
    (few, few_queries), (many, many_queries) = costs
    assert many == few + 9 and many_queries == few_queries


async def test_a_long_sla_sweep_lets_owners_in_between_its_batches(app, clock):
    import asyncio

    from bot.jobs.sweeps import sla_sweep

    for i in range(45):
        user = f"w-due-{i}"
        await app.engine.handle(Sender("web", user, user), Inbound.text_or_command("楼道里好大一股煤气味"))
    clock.advance(minutes=20)  # every claim deadline passed: all 45 are due
    order: list[str] = []

    async def sweep() -> None:
        await sla_sweep(app, batch=10)
        order.append("sweep")

    async def owner() -> None:
        await asyncio.sleep(0)  # the sweep has started its first batch
        await app.engine.handle(Sender("web", "w-waiting", "w-waiting"), Inbound.text_or_command("菜单"))
        order.append("owner")

    await asyncio.gather(sweep(), owner())
    assert order == ["owner", "sweep"]
