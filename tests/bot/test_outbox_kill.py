"""SIGKILL a delivery worker in the middle of a broadcast: nothing is lost, little goes twice.

A worker process (the real ``OutboxWorker`` and aiogram ``TelegramMessenger``) delivers a
10,000-message broadcast to the stand-in Bot API, is killed with SIGKILL part-way and started
again. Every message must arrive; only rows sent but not yet marked when it died may arrive
twice, and those are at most one claimed batch. For speed the stand-in allows 2000 messages a
second overall (the worker's limiter keeps 1900/s); each message goes to its own chat.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter

from sqlalchemy import func
from sqlmodel import select

from models import Outbox, OutboxStatus
from tests.tools.broadcast import queue_broadcast
from tests.tools.fake_bot_api import ApiLimits, FakeBotApi

N = 10_000
BATCH = 100
LEASE = 2.0
RATE = 1900
PREFIX = "▶ "


async def _spawn(db: str, api: str, *, hold: bool = False) -> asyncio.subprocess.Process:
    args = ["--db", db, "--api", api, "--rate", str(RATE), "--lease", str(LEASE)]
    args += ["--batch", str(BATCH), "--concurrency", "16"] + (["--hold"] if hold else [])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.tools.outbox_worker",
        *args,
        stdin=asyncio.subprocess.PIPE,  # closed when the test goes: the worker then stops
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)  # a loaded machine is slow
    assert line.strip() == b"ready"
    return proc


async def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_killed_worker_loses_nothing_and_repeats_at_most_one_batch(store):
    chats = [str(5_000_000 + i) for i in range(N)]
    await queue_broadcast(store, chats, key="kill")
    wanted = {f"kill:{c}" for c in chats}
    limits = ApiLimits(overall=2000, chat_burst=1.0)
    procs: list[asyncio.subprocess.Process] = []
    async with FakeBotApi(limits=limits, latency=(0.001, 0.004)) as api:
        try:
            procs.append(await _spawn(store.url, api.url))
            started = time.monotonic()
            # the restart, started now so that it is warm when its turn comes
            procs.append(await _spawn(store.url, api.url, hold=True))
            await _until(lambda: len(api.accepted) >= N // 3, 180, "a third of the broadcast")
            procs[0].send_signal(signal.SIGKILL)
            await procs[0].wait()
            killed_at = len(api.accepted)
            assert procs[1].stdin is not None
            procs[1].stdin.write(b"go\n")
            await _until(
                lambda: (
                    len(api.accepted) >= N
                    and {a.text.removeprefix(PREFIX) for a in api.accepted} >= wanted
                ),
                180,
                "the whole broadcast",
            )
            procs[1].send_signal(signal.SIGTERM)
            await asyncio.wait_for(procs[1].wait(), 15)
            elapsed = time.monotonic() - started
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    seen = Counter(a.text.removeprefix(PREFIX) for a in api.accepted)
    twice = sum(n - 1 for n in seen.values())
    print(
        f"killed after {killed_at} of {N}; {len(api.accepted)} accepted, {twice} twice, "
        f"{api.too_many_total} refused, {elapsed:.1f}s"
    )
    assert set(seen) == wanted
    assert twice <= BATCH
    assert api.too_many_total == 0
    assert procs[1].returncode == 0
    async with store.read() as s:
        pending = (
            await s.exec(select(func.count()).where(Outbox.status != OutboxStatus.SENT))
        ).one()
    assert pending == 0
