"""Benchmark: updates per second through the full stack on both Telegram runtimes, beside the
bare echo bot of each library.

Four runs are fed the same Telegram updates (the same raw JSON, parsed once by each library):
the bare aiogram echo (``Dispatcher.feed_update``, ``message.answer(text)``), our stack on the
aiogram runtime, the bare python-telegram-bot echo (``Application.process_update`` with a
``MessageHandler`` that calls ``reply_text``) and our stack on the PTB runtime
(``PtbUpdateHandler.feed``). Each library's HTTP layer is a stand-in that answers at once (no
network), so what is measured is the library and our stack: the core (binding lookup, roles,
dialog state with its version, the processed-update record), the handlers, the outbox (queued
and delivered in the same request) on SQLite holding the demo data (``--members``, default
100000). Both full runs use one database (each update id is recorded once per run: the PTB run
gets ids of its own).

The mix per bound person: /help (reads roles), /lang en|zh (writes the account and the menu),
/mine (reads pledges), and a plain text. Prints rates, the ratios (full/echo per library, and
PTB/aiogram) and p50/p99 handling times, then one line of JSON.

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
from telegram import Bot as PtbBot
from telegram import Update as PtbUpdate
from telegram.ext import Application, MessageHandler, filters
from telegram.request import BaseRequest

from bot.compose import build_services
from bot.ratelimit import RateLimiter
from bot.settings import load_settings
from bot.telegram import PLATFORM, TelegramMessenger, UpdateHandler, build_dispatcher
from bot.telegram_ptb import PtbMessenger, PtbUpdateHandler
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


def make_raw_updates(user_ids: list[int], count: int, first_id: int) -> list[dict[str, Any]]:
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
        message = {
            "message_id": n + 1,
            "date": int(time.time()),
            "chat": {"id": uid, "type": "private"},
            "from": {"id": uid, "is_bot": False, "first_name": "x"},
            "text": text,
        }
        if entities:
            message["entities"] = entities
        out.append({"update_id": first_id + n, "message": message})
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


class StandInRequest(BaseRequest):
    """PTB's HTTP layer answering every call at once, as Telegram would, and counting them."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._next = 0

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(self, url, method, request_data=None, *args, **kwargs):
        name = url.rsplit("/", 1)[-1]
        self.calls[name] = self.calls.get(name, 0) + 1
        result: Any = True
        if name == "getMe":
            result = {"id": 123456, "is_bot": True, "first_name": "b", "username": "bench_bot"}
        elif name == "sendMessage":
            self._next += 1
            params = request_data.parameters if request_data is not None else {}
            result = {
                "message_id": self._next,
                "date": int(time.time()),
                "chat": {"id": int(params.get("chat_id", 0)), "type": "private"},
                "text": params.get("text", ""),
            }
        return 200, json.dumps({"ok": True, "result": result}).encode()


