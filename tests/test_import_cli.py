"""Roster and bill imports (CSV, .xlsx, all-or-nothing), `propdesk db upgrade`, and the expiry sweep."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.conversation.engine import Sender
from bot.desk.roster_import import ImportError_, import_bills, import_owners
from bot.jobs.sweeps import expire_conversations
from config.settings import Settings
from handlers.messages import Inbound
from models import Bill, Conversation, OutboxMessage, Person, Residency, Unit
from tests.helpers.dialog import make_desk
from models.db import make_engine, make_sessionmaker
from tests.helpers.cli import run_cli

async def count(sm, model):
    async with sm() as s:
        return await s.scalar(select(func.count()).select_from(model))


@pytest.fixture
async def sm(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_import_owners_csv_then_update(sm, tmp_path):
    f = tmp_path / "owners.csv"
    f.write_text("\ufeffEstate,Unit,Name,Phone,Role\nGH,5-1-1201,赵敏,13700000001,业主\n"
                 "GH,5栋1单元1202,钱程,137 0000 0002,tenant\n\nGH,5-1-1201,赵小敏,13700000003,family\n",
                 encoding="utf-8")
    async with sm() as s, s.begin():
        r = await import_owners(s, f, create_estates=True)
    assert (r.rows, r.created, r.updated) == (3, 3, 0)
    assert await count(sm, Residency) == 3 and await count(sm, Unit) == 2
    async with sm() as s, s.begin():
        r = await import_owners(s, f, create_estates=True)
    assert (r.created, r.updated) == (0, 3)
    async with sm() as s:
        roles = sorted((await s.scalars(select(Residency.role))).all())
    assert roles == ["family", "owner", "tenant"]


async def test_bad_row_imports_nothing_and_names_the_row(sm, tmp_path):
    f = tmp_path / "owners.csv"
    f.write_text("estate,unit,name,phone\nGH,5-1-1201,赵敏,13700000001\nGH,not a unit,钱程,13700000002\n"
                 "GH,5-1-1203,孙,12345\n", encoding="utf-8")
    with pytest.raises(ImportError_) as err:
        async with sm() as s, s.begin():
            await import_owners(s, f, create_estates=True)
    assert [n for n, _ in err.value.errors] == [3, 4]
    assert "unit" in err.value.errors[0][1] and "phone" in err.value.errors[1][1]
    assert await count(sm, Person) == 0 and await count(sm, Residency) == 0


async def test_missing_columns_and_empty_file(sm, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("estate,unit\nGH,1-1-101\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="missing column"):
        async with sm() as s, s.begin():
            await import_owners(s, f)
    f.write_text("", encoding="utf-8")
    with pytest.raises(ImportError_, match="no data"):
        async with sm() as s, s.begin():
            await import_bills(s, f)


async def test_import_bills_xlsx(sm, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["estate", "unit", "period", "item", "amount_due", "amount_paid", "due_date"])
    ws.append(["GH", "5-1-1201", "2026-11", "物业费", 268.5, 0, "2026-11-28"])
    ws.append(["GH", "5-1-1201", "2026-11", "停车费", 300, 300, "2026-11-28"])
    path = tmp_path / "bills.xlsx"
    wb.save(path)
    async with sm() as s, s.begin():
        r = await import_bills(s, path, create_estates=True)
    assert r.created == 2
    async with sm() as s:
        bills = (await s.scalars(select(Bill).order_by(Bill.id))).all()
    assert [(b.item, str(b.amount_due), str(b.outstanding)) for b in bills] == [
        ("物业费", "268.50", "268.50"), ("停车费", "300.00", "0.00")]


async def test_bad_bill_amounts_are_refused(sm, tmp_path):
    f = tmp_path / "bills.csv"
    f.write_text("estate,unit,period,item,amount_due,amount_paid,due_date\n"
                 "GH,5-1-1201,2026-11,物业费,abc,,2026-11-28\nGH,5-1-1201,2026-11,水费,10,20,2026-11-28\n"
                 "GH,5-1-1201,nov,水费,10,0,2026-11-28\nGH,5-1-1201,2026-11,电费,10,0,28/11/2026\n",
                 encoding="utf-8")
    with pytest.raises(ImportError_) as err:
        async with sm() as s, s.begin():
            await import_bills(s, f, create_estates=True)
    assert [n for n, _ in err.value.errors] == [2, 3, 4, 5]
    assert await count(sm, Bill) == 0


def test_cli_db_upgrade_and_import(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    r = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("estate,unit,name,phone\nGH,1-1-101,A,13700000001\nGH,??,B,13700000002\n", encoding="utf-8")
    r = run_cli("import", "owners", str(bad), cwd=tmp_path, env=env)
    assert r.returncode == 2 and "row 3" in r.stderr and "nothing was changed" in r.stderr
    good = tmp_path / "good.csv"
    good.write_text("estate,unit,name,phone\nGH,1-1-101,A,13700000001\n", encoding="utf-8")
    r = run_cli("import", "owners", str(good), "--create-estates", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "1 rows imported" in r.stdout
    r = run_cli("import", "owners", str(tmp_path / "missing.csv"), cwd=tmp_path, env=env)
    assert r.returncode == 2 and "cannot read" in r.stderr


async def test_expiry_sweep_tells_the_owner(db_url, clock):
    engine, sm_, eng = await make_desk(db_url, clock)
    app = App(settings=Settings(database_url=db_url), db=engine, sessionmaker=sm_, engine=eng, clock=clock)
    await eng.handle(Sender("web", "w-abandon", "w-abandon"), Inbound.text_or_command("/repair"))
    assert await expire_conversations(app) == 0
    clock.advance(minutes=31)
    assert await expire_conversations(app) == 1
    async with sm_() as s:
        conv = await s.get(Conversation, ("web", "w-abandon"))
        msg = (await s.scalars(select(OutboxMessage))).one()
    assert conv.flow == "menu" and "长时间没有回复" in msg.payload["text"] and msg.chat_id == "w-abandon"
    assert await expire_conversations(app) == 0
    await app.close()
