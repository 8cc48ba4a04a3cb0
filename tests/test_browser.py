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
    import threading

    output: list[str] = []
    threading.Thread(target=lambda: output.extend(iter(lambda: proc.stdout.readline().decode(errors="replace"), "")),
                     daemon=True).start()

    def healthy() -> bool:
        assert proc.poll() is None, "propdesk run exited: " + "".join(output)
        try:
            return urllib.request.urlopen(url + "/healthz", timeout=1).status == 200
        except OSError:
            return False

    try:
        asyncio.run(wait_for(healthy, timeout=30, what="propdesk run to answer /healthz"))
    except AssertionError:
        proc.kill()
        raise
    # The demo logins `propdesk run` printed: role -> (phone, password).
    asyncio.run(wait_for(lambda: any("technician" in line for line in output), timeout=30,
                         what="the demo logins printed by propdesk run"))
    logins = {p[0]: (p[p.index("phone") + 1], p[p.index("password") + 1]) for p in (line.split() for line in output)
              if len(p) > 4 and "password" in p and "phone" in p}
    yield url, logins
    proc.terminate()
    proc.wait(10)


def test_file_a_repair_by_clicking(server, tmp_path):
    server, logins = server
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

        # Staff sign in to the console with the printed demo login, claim it, and the owner's side updates.
        staff = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        staff.goto(server + "/console")
        phone, password = logins["technician"]
        staff.fill("#login-phone", phone)
        staff.fill("#login-password", password)
        staff.click("#login-form button[type=submit]")
        row = staff.locator(f"#list li[data-number='{number}']")
        expect(row).to_be_visible(timeout=10_000)
        row.click()
        staff.locator("#detail button[data-action=claim]").click()
        expect(staff.locator("#detail .badge.status")).to_contain_text("已接单", timeout=10_000)
        expect(page.locator(".msg.notice").last).to_contain_text("接单", timeout=10_000)
        page.screenshot(path=str(tmp_path / "web-chat.png"), full_page=True)
        browser.close()