async def run_ptb_echo(bot: PtbBot, raw: list[dict[str, Any]]) -> list[float]:
    """The minimal PTB echo bot: an Application with one MessageHandler calling reply_text."""

    async def echo(update: PtbUpdate, context: Any) -> None:
        await update.message.reply_text(update.message.text or "")

    app = Application.builder().bot(bot).updater(None).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    updates = [PtbUpdate.de_json(r, app.bot) for r in raw]
    times = []
    try:
        for update in updates:
            start = time.perf_counter()
            await app.process_update(update)
            times.append(time.perf_counter() - start)
    finally:
        await app.shutdown()
    return times


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
    raw_aiogram = make_raw_updates(user_ids, args.updates, 1_000_000)
    raw_ptb = make_raw_updates(user_ids, args.updates, 2_000_000)

    # aiogram: the bare echo, then our stack
    updates = [Update.model_validate(r) for r in raw_aiogram]
    echo_session = RecordingSession()
    echo_bot = Bot(TOKEN, session=echo_session)
    echo_times = await run(echo_dispatcher(), echo_bot, updates)

    session = RecordingSession()
    bot = Bot(TOKEN, session=session)
    # The recording session is not Telegram: no rate limits, so the stack itself is measured.
    worker = services.worker({PLATFORM: TelegramMessenger(bot)}, limiter=RateLimiter({}))
    handler = UpdateHandler(services.core, worker, bot_username="bench_bot")
    ours = await run(build_dispatcher(handler), bot, updates, drain=handler.drain)

    # python-telegram-bot: the bare echo, then our stack
    ptb_echo_request = StandInRequest()
    ptb_echo_bot = PtbBot(TOKEN, request=ptb_echo_request, get_updates_request=StandInRequest())
    ptb_echo_times = await run_ptb_echo(ptb_echo_bot, raw_ptb)

    ptb_request = StandInRequest()
    ptb_bot = PtbBot(TOKEN, request=ptb_request, get_updates_request=StandInRequest())
    await ptb_bot.initialize()
    ptb_worker = services.worker({PLATFORM: PtbMessenger(ptb_bot)}, limiter=RateLimiter({}))
    ptb_handler = PtbUpdateHandler(services.core, ptb_worker, ptb_bot, bot_username="bench_bot")
    ptb_updates = [PtbUpdate.de_json(r, ptb_bot) for r in raw_ptb]
    ptb_ours = []
    for update in ptb_updates:
        start = time.perf_counter()
        await ptb_handler.feed(update)
        await ptb_handler.drain()
        ptb_ours.append(time.perf_counter() - start)
    await ptb_bot.shutdown()
    await services.close()

    n = len(updates)
    rate_echo, rate_ours = n / sum(echo_times), n / sum(ours)
    rate_ptb_echo, rate_ptb = n / sum(ptb_echo_times), n / sum(ptb_ours)
    figures = {
        "members": args.members,
        "updates": n,
        "echo_rate": round(rate_echo, 1),
        "full_rate": round(rate_ours, 1),
        "ratio": round(rate_ours / rate_echo, 4),
        "full_p50_ms": round(statistics.median(ours) * 1000, 2),
        "full_p99_ms": round(pct(ours, 0.99) * 1000, 2),
        "echo_p50_ms": round(statistics.median(echo_times) * 1000, 3),
        "echo_p99_ms": round(pct(echo_times, 0.99) * 1000, 3),
        "sends": session.calls.get("SendMessage", 0),
        "menus": session.calls.get("SetMyCommands", 0),
        "ptb_echo_rate": round(rate_ptb_echo, 1),
        "ptb_full_rate": round(rate_ptb, 1),
        "ptb_ratio": round(rate_ptb / rate_ptb_echo, 4),
        "ptb_full_p50_ms": round(statistics.median(ptb_ours) * 1000, 2),
        "ptb_full_p99_ms": round(pct(ptb_ours, 0.99) * 1000, 2),
        "ptb_echo_p50_ms": round(statistics.median(ptb_echo_times) * 1000, 3),
        "ptb_echo_p99_ms": round(pct(ptb_echo_times, 0.99) * 1000, 3),
        "ptb_sends": ptb_request.calls.get("sendMessage", 0),
        "ptb_menus": ptb_request.calls.get("setMyCommands", 0),
        "ptb_over_aiogram_full": round(rate_ptb / rate_ours, 4),
        "ptb_over_aiogram_echo": round(rate_ptb_echo / rate_echo, 4),
    }
    rows = [
        ("bare aiogram echo", rate_echo, figures["echo_p50_ms"], figures["echo_p99_ms"], "-"),
        (
            "full stack, aiogram",
            rate_ours,
            figures["full_p50_ms"],
            figures["full_p99_ms"],
            f"{figures['sends']} sent",
        ),
        (
            "bare PTB echo",
            rate_ptb_echo,
            figures["ptb_echo_p50_ms"],
            figures["ptb_echo_p99_ms"],
            "-",
        ),
        (
            "full stack, PTB",
            rate_ptb,
            figures["ptb_full_p50_ms"],
            figures["ptb_full_p99_ms"],
            f"{figures['ptb_sends']} sent",
        ),
    ]
    print(f"{'':22}{'updates/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, rate, p50, p99, note in rows:
        print(f"{name:22}{rate:10.1f}{p50:10}{p99:10}  {note}")
    print(
        f"full/echo: aiogram {figures['ratio']}, PTB {figures['ptb_ratio']}; "
        f"PTB/aiogram: full {figures['ptb_over_aiogram_full']}, "
        f"echo {figures['ptb_over_aiogram_echo']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
