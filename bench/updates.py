"""Benchmark: updates per second through the full stack, next to a bare aiogram echo handler.

Both are fed the same Telegram updates in one run with aiogram's ``Dispatcher.feed_update``;
the bot's HTTP session records requests instead of sending them, so what is measured is our
stack: the aiogram dispatcher, the core (binding lookup, roles, dialog state with its version,
the processed-update record), the handlers, the outbox (queued and delivered in the same
request) on SQLite holding the demo data (``--members``, default 100000). The echo baseline
answers each message with ``message.answer(text)`` through the same recording session.

The mix per bound person: /help (reads roles), /lang en|zh (writes the account and the menu),
/mine (reads pledges), and a plain text. Prints rates, the ratio and p50/p99 handling times,
then one line of JSON.

    .venv/bin/python bench/updates.py --members 20000 --updates 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import Chat, Message, Update
from sqlalchemy import insert
from sqlmodel import select

from bot.compose import build_services
from bot.ratelimit import RateLimiter
from bot.settings import load_settings
from bot.telegram import PLATFORM, TelegramMessenger, UpdateHandler, build_dispatcher
from campaign.demo_data import load_demo
from models import Account, Member

TOKEN = "123456:BENCH-token"


class RecordingSession(BaseSession):
    """Answers every Bot API call at once, as Telegram would, and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}
        self._next = 0

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout=None) -> Any:
        name = type(method).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        if isinstance(method, SendMessage):
            self._next += 1
            return Message(
                message_id=self._next,
                date=datetime.now(),
                chat=Chat(id=int(method.chat_id), type="private"),
                text=method.text,
            )
        return True

    async def stream_content(self, *args, **kwargs):  # pragma: no cover - unused
        raise NotImplementedError

    async def close(self) -> None:
        return None


def make_updates(user_ids: list[int], count: int) -> list[Update]:
    texts = ["/help", "/lang en", "/mine", "你好", "/help", "/lang zh", "/mine", "/help"]
    out = []
    for n in range(count):
        uid = user_ids[n % len(user_ids)]
        text = texts[(n // len(user_ids)) % len(texts)]
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else None
        )
        out.append(
            Update.model_validate(
                {
                    "update_id": 1_000_000 + n,
                    "message": {
                        "message_id": n + 1,
                        "date": int(time.time()),
                        "chat": {"id": uid, "type": "private"},
                        "from": {"id": uid, "is_bot": False, "first_name": "x"},
                        "text": text,
                        "entities": entities,
                    },
                }
            )
        )
    return out


async def run(dispatcher: Dispatcher, bot: Bot, updates: list[Update], drain=None) -> list[float]:
    times = []
    for update in updates:
        start = time.perf_counter()
        await dispatcher.feed_update(bot, update)
        if drain is not None:
            await drain()
        times.append(time.perf_counter() - start)
    return times


def echo_dispatcher() -> Dispatcher:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    return dp


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--people", type=int, default=300, help="bound people sending updates")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    settings = load_settings(
        database_url=f"sqlite:///{tmp}/bench.db", bot_token=TOKEN, bot_username="bench_bot"
    )
    services = await build_services(settings)
    await load_demo(services.store, args.members)
    async with services.store.write() as s:
        ids = (await s.exec(select(Member.id).limit(args.people))).all()
        await s.exec(
            insert(Account),
            params=[
                {
                    "platform": PLATFORM,
                    "external_id": str(500_000 + i),
                    "chat_id": str(500_000 + i),
                    "member_id": mid,
                    "locale": "zh_CN",
                    "active": True,
                    "bound_at": datetime.now().astimezone(),
                }
                for i, mid in enumerate(ids)
            ],
        )
    user_ids = [500_000 + i for i in range(len(ids))]
    updates = make_updates(user_ids, args.updates)

    echo_session = RecordingSession()
    echo_bot = Bot(TOKEN, session=echo_session)
    echo_times = await run(echo_dispatcher(), echo_bot, updates)

    session = RecordingSession()
    bot = Bot(TOKEN, session=session)
    # The recording session is not Telegram: no rate limits, so the stack itself is measured.
    worker = services.worker({PLATFORM: TelegramMessenger(bot)}, limiter=RateLimiter({}))
    handler = UpdateHandler(services.core, worker, bot_username="bench_bot")
    ours = await run(build_dispatcher(handler), bot, updates, drain=handler.drain)
    await services.close()

    rate_echo = len(updates) / sum(echo_times)
    rate_ours = len(updates) / sum(ours)
    figures = {
        "members": args.members,
        "updates": len(updates),
        "echo_rate": round(rate_echo, 1),
        "full_rate": round(rate_ours, 1),
        "ratio": round(rate_ours / rate_echo, 4),
        "full_p50_ms": round(statistics.median(ours) * 1000, 2),
        "full_p99_ms": round(pct(ours, 0.99) * 1000, 2),
        "echo_p50_ms": round(statistics.median(echo_times) * 1000, 3),
        "echo_p99_ms": round(pct(echo_times, 0.99) * 1000, 3),
        "sends": session.calls.get("SendMessage", 0),
        "menus": session.calls.get("SetMyCommands", 0),
    }
    print(f"bare aiogram echo : {rate_echo:9.1f} updates/s  p50 {figures['echo_p50_ms']} ms")
    print(
        f"full stack        : {rate_ours:9.1f} updates/s  p50 {figures['full_p50_ms']} ms"
        f"  p99 {figures['full_p99_ms']} ms  ({figures['sends']} messages sent)"
    )
    print(f"ratio full/echo   : {figures['ratio']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
