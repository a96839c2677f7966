"""The python-telegram-bot runtime (``RUNTIME=ptb``): messenger, handler, polling and webhook.

In-process, with a real PTB ``Bot`` over a recording transport (``tests/bot/ptb_request.py``),
the real core, outbox and SQLite store. The same behaviours of the aiogram runtime are tested in
test_telegram_adapter.py and test_never_lose.py; the real process runs the e2e suite.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from telegram import Bot
from telegram.error import NetworkError, TimedOut

import bot.telegram_ptb as runtime
import bot.updates as updates
import campaign.db
from bot.delivery import (
    DeliveryError,
    RenderedButton,
    RenderedMenu,
    RenderedMessage,
    RenderedPoll,
    render_reply,
)
from bot.outbox import OutboxWorker
from bot.telegram_ptb import Poller, PtbMessenger, PtbUpdateHandler
from campaign.db import Store
from handlers.app import build_core
from handlers.start import LangCb
from models.reply import Keyboard, Reply
from templates import catalog
from tests.bot.ptb_request import TOKEN, RecordingRequest
from tests.bot.test_telegram_adapter import template_db  # noqa: F401 (a fixture)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_SECRET = "hook-secret"
APOLOGY = catalog().render("error.unexpected", "zh_CN")
SECRETARY = "13800000001"


def make_bot(request: RecordingRequest) -> Bot:
    return Bot(TOKEN, request=request, get_updates_request=request)


async def started_bot(request: RecordingRequest) -> Bot:
    bot = make_bot(request)
    await bot.initialize()
    return bot


# -- the messenger -------------------------------------------------------------------------------


async def test_long_text_is_split_and_a_message_with_buttons_never_is():
    request = RecordingRequest()
    messenger = PtbMessenger(make_bot(request))
    text = "\n".join(f"第{i}行 " + "承" * 60 for i in range(150))  # about 9,600 characters
    await messenger.send("42", RenderedMessage(text=text))
    sent = request.calls("sendMessage")
    assert len(sent) == 3 and all(len(p["text"]) <= 4096 for p in sent)
    assert "".join(p["text"] for p in sent).replace("\n", "") == text.replace("\n", "")

    button = RenderedButton("通过", data="x:1:sig")
    link = RenderedButton("看", url="https://example.org/p")
    message_id = await messenger.send("42", RenderedMessage(text=text, buttons=((button, link),)))
    (card,) = request.calls("sendMessage")[3:]
    assert len(card["text"]) <= 4096 and card["text"].startswith("第0行")
    row = card["reply_markup"]["inline_keyboard"][0]
    assert row[0] == {"text": "通过", "callback_data": "x:1:sig"}
    assert row[1] == {"text": "看", "url": "https://example.org/p"}
    await messenger.edit(
        "42", RenderedMessage(text=text, buttons=((button,),), edit_message_id=message_id)
    )
    (edit,) = request.calls("editMessageText")
    assert edit["text"] == card["text"] and edit["message_id"] == int(message_id)
    assert edit["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "x:1:sig"


async def test_the_menu_and_the_contact_request_are_reply_keyboards():
    request = RecordingRequest()
    messenger = PtbMessenger(make_bot(request))
    reply = Reply("menu.choose", keyboard=Keyboard.MENU, menu=("pledge", "mine", "report"))
    await messenger.send("42", render_reply(reply, "zh_CN"))
    contact = Reply("bind.intro", keyboard=Keyboard.REQUEST_CONTACT)
    await messenger.send("42", render_reply(contact, "zh_CN"))
    menu, ask = request.calls("sendMessage")
    markup = menu["reply_markup"]
    assert markup["is_persistent"] is True and markup["resize_keyboard"] is True
    labels = [[b["text"] for b in row] for row in markup["keyboard"]]
    assert labels == [["写承诺", "我的承诺"], ["报进度"]]
    (button,) = ask["reply_markup"]["keyboard"][0]
    assert button["request_contact"] is True
    assert button["text"] == catalog().render("bind.share_button", "zh_CN")


async def test_documents_and_photos_are_uploaded_from_the_stored_bytes(tmp_path):
    request = RecordingRequest()
    messenger = PtbMessenger(make_bot(request))
    doc = {"kind": "document", "data": b"PK\x03\x04ledger", "filename": "台账.xlsx"}
    await messenger.send("42", RenderedMessage(text="台账", attachment=doc))
    (sent,) = request.calls("sendDocument")
    assert sent["caption"] == "台账" and sent["chat_id"] == 42
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG chart")
    photo = {"kind": "photo", "path": str(chart), "filename": "chart.png"}
    await messenger.send("-100", RenderedMessage(text="x" * 1100, attachment=photo))
    assert request.calls("sendMessage")[0]["text"] == "x" * 1100  # too long for a caption
    assert "caption" not in request.calls("sendPhoto")[0]
    assert [(m, n, d) for m, n, d in request.files] == [
        ("sendDocument", "台账.xlsx", b"PK\x03\x04ledger"),
        ("sendPhoto", "chart.png", b"\x89PNG chart"),
    ]


async def test_a_poll_is_sent_natively_and_stopped():
    request = RecordingRequest()
    messenger = PtbMessenger(make_bot(request))
    poll = RenderedPoll(("满意", "基本满意", "不满意"))
    sent_id = await messenger.send("-100", RenderedMessage(text="测评", poll=poll))
    (call,) = request.calls("sendPoll")
    assert call["question"] == "测评" and call["is_anonymous"] is True
    assert [o["text"] if isinstance(o, dict) else o for o in call["options"]] == list(poll.options)
    message_id, poll_id = sent_id.split(":")
    assert poll_id == f"poll{message_id}"
    stop = RenderedPoll(poll.options, stop=True)
    request.failures["stopPoll"] = (400, "Bad Request: poll has already been closed", None)
    await messenger.edit("-100", RenderedMessage(text="", poll=stop, edit_message_id=message_id))
    (stopped,) = request.calls("stopPoll")
    assert stopped == {"chat_id": -100, "message_id": int(message_id)}


async def test_telegram_errors_map_to_delivery_errors():
    request = RecordingRequest()
    messenger = PtbMessenger(make_bot(request))
    msg = RenderedMessage(text="hi")
    cases = [
        ((429, "Too Many Requests", {"retry_after": 7}), "retry_after", 7.0),
        ((403, "Forbidden: bot was blocked by the user", None), "blocked", True),
        ((400, "Bad Request: chat not found", None), "permanent", True),
        ((400, "Bad Request", {"migrate_to_chat_id": -1001}), "permanent", True),
        ((413, "Request Entity Too Large", None), "permanent", True),
    ]
    for failure, attr, value in cases:
        request.failures["sendMessage"] = failure
        with pytest.raises(DeliveryError) as caught:
            await messenger.send("42", msg)
        assert getattr(caught.value, attr) == value, failure
    request.failures["sendMessage"] = (502, "Bad Gateway", None)
    with pytest.raises(NetworkError):  # a server fault: the worker retries it with backoff
        await messenger.send("42", msg)
    request.failures["sendMessage"] = (500, "Internal Server Error", None)
    with pytest.raises(NetworkError):
        await messenger.send("42", msg)
    request.failures["sendMessage"] = TimedOut("timed out")
    with pytest.raises(TimedOut):
        await messenger.send("42", msg)
    request.failures["sendMessage"] = httpx.ConnectError("refused")  # PTB wraps it
    with pytest.raises(NetworkError):
        await messenger.send("42", msg)


async def test_not_modified_edit_counts_as_success_and_edits_need_an_id():
    request = RecordingRequest()
    messenger = PtbMessenger(make_bot(request))
    request.failures["editMessageText"] = (400, "Bad Request: message is not modified", None)
    await messenger.edit("42", RenderedMessage(text="same", edit_message_id="9"))
    request.failures["editMessageText"] = (400, "Bad Request: message to edit not found", None)
    with pytest.raises(DeliveryError) as caught:
        await messenger.edit("42", RenderedMessage(text="x", edit_message_id="9"))
    assert caught.value.permanent
    with pytest.raises(DeliveryError):
        await messenger.edit("42", RenderedMessage(text="x"))


async def test_chat_menu_has_no_language_code_and_default_menus_survive_failures():
    request = RecordingRequest()
    bot = make_bot(request)
    await PtbMessenger(bot).set_commands("42", RenderedMenu("en", (("help", "What you can do"),)))
    (call,) = request.calls("setMyCommands")
    assert call["scope"] == {"type": "chat", "chat_id": 42}
    assert "language_code" not in call
    assert call["commands"] == [{"command": "help", "description": "What you can do"}]

    request.requests.clear()
    await runtime.set_default_menus(bot)
    calls = request.calls("setMyCommands")
    assert {(c["scope"]["type"], c.get("language_code")) for c in calls} == {
        ("default", None),
        ("all_group_chats", None),
        ("default", "zh"),
        ("default", "en"),
        ("all_group_chats", "zh"),
        ("all_group_chats", "en"),
    }
    request.failures["setMyCommands"] = (500, "Internal Server Error", None)
    await runtime.set_default_menus(bot)  # logged, not raised


# -- handling updates over the real core ---------------------------------------------------------


class Rig:
    """The PTB handler over the real core and outbox, with a recording transport."""

    def __init__(self, db: Path, request: RecordingRequest | None = None, core=None) -> None:
        self.db = db
        self.request = request or RecordingRequest()
        self.bot = make_bot(self.request)
        self.store = Store(f"sqlite:///{db}")
        self.core = core or build_core(self.store, secret=b"s" * 32)
        self.worker = OutboxWorker(self.store, {"telegram": PtbMessenger(self.bot)})
        self.handler = PtbUpdateHandler(self.core, self.worker, self.bot, bot_username="PledgeBot")
        self._ids = itertools.count(1)

    async def feed(self, update: dict[str, Any]) -> None:
        await self.handler.feed_raw({**update, "update_id": next(self._ids)})
        await self.handler.drain()

    def texts(self) -> list[str]:
        return [p.get("text", "") for p in self.request.calls("sendMessage")]

    def answers(self) -> list[dict[str, Any]]:
        return self.request.calls("answerCallbackQuery")

    def processed(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT count(*) FROM processedupdate").fetchone()[0]


def message(update_id: int, user_id: int, text: str | None = None, **extra) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "message_id": update_id,
        "date": int(datetime.now(UTC).timestamp()),
        "chat": {"id": user_id, "type": "private", "first_name": "U"},
        "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "zh"},
        **extra,
    }
    if text is not None:
        msg["text"] = text
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


@pytest.fixture
async def rig(template_db: Path, tmp_path: Path):  # noqa: F811
    db = tmp_path / "t.db"
    shutil.copy(template_db, db)
    r = Rig(db)
    yield r
    await r.handler.drain()
    await r.store.dispose()


async def test_binding_answers_buttons_and_sets_the_chat_menu(rig: Rig):
    await rig.handler.feed_raw(message(1, 31, "/start"))
    await rig.handler.drain()
    (intro,) = rig.request.calls("sendMessage")
    assert intro["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    contact = {"phone_number": SECRETARY, "first_name": "U", "user_id": 31}
    await rig.handler.feed_raw(message(2, 31, contact=contact))
    await rig.handler.drain()
    assert any(t.startswith("绑定成功") for t in rig.texts())
    menus = rig.request.calls("setMyCommands")
    assert menus and menus[-1]["scope"] == {"type": "chat", "chat_id": 31}
    await rig.handler.feed_raw(button(3, 31, rig.core.codec.encode(LangCb("en"))))
    await rig.handler.drain()
    (answer,) = rig.answers()
    assert answer["callback_query_id"] == "cb3"
    assert rig.processed() == 3


async def test_a_forged_button_is_answered_and_changes_nothing(rig: Rig):
    await rig.feed(button(0, 32, "forged:1:abc"))
    (answer,) = rig.answers()
    assert answer["callback_query_id"] == "cb0"
    assert rig.processed() == 1


async def test_bindgroup_asks_telegram_whether_the_sender_administers_the_group(rig: Rig):
    update = message(0, 33, "/bindgroup")
    update["message"]["chat"] = {"id": -500, "type": "supergroup", "title": "一支部"}
    await rig.feed(update)
    (member,) = rig.request.calls("getChatMember")
    assert member == {"chat_id": -500, "user_id": 33}


class ExplodingCore:
    codec = None

    async def handle(self, event):
        raise RuntimeError("boom")


async def test_a_failure_gets_the_plain_apology_never_its_text(template_db: Path, tmp_path):  # noqa: F811
    db = tmp_path / "t.db"
    shutil.copy(template_db, db)
    r = Rig(db, core=ExplodingCore())
    try:
        await r.handler.feed_raw(button(1, 40, "x"))
        (answer,) = r.answers()
        assert answer["text"] == APOLOGY
        await r.handler.feed_raw(message(2, 40, "你好"))
        assert r.texts() == [APOLOGY]
        await r.handler.feed_raw({"update_id": 3, "poll": {"id": "p", "options": []}})
        assert r.texts() == [APOLOGY]  # nobody to tell
    finally:
        await r.store.dispose()


# -- never lose an update ------------------------------------------------------------------------


@pytest.fixture
async def fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign.db, "SQLITE_BUSY_MS", 100)
    monkeypatch.setattr(updates, "RETRY_FIRST", 0.05)  # the shared poller's backoff
    monkeypatch.setattr(updates, "RETRY_MAX", 0.2)
    path = tmp_path / "bot.db"
    store = Store(f"sqlite:///{path}")
    await store.migrate()
    await store.dispose()
    r = Rig(path)
    await r.bot.initialize()
    yield r
    await r.handler.drain()
    await r.store.dispose()


async def test_polling_keeps_the_offset_before_an_unrecorded_update(fresh: Rig):
    rig, request = fresh, fresh.request
    data = rig.core.codec.encode(LangCb("en"))
    request.pending = [message(10, 7, "你好"), message(11, 7, "/help"), button(12, 7, data)]
    holder = sqlite3.connect(rig.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    stop = asyncio.Event()
    polling = asyncio.create_task(Poller(rig.bot, rig.handler, stop).run())
    try:
        await asyncio.sleep(1.0)  # several attempts, each past the busy timeout
        assert rig.processed() == 0
        assert all(o is None or o <= 10 for o in request.offsets)  # nothing confirmed
        assert rig.texts() == [] and rig.answers() == []  # no apology, no answer yet
        holder.execute("ROLLBACK")
        for _ in range(100):
            if request.offsets and request.offsets[-1] == 13:
                break
            await asyncio.sleep(0.05)
        assert request.offsets[-1] == 13  # confirmed once handled, in order
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
async def webhook(fresh: Rig):
    app = runtime.webhook_app(fresh.handler, fresh.bot, WEBHOOK_SECRET, "/tg")
    async with TestClient(TestServer(app)) as client:
        yield fresh, client


async def post(client: TestClient, body: bytes, secret: str | None = WEBHOOK_SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with client.post("/tg", data=body, headers=headers) as response:
        return response.status


async def test_webhook_checks_the_secret_and_refuses_what_is_not_an_update(webhook, caplog):
    rig, client = webhook
    caplog.set_level(logging.INFO)
    update = json.dumps(message(5, 8, "/help")).encode()
    assert await post(client, update, secret=None) == 401
    assert await post(client, update, secret="wrong") == 401
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"update_id": "x"}', b""):
        caplog.clear()
        assert await post(client, body) == 400
        ours = [r for r in caplog.records if r.name.startswith(("bot", "telegram", "handlers"))]
        assert len(ours) == 1 and ours[0].levelno == logging.WARNING, ours
        assert not any(r.exc_info for r in caplog.records)
    assert await post(client, b"x" * (1024**2 + 1)) == 413  # aiohttp's body limit stays
    assert rig.processed() == 0 and rig.texts() == []


async def test_webhook_answers_503_while_the_store_cannot_record(webhook):
    rig, client = webhook
    update = json.dumps(message(20, 8, "/help")).encode()
    holder = sqlite3.connect(rig.db, isolation_level=None)
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


# -- the run command -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"BOT_TOKEN": "not-a-token"}, [], "BOT_TOKEN"),
        ({"BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://x.example/tg"}, [], "WEBHOOK_SECRET"),
        ({"BOT_TOKEN": TOKEN}, ["--webhook"], "WEBHOOK_URL"),
    ],
)
def test_run_with_ptb_refuses_settings_that_cannot_work(tmp_path, monkeypatch, env, args, says):
    import click
    from click.testing import CliRunner

    from bot import cli_run

    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for key in ("BOT_TOKEN", "WEBHOOK_URL", "WEBHOOK_SECRET", "RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    group = click.Group()
    cli_run.register(group)
    result = CliRunner().invoke(group, ["run", *args], env={**env, "RUNTIME": "ptb"})
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output


async def test_a_refused_token_stops_the_start_with_a_plain_error(tmp_path, monkeypatch):
    from bot.settings import load_settings

    request = RecordingRequest()
    request.failures["getMe"] = (401, "Unauthorized", None)
    monkeypatch.setattr(runtime, "make_bot", lambda settings: make_bot(request))
    settings = load_settings(bot_token=TOKEN, database_url=f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(runtime.StartupError, match="BOT_TOKEN"):
        await runtime.run_bot(settings, webhook=False, scheduler=False)
