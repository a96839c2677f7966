"""Benchmark: a broadcast at Telegram's limits, with people talking to the bot meanwhile.

Queues one outbox row per member (distinct private chats, one dedup key each) and delivers
them with the real ``OutboxWorker`` and the real aiogram ``TelegramMessenger`` to the stand-in
Bot API (``tests/tools/fake_bot_api.py``, in a process of its own) enforcing Telegram's limits:
30 messages in any second, 1 a second per private chat (bursts of 4), 20 a minute per group,
with 20-50 ms of network latency. While the broadcast runs, a reply to someone talking to the
bot is queued every second and sent through the reply path (``deliver_ids``), as the adapter
does; its latency runs from before the enqueue to the stand-in accepting it.

Before that, on a small slice, naive senders without a limiter run for comparison: sequential
(one send, then one transaction, at a time; what the worker did before) and concurrent.

Prints figures, never asserts; the last line is one JSON object. At 30/s, 100,000 members take
about 58 minutes; ``--members 3000`` takes about 2 minutes in all.

    python bench/broadcast.py --members 3000 [--db sqlite|pg|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession  # noqa: E402
from sqlalchemy import update  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bot.delivery import DeliveryError, RenderedMessage  # noqa: E402
from bot.outbox import OutboxWorker  # noqa: E402
from bot.ratelimit import RateLimiter, telegram_limits  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram import TelegramMessenger, make_bot  # noqa: E402
from campaign import outbox  # noqa: E402
from campaign.db import Store  # noqa: E402
from models.dialog import Outbox, OutboxStatus, Priority  # noqa: E402
from models.reply import Reply  # noqa: E402
from tests.tools.broadcast import TEMPLATE, queue_broadcast  # noqa: E402
from tests.tools.fake_bot_api import ApiLimits, FakeBotApiProcess  # noqa: E402

TOKEN = "123456:BENCH-broadcast"
CEILING = 30.0
PREFIX = "▶ "


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def open_store(db: str) -> tuple[Store, Callable[[], Awaitable[None]]]:
    """Return a fresh migrated store and a coroutine function that disposes of it."""
    if db == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-broadcast-")
        store = Store(f"sqlite:///{folder}/bench.db")
        await store.migrate()
        return store, store.dispose
    if db == "pg":
        import asyncpg

        host = os.environ.get("PGHOST", "127.0.0.1")
        user = os.environ.get("PGUSER", "postgres")
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(host=host, user=user, database="test")
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.close()
        store = Store(f"postgresql://{user}@{host}/{name}")
        await store.migrate()

        async def drop() -> None:
            await store.dispose()
            conn = await asyncpg.connect(host=host, user=user, database="test")
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await conn.close()

        return store, drop
    store = Store(db)
    await store.migrate()
    return store, store.dispose


async def naive(store: Store, messenger: TelegramMessenger, chats: list[str], tasks: int) -> dict:
    """Send one message per chat without a limiter, marking each in its own transaction.

    On a 429 a sender sleeps ``retry_after`` and tries again, as simple bots do.
    """
    key = f"naive{tasks}"
    await queue_broadcast(store, chats, key=key)
    async with store.read() as s:
        rows = (
            await s.exec(
                select(Outbox.id, Outbox.chat_id).where(col(Outbox.dedup_key).startswith(key))
            )
        ).all()
    queue = list(rows)
    refused = 0

    async def sender() -> None:
        nonlocal refused
        while queue:
            row_id, chat = queue.pop(0)
            while True:
                try:
                    await messenger.send(chat, RenderedMessage(f"{PREFIX}{key}:{chat}"))
                    break
                except DeliveryError as exc:
                    if exc.retry_after is None:
                        raise
                    refused += 1
                    await asyncio.sleep(exc.retry_after)
            async with store.write() as s:
                await s.exec(
                    update(Outbox).where(Outbox.id == row_id).values(status=OutboxStatus.SENT)
                )

    started = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(tasks)))
    elapsed = time.monotonic() - started
    return {"messages": len(rows), "seconds": elapsed, "rate": len(rows) / elapsed, "429": refused}


async def broadcast(
    store: Store,
    messenger: TelegramMessenger,
    api: FakeBotApiProcess,
    http: ClientSession,
    members: int,
    rate: float,
    reply_every: float,
) -> dict:
    """Deliver a broadcast with the real worker while replies go out through deliver_ids."""
    chats = [str(10_000_000 + i) for i in range(members)]
    queued = time.monotonic()
    await queue_broadcast(store, chats, key="bcast")
    queue_seconds = time.monotonic() - queued
    await api.reset(http)

    worker = OutboxWorker(
        store,
        {"telegram": messenger},
        limiter=RateLimiter({"telegram": telegram_limits(rate)}),
    )
    stop = asyncio.Event()
    started_wall = time.time()
    loop = asyncio.create_task(worker.run(stop))
    asked: dict[str, float] = {}
    replies: list[asyncio.Task] = []
    rng = random.Random(7)

    async def reply(n: int) -> None:
        text = f"reply:{n}"
        asked[text] = time.time()
        async with store.write() as s:
            row_id = await outbox.enqueue(
                s,
                platform="telegram",
                chat_id=rng.choice(chats),
                reply=Reply(TEMPLATE, {"text": text}),
                locale="zh_CN",
                key=f"bench:{text}",
                priority=Priority.REPLY,
            )
        await worker.deliver_ids([row_id])

    delivered = 0
    for n in itertools.count():
        stats = await api.stats(http)
        delivered = stats["accepted"] - len(asked)
        if delivered >= members:
            break
        replies.append(asyncio.create_task(reply(n)))
        await asyncio.sleep(reply_every)
    await asyncio.gather(*replies)
    await asyncio.sleep(0.5)
    stop.set()
    await loop

    accepted = await api.accepted(http)
    stats = await api.stats(http)
    texts = [a.text.removeprefix(PREFIX) for a in accepted]
    bcast = [a for a, t in zip(accepted, texts, strict=True) if t.startswith("bcast:")]
    first, last = min(a.at for a in bcast), max(a.at for a in bcast)
    window = [a for a in accepted if first <= a.at <= last]
    latencies = [
        a.at - asked[t] for a, t in zip(accepted, texts, strict=True) if t.startswith("reply:")
    ]
    steady = (len(window) - 1) / (last - first)
    overall = len(accepted) / (last - started_wall)
    return {
        "members": members,
        "queue_seconds": round(queue_seconds, 2),
        "seconds": round(last - started_wall, 1),
        "rate": round(overall, 2),
        "steady_rate": round(steady, 2),
        "fraction_of_ceiling": round(overall / CEILING, 3),
        "steady_fraction_of_ceiling": round(steady / CEILING, 3),
        "429": stats["too_many"],
        "duplicates": len(bcast) - len(set(t for t in texts if t.startswith("bcast:"))),
        "replies": len(latencies),
        "reply_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "reply_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "reply_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "reply_mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
    }


async def main(args: argparse.Namespace) -> dict:
    api = FakeBotApiProcess(limits=ApiLimits(), latency=(args.latency[0], args.latency[1]))
    api.start()
    store, dispose = await open_store(args.db)
    settings = load_settings(bot_token=TOKEN, telegram_api_base=api.url)
    bot = make_bot(settings)
    messenger = TelegramMessenger(bot)
    http = ClientSession()
    try:
        print(
            f"stand-in Bot API at {api.url}: 30/s overall, 1/s per chat (bursts of 4), "
            f"latency {args.latency[0] * 1000:.0f}-{args.latency[1] * 1000:.0f} ms; "
            f"store {store.url.split('://')[0]}",
            flush=True,
        )
        figures: dict = {}
        if args.baseline:
            slice_ = [str(20_000_000 + i) for i in range(args.baseline)]
            seq = await naive(store, messenger, slice_, tasks=1)
            print(
                f"naive sequential, no limiter: {seq['messages']} in {seq['seconds']:.1f}s = "
                f"{seq['rate']:.1f}/s, {seq['429']} × 429",
                flush=True,
            )
            await asyncio.sleep(1.5)  # let the window of the stand-in empty
            slice_ = [str(30_000_000 + i) for i in range(args.baseline)]
            par = await naive(store, messenger, slice_, tasks=16)
            print(
                f"naive concurrent (16), no limiter: {par['messages']} in "
                f"{par['seconds']:.1f}s = {par['rate']:.1f}/s, {par['429']} × 429",
                flush=True,
            )
            await asyncio.sleep(2.0)
            figures["baseline_sequential"] = {k: round(v, 2) for k, v in seq.items()}
            figures["baseline_concurrent"] = {k: round(v, 2) for k, v in par.items()}
        print(
            f"broadcast to {args.members} members at {args.rate}/s: about "
            f"{args.members / args.rate:.0f}s; a reply every {args.reply_every}s",
            flush=True,
        )
        result = await broadcast(
            store, messenger, api, http, args.members, args.rate, args.reply_every
        )
        print(
            f"delivered {result['members']} in {result['seconds']}s: {result['rate']}/s "
            f"= {result['fraction_of_ceiling']:.1%} of 30/s "
            f"(steady {result['steady_fraction_of_ceiling']:.1%}), {result['429']} × 429, "
            f"{result['duplicates']} duplicates",
            flush=True,
        )
        print(
            f"replies during the broadcast: {result['replies']}, p50 {result['reply_p50_ms']} ms"
            f", p99 {result['reply_p99_ms']} ms, max {result['reply_max_ms']} ms",
            flush=True,
        )
        figures.update(result)
        if args.baseline:
            figures["rate_vs_naive_sequential"] = round(
                result["rate"] / figures["baseline_sequential"]["rate"], 2
            )
        figures["store"] = store.url.split("://")[0]
        return figures
    finally:
        await http.close()
        await bot.session.close()
        await dispose()
        api.stop()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--db", default="sqlite", help="sqlite, pg, or a database URL")
    parser.add_argument("--rate", type=float, default=29.0, help="the worker's overall rate")
    parser.add_argument("--reply-every", type=float, default=1.0)
    parser.add_argument("--baseline", type=int, default=300, help="slice for naive senders")
    parser.add_argument("--latency", type=float, nargs=2, default=(0.02, 0.05))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    figures = asyncio.run(main(args))
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    cli()
