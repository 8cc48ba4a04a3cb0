"""Signed WeChat callbacks into propdesk's /wechat route, side by side with a bare wechatpy echo handler on aiohttp.

    .venv/bin/python bench/wechat_callbacks.py [--rate 200] [--seconds 10] [--owners 200] [--mode plain|safe]
                                               [--rounds 5] [--round-seconds 4]
                                               [--database-url postgresql+asyncpg://...]

Both servers run in this process on one event loop (one worker); the load comes from a child process that plays
WeChat: it signs (and in safe mode encrypts) each POST. Two measurements per server:
- open loop: after a warm-up (each owner's first message), messages at a fixed rate (default 200/s, owners in
  turn) for a while; latency p50/p99 of each POST;
- closed loop: as fast as it goes with 50 owners at a time, for `--round-seconds`; requests/s, and this process's
  CPU time per request. The two servers take turns, `--rounds` times; the throughput ratio is the median round's.
propdesk's owners walk a real conversation (menu, a repair description that is classified, cancel, my tickets),
each message a new MsgId; every one is answered inside the request.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wechatpy import parse_message  # noqa: E402
from wechatpy.crypto import WeChatCrypto  # noqa: E402
from wechatpy.replies import TextReply  # noqa: E402
from wechatpy.utils import check_signature  # noqa: E402

from bench.common import fresh_database, paced, start_propdesk  # noqa: E402
from bot.channels.wechat.channel import WeChatChannel  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.fakes import wechat as wx  # noqa: E402
from tests.fakes.loopback import serve  # noqa: E402

SCRIPT = ["菜单", "厨房水龙头一直滴水", "取消", "我的工单"]


def echo_app() -> web.Application:
    """What a bare wechatpy handler does: check the signature, decrypt, parse, answer the text back."""
    crypto = WeChatCrypto(wx.TOKEN, wx.AES_KEY, wx.APP_ID)

    async def handle(request: web.Request) -> web.Response:
        q = request.query
        check_signature(wx.TOKEN, q["signature"], q["timestamp"], q["nonce"])
        body = await request.read()
        if q.get("encrypt_type") == "aes":
            body = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        msg = parse_message(body)
        xml = TextReply(message=msg, content=getattr(msg, "content", "")).render()
        if q.get("encrypt_type") == "aes":
            xml = crypto.encrypt_message(xml, q["nonce"], q["timestamp"])
        return web.Response(text=xml, content_type="application/xml")

    webapp = web.Application()
    webapp.router.add_post("/wechat", handle)
    return webapp


async def propdesk(workdir: Path, database_url: str | None):  # noqa: ANN201
    settings = Settings(database_url=await fresh_database(workdir, database_url), wechat_token=wx.TOKEN,
                        wechat_app_id=wx.APP_ID, wechat_app_secret=wx.APP_SECRET, wechat_aes_key=wx.AES_KEY,
                        wechat_api_base_url="http://127.0.0.1:9", upload_dir=str(workdir / "uploads"))
    stop, base = await start_propdesk(settings, WeChatChannel)
    return stop, base + "/wechat"


# -- the child process: WeChat's side --------------------------------------------------------------------------
_fake: list[wx.FakeWeChat] = []


def _wechat() -> wx.FakeWeChat:
    """One WeChat for the whole run, so that message ids never repeat between runs (a repeat is a retry)."""
    if not _fake:
        _fake.append(wx.FakeWeChat())
    return _fake[0]


async def post(http: aiohttp.ClientSession, fake: wx.FakeWeChat, url: str, openid: str, n: int, mode: str) -> float:
    query, body = fake.signed_request(fake.text(openid, SCRIPT[n % len(SCRIPT)]), mode)
    start = time.perf_counter()
    async with http.post(url, params=query, data=body.encode()) as resp:
        await resp.read()
        assert resp.status == 200, resp.status
    return time.perf_counter() - start


def summary(latencies: list[float], elapsed: float) -> dict:
    latencies = sorted(latencies)
    return {"requests": len(latencies), "per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1)}


async def open_loop(url: str, rate: float, seconds: float, owners: int, mode: str, tag: str) -> dict:
    fake = _wechat()
    latencies: list[float] = []
    counts = [0] * owners
    locks = [asyncio.Lock() for _ in range(owners)]  # one owner's messages one after another, as on a phone
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def one(i: int) -> None:
            k = i % owners
            async with locks[k]:
                latencies.append(await post(http, fake, url, f"{tag}-{k}", counts[k], mode))
                counts[k] += 1

        # Warm-up, not measured: every owner says hello once (first contact creates their account) and the
        # server's connection pool fills.
        await asyncio.gather(*(post(http, fake, url, f"{tag}-{k}", 0, mode) for k in range(owners)))
        counts = [1] * owners
        _sent, elapsed = await paced(rate, seconds, one)
    return summary(latencies, elapsed)


async def closed_loop(url: str, seconds: float, owners: int, mode: str, tag: str) -> dict:
    fake = _wechat()
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        began = time.perf_counter()
        deadline = began + seconds

        async def owner(k: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                latencies.append(await post(http, fake, url, f"{tag}-c{k}", n, mode))
                n += 1

        await asyncio.gather(*(owner(k) for k in range(owners)))
        elapsed = time.perf_counter() - began
    return summary(latencies, elapsed)


async def driver() -> None:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        job = json.loads(line)
        if job["kind"] == "open":
            result = await open_loop(job["url"], job["rate"], job["seconds"], job["owners"], job["mode"], job["tag"])
        else:
            result = await closed_loop(job["url"], job["seconds"], 50, job["mode"], job["tag"])
        print(json.dumps(result), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--mode", choices=["plain", "safe"], default="safe")
    parser.add_argument("--rounds", type=int, default=5, help="closed-loop rounds, echo handler and propdesk in turn")
    parser.add_argument("--round-seconds", type=float, default=4, help="each server's turn in a closed-loop round")
    parser.add_argument("--database-url", help="a PostgreSQL URL to run propdesk on (its schema is dropped and "
                        "recreated!); SQLite in a temporary folder by default")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.driver:
        await driver()
        return
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--driver", stdin=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.PIPE)

    async def run(job: dict) -> dict:
        cpu = time.process_time()  # this process serves; the load comes from the child
        child.stdin.write((json.dumps({"mode": args.mode, **job}) + "\n").encode())
        await child.stdin.drain()
        result = json.loads(await child.stdout.readline())
        result["server_cpu_ms_per_request"] = round((time.process_time() - cpu) * 1000 / result["requests"], 2)
        return result

    runner, echo_url = await serve(echo_app())
    echo_url += "/wechat"
    with tempfile.TemporaryDirectory() as tmp:
        stop, url = await propdesk(Path(tmp), args.database_url)
        report = {"open_loop": {
            "echo_handler": await run({"kind": "open", "url": echo_url, "rate": args.rate, "seconds": args.seconds,
                                       "owners": args.owners, "tag": "e"}),
            "propdesk": await run({"kind": "open", "url": url, "rate": args.rate, "seconds": args.seconds,
                                   "owners": args.owners, "tag": "p"})}}
        # Closed loop, the two servers in turn: a 2-core machine's speed drifts by a third from minute to minute,
        # so each round compares runs seconds apart, and the median round is the figure.
        rounds = []
        for r in range(args.rounds):
            echo = await run({"kind": "closed", "url": echo_url, "seconds": args.round_seconds, "tag": f"e{r}"})
            ours = await run({"kind": "closed", "url": url, "seconds": args.round_seconds, "tag": f"p{r}"})
            rounds.append({"echo_handler": echo, "propdesk": ours,
                           "propdesk_vs_echo": round(ours["per_s"] / echo["per_s"], 2)})
        report["closed_loop_rounds"] = rounds
        await stop()
    await runner.cleanup()
    child.stdin.close()
    await child.wait()
    report["propdesk_vs_echo_throughput"] = statistics.median(r["propdesk_vs_echo"] for r in rounds)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
