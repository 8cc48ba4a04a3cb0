"""Health that tells the truth (a database or an upload folder that cannot be written), and start-up errors as one
clear line with a non-zero exit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from bot.app import App
from bot.server import build_app
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


async def health(settings: Settings, clock, read_only: bool = False) -> tuple[int, dict]:  # noqa: ANN001
    app = App.create(settings, clock=clock)
    if read_only:
        @event.listens_for(app.db.sync_engine, "connect")
        def _read_only(dbapi_conn, _record) -> None:  # noqa: ANN001 - as a read-only file behaves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.close()

        await app.db.dispose()
    async with TestClient(TestServer(build_app(app), host="127.0.0.1")) as c:
        resp = await c.get("/healthz")
        body = await resp.json()
    await app.close()
    return resp.status, body


async def test_health_reports_a_database_that_cannot_be_written(sqlite_url, clock, tmp_path):
    settings = Settings(database_url=sqlite_url, upload_dir=str(tmp_path / "up"))
    assert await health(settings, clock) == (200, {"status": "ok", "database": "ok", "uploads": "ok"})
    status, body = await health(settings, clock, read_only=True)
    assert status == 503 and body["database"] == "unwritable" and body["uploads"] == "ok"


async def test_health_reports_an_upload_folder_that_cannot_be_written(db_url, clock, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the upload folder should be")
    status, body = await health(Settings(database_url=db_url, upload_dir=str(blocker / "up")), clock)
    assert status == 503 and body == {"status": "error", "database": "ok", "uploads": "unwritable"}


def propdesk_run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "PROPDESK_HTTP_PORT": "0", "PROPDESK_UPLOAD_DIR": str(tmp_path / "up"),
               **{f"PROPDESK_{k.upper()}": v for k, v in env.items()}}
    return subprocess.run([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=60)


def assert_one_clear_line(done: subprocess.CompletedProcess, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("propdesk: cannot start:") and all(w in lines[0] for w in words), lines[0]


def test_start_up_errors_are_one_line_and_a_non_zero_exit(tmp_path, sqlite_template):
    # No such folder for the SQLite file.
    assert_one_clear_line(propdesk_run(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/nope/x.db"),
                          "does not exist")
    # An unreachable database server (and its password never printed).
    assert_one_clear_line(propdesk_run(tmp_path, database_url="postgresql+asyncpg://u:secretpw@127.0.0.1:1/db"),
                          "cannot be reached")
    assert "secretpw" not in propdesk_run(tmp_path, database_url="postgresql+asyncpg://u:secretpw@127.0.0.1:1/db")\
        .stderr
    # An upload folder that cannot be made.
    (tmp_path / "file").write_text("x")
    db = tmp_path / "ok.db"
    db.write_bytes(sqlite_template.read_bytes())
    assert_one_clear_line(propdesk_run(tmp_path, database_url=f"sqlite+aiosqlite:///{db}",
                                       upload_dir=str(tmp_path / "file" / "up")), "upload folder")


async def test_an_unmigrated_database_is_refused_at_start(tmp_path, clock):
    import pytest

    from bot.runner import StartupError, prepare

    app = App.create(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/empty.db",
                              upload_dir=str(tmp_path / "up")), clock=clock)
    try:
        with pytest.raises(StartupError, match="propdesk db upgrade"):
            await prepare(app, demo=False)
    finally:
        await app.close()
