"""`propdesk staff` (link codes) and `propdesk qrcode`; linking a chat account with a code through the flows."""
from __future__ import annotations

import re

from sqlalchemy import select

from bot.desk.staff_accounts import add_staff, staff_of
from models import Identity
from tests.helpers.cli import run_cli


def test_staff_add_code_list_and_qrcode(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    r = run_cli("staff", "add", "赵师傅", "13911112222", "--trade", "electrician", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    first = re.search(r"/link ([A-Z0-9]{8})", r.stdout).group(1)
    r = run_cli("staff", "code", "13911112222", cwd=tmp_path, env=env)
    assert r.returncode == 0 and re.search(r"/link ([A-Z0-9]{8})", r.stdout).group(1) != first
    r = run_cli("staff", "code", "10000000000", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no staff member" in r.stderr
    r = run_cli("staff", "list", cwd=tmp_path, env=env)
    assert "赵师傅\t13911112222\ttechnician\telectrician" in r.stdout
    r = run_cli("qrcode", "sg-lift-3a", "--bot", "@propdesk_bot", "--out", str(tmp_path / "qr"), cwd=tmp_path, env=env)
    assert r.returncode == 0 and "https://t.me/propdesk_bot?start=sg-lift-3a" in r.stdout
    assert (tmp_path / "qr" / "sg-lift-3a.png").read_bytes().startswith(b"\x89PNG")
    assert run_cli("qrcode", "nowhere", "--bot", "b", cwd=tmp_path, env=env).returncode == 2
    assert run_cli("qrcode", cwd=tmp_path, env=env).returncode == 2


async def test_link_code_links_once_and_expires(chat, desk_engine, clock):
    async with desk_engine.sm() as s, s.begin():
        staff, code = await add_staff(s, clock, name="王师傅 Master Wang", phone="13900000001")
        _, stale = await add_staff(s, clock, name="刘师傅 Master Liu", phone="13900000002")
    c = chat("staff-1", channel="telegram")
    assert "已关联员工账号：王师傅" in await c.send(f"/link {code.lower()}")
    async with desk_engine.sm() as s:
        assert (await staff_of(s, "telegram", "staff-1")).id == staff.id
    # A code works once.
    assert "无效" in await chat("someone-else", channel="telegram").send(f"/link {code}")
    clock.advance(hours=25)
    assert "无效" in await chat("late", channel="telegram").send(f"/link {stale}")
    async with desk_engine.sm() as s:
        assert await staff_of(s, "telegram", "late") is None
        assert (await s.scalar(select(Identity).where(Identity.external_id == "late"))).person_id != staff.person_id


def test_staff_password_for_the_mobile_page(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    assert run_cli("staff", "add", "赵师傅", "13911112222", cwd=tmp_path, env=env).returncode == 0
    r = run_cli("staff", "password", "13911112222", "--password", "short", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "8 characters" in r.stderr
    piped = run_cli("staff", "password", "13911112222", cwd=tmp_path, env=env, stdin="correct horse\n")
    assert piped.returncode == 0 and "password set" in piped.stdout
    assert run_cli("staff", "password", "10000000000", "--password", "long enough", cwd=tmp_path,
                env=env).returncode == 2


def test_notice_cli(tmp_path):
    env = {"PROPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    r = run_cli("notice", "--estate", "SG", "--building", "3", "明天", "停水", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no estate with code 'SG'" in r.stderr  # an empty database has no estate
    assert run_cli("notice", "--estate", "SG", "x" * 1001, cwd=tmp_path, env=env).returncode == 2
