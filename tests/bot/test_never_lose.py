"""The aiogram runtime leaves an update the store could not record unacknowledged.

In-process, with the real dispatcher, core and store and a recording Bot API session; the store
is locked by this test (a short busy timeout keeps it quick). The real process is driven the
same way in ``tests/e2e/test_never_lose.py``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bot.telegram as runtime
import bot.updates as updates
import campaign.db
from bot.outbox import OutboxWorker
from bot.telegram import Poller, TelegramMessenger, UpdateHandler, build_dispatcher
from campaign.db import Store
from handlers.app import build_core
from handlers.start import LangCb
from templates import catalog
from tests.bot.test_telegram_adapter import TOKEN, RecordingSession

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_SECRET = "hook-secret"
APOLOGY = catalog().render("error.unexpected", "zh_CN")


class TelegramLikeSession(RecordingSession):
    """Answer getUpdates as Telegram does: every pending update at or after the offset."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[dict[str, Any]] = []
        self.offsets: list[int | None] = []

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        if method.__api_method__ != "getUpdates":
            return await super().make_request(bot, method, timeout)
        offset = getattr(method, "offset", None)
        self.offsets.append(offset)
        if offset is not None:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        if not self.pending:
            await asyncio.sleep(0.05)
        return [Update.model_validate(u, context={"bot": bot}) for u in self.pending]


def message(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "message_id": update_id,
        "date": int(datetime.now(UTC).timestamp()),
        "chat": {"id": user_id, "type": "private", "first_name": "U"},
        "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "zh"},
        "text": text,
    }
    if text.startswith("/"):
        msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": msg}


def button(update_id: int, user_id: int, data: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb{update_id}",
            "chat_instance": "ci",
            "from": {"id": user_id, "is_bot": False, "first_name": "U"},
            "data": data,
            "message": {"message_id": 1, "date": 0, "chat": {"id": user_id, "type": "private"}},
        },
    }


class Rig:
    def __init__(self, path, session: RecordingSession) -> None:
        self.path = path
        self.session = session
        self.bot = Bot(TOKEN, session=session)
        self.store = Store(f"sqlite:///{path}")
        self.core = build_core(self.store, secret=b"s" * 32)
        self.worker = OutboxWorker(self.store, {"telegram": TelegramMessenger(self.bot)})
        self.handler = UpdateHandler(self.core, self.worker)
        self.dp = build_dispatcher(self.handler)

    def texts(self) -> list[str]:
        return [p.get("text", "") for m, p in self.session.requests if m == "sendMessage"]

    def answers(self) -> list[dict[str, Any]]:
        return [p for m, p in self.session.requests if m == "answerCallbackQuery"]

    def processed(self) -> int:
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT count(*) FROM processedupdate").fetchone()[0]


@pytest.fixture
async def rig_factory(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign.db, "SQLITE_BUSY_MS", 100)
    monkeypatch.setattr(updates, "RETRY_FIRST", 0.05)  # the shared poller's backoff
    monkeypatch.setattr(updates, "RETRY_MAX", 0.2)
    path = tmp_path / "bot.db"
    store = Store(f"sqlite:///{path}")
    await store.migrate()
    await store.dispose()
    made: list[Rig] = []

    def make(session: RecordingSession) -> Rig:
        made.append(Rig(path, session))
        return made[-1]

    yield make
    for rig in made:
        await rig.handler.drain()
        await rig.store.dispose()


async def test_polling_keeps_the_offset_before_an_unrecorded_update(rig_factory):
    session = TelegramLikeSession()
    rig = rig_factory(session)
    data = rig.core.codec.encode(LangCb("en"))
    session.pending = [message(10, 7, "你好"), message(11, 7, "/help"), button(12, 7, data)]
    holder = sqlite3.connect(rig.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    stop = asyncio.Event()
    polling = asyncio.create_task(Poller(rig.bot, rig.dp, stop).run())
    try:
        await asyncio.sleep(1.0)  # several attempts, each past the busy timeout
        assert rig.processed() == 0
        assert all(o is None or o <= 10 for o in session.offsets)  # nothing confirmed
        assert rig.texts() == [] and rig.answers() == []  # no apology, no answer yet
        holder.execute("ROLLBACK")
        for _ in range(100):
            if session.offsets and session.offsets[-1] == 13:
                break
            await asyncio.sleep(0.05)
        assert session.offsets[-1] == 13  # confirmed once handled, in order
    finally:
        holder.close()
        stop.set()
        await asyncio.wait_for(polling, 5)
    await rig.handler.drain()
    assert rig.processed() == 3
    texts = rig.texts()
    assert len(texts) == 3 and APOLOGY not in texts
    assert [a["callback_query_id"] for a in rig.answers()] == ["cb12"]  # answered exactly once


@pytest.fixture
async def webhook(rig_factory):
    rig = rig_factory(RecordingSession())
    handler = runtime._SecretCheckingHandler(
        rig.dp, rig.bot, handle_in_background=False, secret_token=WEBHOOK_SECRET
    )
    app = web.Application()
    app.router.add_post("/tg", handler.handle)
    async with TestClient(TestServer(app)) as client:
        yield rig, client


async def post(client: TestClient, body: bytes, secret: str | None = WEBHOOK_SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with client.post("/tg", data=body, headers=headers) as response:
        return response.status


async def test_webhook_refuses_a_body_that_is_not_json_with_400_and_one_line(webhook, caplog):
    rig, client = webhook
    caplog.set_level(logging.INFO)
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"update_id": "x"}', b""):
        caplog.clear()
        assert await post(client, body) == 400
        ours = [r for r in caplog.records if r.name.startswith(("bot", "aiogram", "handlers"))]
        assert len(ours) == 1 and ours[0].levelno == logging.WARNING, ours
        assert not any(r.exc_info for r in caplog.records)
    assert await post(client, b"{not json", secret=None) == 401
    assert await post(client, b"x" * (1024**2 + 1)) == 413  # aiohttp's body limit stays
    assert rig.processed() == 0 and rig.texts() == []


async def test_webhook_answers_503_while_the_store_cannot_record(webhook):
    rig, client = webhook
    import json

    update = json.dumps(message(20, 8, "/help")).encode()
    holder = sqlite3.connect(rig.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        assert await post(client, update) == 503
        assert rig.processed() == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await post(client, update) == 200  # Telegram sends it again
    assert await post(client, update) == 200  # and once more: no second effect
    await rig.handler.drain()
    assert rig.processed() == 1
    texts = rig.texts()
    assert len(texts) == 1 and APOLOGY not in texts
