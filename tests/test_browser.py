"""File a repair by clicking through the page in headless Chromium (Debian's chromium driven by Playwright)."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.waiting import wait_for

CHROMIUM = os.environ.get("PROPDESK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Chromium not installed (CI installs Debian's chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The real `propdesk run` in a fresh working directory, on the embedded SQLite default."""
    port = _free_port()
    env = {**os.environ, "PROPDESK_HTTP_PORT": str(port), "PROPDESK_DATABASE_URL": ""}
    env.pop("PROPDESK_DATABASE_URL")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, "propdesk run exited: " + proc.stdout.read().decode(errors="replace")
        try:
            return urllib.request.urlopen(url + "/healthz", timeout=1).status == 200
        except OSError:
            return False

    try:
        asyncio.run(wait_for(healthy, timeout=30, what="propdesk run to answer /healthz"))
    except AssertionError:
        proc.kill()
        raise
    yield url
    proc.terminate()
    proc.wait(10)


def test_file_a_repair_by_clicking(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server)
        page.select_option("#owner-pick", index=1)  # 张伟, bound to 3-2-1502
        page.click("#owner-start")
        expect(page.locator(".msg.bot").first).to_contain_text("欢迎")
        page.click(".choices button[data-choice=repair]")
        page.fill("#text", "卫生间地漏堵了，下水很慢")
        page.press("#text", "Enter")
        expect(page.locator(".msg.bot").last).to_contain_text("水路")
        page.locator(".choices button[data-choice=ok]").last.click()
        page.locator(".choices button[data-choice^='unit:']").last.click()
        expect(page.locator(".msg.bot").last).to_contain_text("照片")
        page.set_input_files("#photo", files=[{"name": "drain.png", "mimeType": "image/png",
                                               "buffer": b"\x89PNG\r\n\x1a\n" + b"\x00" * 32}])
        expect(page.locator(".msg.bot").last).to_contain_text("第 1 张")
        page.locator(".choices button[data-choice=done]").last.click()
        page.locator(".choices button[data-choice='vt:tomorrow_pm']").last.click()
        page.locator(".choices button[data-choice=use_known]").last.click()
        page.locator(".choices button[data-choice=submit]").last.click()
        expect(page.locator(".msg.bot").last).to_contain_text("BX-")
        number = page.locator(".msg.bot").last.inner_text().split("编号 ")[1][:16]

        # The staff pane shows it live; staff claim it and the owner's side updates.
        card = page.locator(f".ticket[data-number='{number}']")
        expect(card).to_be_visible(timeout=10_000)
        card.locator("button[data-action=claim]").click()
        expect(card.locator(".badge.status")).to_contain_text("已接单", timeout=10_000)
        expect(page.locator(".msg.notice").last).to_contain_text("接单", timeout=10_000)
        page.screenshot(path=str(tmp_path / "web-chat.png"), full_page=True)
        browser.close()
