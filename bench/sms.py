"""Benchmark: a notice over SMS through the real outbox worker, SMPP gateway and a local SMSC.

Queues ``--messages`` outbox rows of platform ``sms`` (distinct phones; a share of them a
300-character Chinese text of five UCS-2 parts, the rest one part) in a fresh SQLite file and
delivers them with the real ``OutboxWorker``, ``SmsMessenger`` and ``SmppGateway`` to the local
SMSC of the tests (``tests/e2e/smsc.js``, npm ``smpp``), with no rate limit, so the figures are
what the door itself can do: rows and segments per second, the SMPP window's effect, and the
cost of segmenting alone.

Prints figures, never asserts; the last line is one JSON object.

    python bench/sms.py --messages 2000 [--long-share 0.2] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.outbox import OutboxWorker  # noqa: E402
from bot.ratelimit import RateLimiter  # noqa: E402
from bot.sms import Recorder, SmsMessenger, segment  # noqa: E402
from bot.sms_smpp import SmppGateway  # noqa: E402
from campaign.db import Store  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.dialog import Outbox, OutboxStatus, Priority  # noqa: E402
from models.reply import Reply  # noqa: E402
from models.sms import SmsSent  # noqa: E402
from tests.e2e.conftest import E2E, free_port, wait_for_port  # noqa: E402

LONG = ("各位党员：本月公开承诺践诺情况已汇总，请按时登录承诺通报告进度。" * 10)[:300]


async def queue(store: Store, n: int, long_share: float) -> None:
    now = utcnow()
    long_every = max(1, round(1 / long_share)) if long_share > 0 else 0
    rows = []
    for i in range(n):
        text = LONG if long_every and i % long_every == 0 else f"第{i}号通知：请报进度"
        payload = {"locale": "zh_CN", **Reply("sms.gateway.test", {"text": text}).to_payload()}
        rows.append(
            {
                "dedup_key": f"bench:{i}",
                "platform": "sms",
                "chat_id": f"139{i:08d}",
                "kind": "message",
                "payload": payload,
                "priority": Priority.BROADCAST,
                "status": "pending",
                "attempts": 0,
                "not_before": now,
                "created_at": now,
            }
        )
    for start in range(0, n, 2000):
        async with store.write() as session:
            conn = await session.connection()
            await conn.execute(insert(Outbox.__table__), rows[start : start + 2000])


async def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    for _ in range(200):
        segment(LONG)
    segment_us = (time.perf_counter() - t0) / 200 * 1e6

    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is needed (the local SMSC)")
    smpp_port, control_port = free_port(), free_port()
    proc = subprocess.Popen(
        [node, str(E2E / "smsc.js"), str(smpp_port), str(control_port)],
        cwd=E2E,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = tempfile.mkdtemp(prefix="bench-sms-")
    store = Store(f"sqlite:///{tmp}/bench.db")
    try:
        wait_for_port(smpp_port, 15)
        await store.migrate()
        await queue(store, args.messages, args.long_share)
        gateway = SmppGateway("127.0.0.1", smpp_port, "bench", "bench", window=args.window)
        recorder = Recorder(store)
        messenger = SmsMessenger(gateway, recorder)
        worker = OutboxWorker(
            store, {"sms": messenger}, limiter=RateLimiter({}), batch=100, concurrency=16
        )
        await gateway.start(None)
        while not gateway.bound:
            await asyncio.sleep(0.05)
        stop = asyncio.Event()
        start = time.perf_counter()
        task = asyncio.create_task(worker.run(stop, idle=0.2))
        while True:
            await asyncio.sleep(0.25)
            async with store.read() as session:
                pending = (
                    await session.exec(
                        select(func.count())
                        .select_from(Outbox)
                        .where(Outbox.status == OutboxStatus.PENDING)
                    )
                ).one()
            if pending == 0:
                break
        elapsed = time.perf_counter() - start
        stop.set()
        await task
        await recorder.flush()
        await gateway.stop()
        async with store.read() as session:
            segments = (await session.exec(select(func.sum(SmsSent.segments)))).one() or 0
    finally:
        await store.dispose()
        proc.stdin.close()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "messages": args.messages,
        "segments": int(segments),
        "seconds": round(elapsed, 2),
        "messages_per_s": round(args.messages / elapsed, 1),
        "segments_per_s": round(segments / elapsed, 1),
        "window": args.window,
        "segment_300_chars_us": round(segment_us, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--long-share", type=float, default=0.2)
    parser.add_argument("--window", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"{result['messages']} SMS ({result['segments']} segments) in {result['seconds']} s")
    print(f"  {result['messages_per_s']} messages/s, {result['segments_per_s']} segments/s")
    print(f"  SMPP window {result['window']}; segmenting 300 Chinese characters: "
          f"{result['segment_300_chars_us']} µs")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
