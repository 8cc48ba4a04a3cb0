"""The command line says what it expects and fails with the reason instead of doing something silently."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.desk.demo_seed import seed_demo
from bot.desk.roster_import import ImportError_, import_owners
from models import Estate
from models.db import make_engine, make_sessionmaker
from tests.helpers.cli import run_cli as _cli


@pytest.fixture
async def sm(db_url):
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    async with sm() as s, s.begin():
        await seed_demo(s)
    yield sm
    await engine.dispose()


async def test_unknown_estate_is_an_error_naming_the_row(sm, tmp_path):
    f = tmp_path / "owners.csv"
    f.write_text("estate,unit,name,phone\nSG,3-2-1502,张伟,13800000001\nSGG,1-1-101,钱程,13700000002\n"
                 "翠湖苑 Jade Lake,2-1-801,孙,13700000003\n", encoding="utf-8")
    with pytest.raises(ImportError_) as err:
        async with sm() as s, s.begin():
            await import_owners(s, f)
    [(row, message)] = err.value.errors
    assert row == 3 and "SGG" in message and "SG (阳光花园" in message and "--create-estates" in message
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Estate)) == 2  # nothing created
    async with sm() as s, s.begin():
        result = await import_owners(s, f, create_estates=True)
    assert result.rows == 3
    async with sm() as s:
        assert "SGG" in (await s.scalars(select(Estate.code))).all()


def test_cli_import_refuses_an_unknown_estate_and_help_lists_columns(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    f = tmp_path / "owners.csv"
    f.write_text("estate,unit,name,phone\nZZ,1-1-101,A,13700000001\n", encoding="utf-8")
    r = _cli("import", "owners", str(f), cwd=tmp_path, env=env)
    assert r.returncode == 2 and "row 2: unknown estate 'ZZ'" in r.stderr
    r = _cli("import", "owners", str(f), "--create-estates", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = _cli("import", "--help", cwd=tmp_path, env=env)
    assert r.returncode == 0
    for column in ("estate, unit, name, phone[, role]", "amount_due", "due_date", "--create-estates"):
        assert column in r.stdout


def test_notice_to_an_unknown_estate_or_building_fails_with_the_reason(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    roster = tmp_path / "owners.csv"
    roster.write_text("estate,unit,name,phone\nGH,5-1-1201,赵敏,13700000001\nGH,6-1-101,钱程,13700000002\n",
                      encoding="utf-8")
    assert _cli("import", "owners", str(roster), "--create-estates", cwd=tmp_path, env=env).returncode == 0
    r = _cli("notice", "--estate", "ZZ", "明天停水", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no estate with code 'ZZ'" in r.stderr and "GH" in r.stderr
    assert "queued" not in r.stdout
    r = _cli("notice", "--estate", "GH", "--building", "5", "--building", "9", "明天停水", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no building '9'" in r.stderr and "buildings: 5, 6" in r.stderr
    r = _cli("notice", "--estate", "GH", "--building", "5", "明天停水", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "nobody" in r.stdout  # a real estate where nobody has bound a chat yet


def test_classify_says_it_reads_json_lines(tmp_path):
    import subprocess
    import sys

    ROOT = Path(__file__).resolve().parents[1]

    r = _cli("classify", "--help", cwd=tmp_path)
    assert "JSON lines" in r.stdout and '"text"' in r.stdout
    r = subprocess.run([sys.executable, "-m", "bot.cli", "classify"], input="电梯困人了，快来\n", cwd=tmp_path,
                       capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1
    assert 'expected one JSON object per line with a \\"text\\" string' in r.stdout and "got plain text" in r.stdout
    assert "Expecting value" not in r.stdout


def test_estates_lists_codes_and_buildings(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    r = _cli("estates", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "no estates yet" in r.stdout
    roster = tmp_path / "owners.csv"
    roster.write_text("estate,unit,name,phone\nGH,10-1-1201,赵敏,13700000001\nGH,9-1-101,钱程,13700000002\n",
                      encoding="utf-8")
    _cli("import", "owners", str(roster), "--create-estates", cwd=tmp_path, env=env)
    r = _cli("estates", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "GH\tGH\t9, 10" in r.stdout
    assert "estates" in _cli("--help", cwd=tmp_path, env=env).stdout
