"""Run one outbox worker against a Bot API until SIGTERM (a test tool for kill tests).

``python -m tests.tools.outbox_worker --db URL --api URL [--rate 2000] [--lease 2]``
delivers the store's Telegram rows with the real ``OutboxWorker`` and aiogram
``TelegramMessenger`` (via TELEGRAM_API_BASE), printing ``ready`` once it can run; with
``--hold`` it then waits for a line on stdin (a warm spare, to restart without start-up time).
It stops on SIGTERM, and when its stdin closes, so that it never outlives its test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import threading

from bot.outbox import OutboxWorker
from bot.ratelimit import RateLimiter, telegram_limits
from bot.settings import load_settings
from bot.telegram import TelegramMessenger, make_bot
from campaign.db import Store

TOKEN = "123456:FAKE-outbox-worker"


def watch_stdin(loop: asyncio.AbstractEventLoop, go: asyncio.Event, stop: asyncio.Event) -> None:
    """Set ``go`` at the first line on stdin; set ``stop`` when stdin closes.

    A closed stdin means the test that started us has gone, so must we.
    """

    def watch() -> None:
        with contextlib.suppress(OSError):
            # unbuffered reads: a buffered one would hold a lock that blocks the shutdown
            while chunk := os.read(0, 4096):
                if b"\n" in chunk:
                    loop.call_soon_threadsafe(go.set)
        loop.call_soon_threadsafe(go.set)
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, daemon=True).start()


async def _run(args: argparse.Namespace) -> None:
    settings = load_settings(bot_token=TOKEN, telegram_api_base=args.api, database_url=args.db)
    bot = make_bot(settings)
    store = Store(settings.database_url)
    # a burst of 1/50 s of tokens: one token at a time would cap the rate at the loop's pace
    limiter = RateLimiter({"telegram": telegram_limits(args.rate, burst=max(1.0, args.rate / 50))})
    worker = OutboxWorker(
        store,
        {"telegram": TelegramMessenger(bot)},
        lease_seconds=args.lease,
        batch=args.batch,
        concurrency=args.concurrency,
        limiter=limiter,
    )
    stop, go = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch_stdin(loop, go, stop)
    try:
        await bot.me()  # aiogram builds its models on the first call: not while timed
        print("ready", flush=True)
        if args.hold:
            await go.wait()
        await worker.run(stop, idle=0.2)
    finally:
        await bot.session.close()
        await store.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hold", action="store_true", help="start on a line from stdin")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
