"""`propdesk run --workers N`: N processes on one port and one PostgreSQL, started and stopped as one service."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.databases import NO_PG, PG_URL

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROPDESK_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=2).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_more_than_one_worker_on_sqlite_is_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bot.cli", "run", "--workers", "2"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "needs PostgreSQL" in out.stderr


@pytest.mark.skipif(not PG_URL, reason=NO_PG)
def test_workers_share_the_port_and_stop_together(tmp_path, pg_migrated):
    port = _free_port()
    env = _env(PROPDESK_DATABASE_URL=pg_migrated, PROPDESK_HTTP_PORT=str(port), PROPDESK_METRICS_TOKEN="t")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--workers", "2", "--demo"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while _status(f"http://127.0.0.1:{port}/readyz") != 200:
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "the workers never became ready"
            time.sleep(0.2)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) >= 2
        for _ in range(20):  # connections spread over the workers; every one answers
            assert _status(f"http://127.0.0.1:{port}/healthz") == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out
    assert out.count("propdesk is up") == 2 and "Traceback" not in out
