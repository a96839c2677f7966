"""Drive the real aiogram dispatcher in-process, with a session that records instead of sending."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import sqlite3
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import Chat, Message, Update, User

from bot.delivery import DeliveryError, RenderedButton, RenderedMenu, RenderedMessage
from bot.outbox import OutboxWorker
from bot.telegram import (
    TelegramMessenger,
    UpdateHandler,
    build_dispatcher,
    delivery_error,
    set_default_menus,
    update_to_event,
)
from campaign.db import Store
from handlers.app import build_core
from handlers.core import Handled
from handlers.events import (
    ButtonPressed,
    ChatType,
    CommandReceived,
    ContactShared,
    PhotoReceived,
    TextReceived,
)
from templates import catalog

TOKEN = "123456:TEST-adapter"
MEMBER_PHONE = "13800000001"
SECRETARY_PHONE = "13800000002"


class RecordingSession(BaseSession):
    """A session that records every Bot API call and answers it plausibly."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, Exception] = {}
        self._ids = itertools.count(100)

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any):  # pragma: no cover
        yield b""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        name = method.__api_method__
        params = self.wire_params(bot, method)
        self.requests.append((name, params))
        if name in self.failures:
            raise self.failures[name]
        if name == "getMe":
            return User(id=123456, is_bot=True, first_name="Bot", username="PledgeBot")
        if name in ("sendMessage", "sendPhoto", "sendDocument", "editMessageText"):
            chat_id = params.get("chat_id", 0)
            return Message(
                message_id=next(self._ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(chat_id), type="private"),
                text=params.get("text"),
            )
        return True

    def wire_params(self, bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any]:
        """Return the parameters as the HTTP session would send them, JSON decoded."""
        out: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files={})
            if not prepared:
                continue
            if isinstance(prepared, str) and prepared[:1] in "[{":
                prepared = json.loads(prepared)
            elif isinstance(prepared, str) and re.fullmatch(r"-?\d+", prepared):
                prepared = int(prepared)
            out[key] = prepared
        return out

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.requests if m == method]


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """A migrated database with the demo cast on the roster, copied for each test."""
    from campaign.demo_data import load_demo

    path = tmp_path_factory.mktemp("adapter") / "template.db"

    async def make() -> None:
        store = Store(f"sqlite:///{path}")
        await store.migrate()
        result = await load_demo(store, 12)
        assert not result.errors
        await store.dispose()

    asyncio.run(make())
    return path


class Rig:
    """A dispatcher over the real core and outbox, with a recording bot."""

    def __init__(self, db: Path, core=None) -> None:
        self.db = db
        self.session = RecordingSession()
        self.bot = Bot(TOKEN, session=self.session)
        self.store = Store(f"sqlite:///{db}")
        self.core = core or build_core(self.store, secret=b"test-secret")
        self.worker = OutboxWorker(self.store, {"telegram": TelegramMessenger(self.bot)})
        self.handler = UpdateHandler(self.core, self.worker, bot_username="PledgeBot")
        self.dp = build_dispatcher(self.handler)
        self._update_ids = itertools.count(1)

    async def feed(self, payload: dict[str, Any]) -> None:
        payload = {"update_id": next(self._update_ids), **payload}
        update = Update.model_validate(payload, context={"bot": self.bot})
        await self.dp.feed_update(self.bot, update)
        await self.handler.drain()

    async def message(self, user_id: int, text: str | None = None, **extra: Any) -> None:
        msg: dict[str, Any] = {
            "message_id": next(self._update_ids),
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": user_id, "type": "private", "first_name": "U"},
            "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "zh"},
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                msg["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
                ]
        msg.update(extra)
        await self.feed({"message": msg})

    async def press(self, user_id: int, data: str) -> None:
        await self.feed(
            {
                "callback_query": {
                    "id": f"cb{next(self._update_ids)}",
                    "chat_instance": "ci",
                    "from": {"id": user_id, "is_bot": False, "first_name": "U"},
                    "data": data,
                    "message": {
                        "message_id": 1,
                        "date": 0,
                        "chat": {"id": user_id, "type": "private"},
                        "text": "card",
                    },
                }
            }
        )

    async def bind(self, user_id: int, phone: str) -> None:
        await self.message(
            user_id,
            contact={"phone_number": phone, "first_name": "U", "user_id": user_id},
        )

    async def close(self) -> None:
        await self.store.dispose()


@pytest.fixture
async def rig(template_db: Path, tmp_path: Path) -> AsyncGenerator[Rig, None]:
    db = tmp_path / "t.db"
    shutil.copy(template_db, db)
    r = Rig(db)
    yield r
    await r.close()


# -- conversion -----------------------------------------------------------------------------------


def _update(payload: dict[str, Any]) -> Update:
    return Update.model_validate({"update_id": 7, **payload})


def _msg(text: str | None = None, chat_type: str = "private", chat_id: int = 5, **extra):
    m: dict[str, Any] = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": chat_id, "type": chat_type},
        "from": {"id": 5, "is_bot": False, "first_name": "A", "language_code": "en"},
    }
    if chat_type != "private":
        m["chat"]["title"] = "T"
    if text is not None:
        m["text"] = text
    m.update(extra)
    return {"message": m}


def test_command_with_payload_and_bot_name():
    event = update_to_event(_update(_msg("/start@PledgeBot inv_abc-1")), bot_username="pledgebot")
    assert isinstance(event, CommandReceived)
    assert (event.command, event.args, event.update_id) == ("start", "inv_abc-1", "7")
    assert event.sender.platform == "telegram"
    assert (event.sender.user_id, event.sender.chat_id, event.sender.language) == ("5", "5", "en")


def test_command_for_another_bot_is_ignored():
    update = _update(_msg("/help@OtherBot", chat_type="supergroup", chat_id=-100))
    assert update_to_event(update, bot_username="PledgeBot") is None


def test_group_text_contact_photo_callback():
    group = update_to_event(_update(_msg("hello", chat_type="supergroup", chat_id=-100)))
    assert isinstance(group, TextReceived)
    assert group.sender.chat_type is ChatType.GROUP
    assert (group.sender.chat_id, group.sender.chat_title) == ("-100", "T")

    contact = update_to_event(
        _update(_msg(contact={"phone_number": "+8613800000001", "first_name": "A", "user_id": 5}))
    )
    assert isinstance(contact, ContactShared)
    assert (contact.phone, contact.contact_user_id) == ("+8613800000001", "5")
    no_owner = update_to_event(_update(_msg(contact={"phone_number": "1", "first_name": "A"})))
    assert isinstance(no_owner, ContactShared) and no_owner.contact_user_id is None

    sizes = [
        {"file_id": f"f{i}", "file_unique_id": f"u{i}", "width": w, "height": w}
        for i, w in enumerate((90, 320, 1280))
    ]
    photo = update_to_event(_update(_msg(photo=sizes, caption="证明")))
    assert isinstance(photo, PhotoReceived)
    assert (photo.file_id, photo.caption) == ("f2", "证明")

    pressed = update_to_event(
        _update(
            {
                "callback_query": {
                    "id": "q1",
                    "chat_instance": "c",
                    "from": {"id": 5, "is_bot": False, "first_name": "A"},
                    "data": "lang:en:sig",
                    "message": {"message_id": 9, "date": 0, "chat": {"id": 5, "type": "private"}},
                }
            }
        )
    )
    assert isinstance(pressed, ButtonPressed)
    assert (pressed.data, pressed.message_id, pressed.callback_id) == ("lang:en:sig", "9", "q1")


def test_channel_posts_and_bots_are_ignored():
    assert update_to_event(_update(_msg("x", chat_type="channel", chat_id=-1001))) is None
    bot_msg = _msg("x")
    bot_msg["message"]["from"]["is_bot"] = True
    assert update_to_event(_update(bot_msg)) is None


# -- the messenger --------------------------------------------------------------------------------


async def test_long_text_is_split_and_a_message_with_buttons_never_is():
    session = RecordingSession()
    messenger = TelegramMessenger(Bot(TOKEN, session=session))
    text = "\n".join(f"第{i}行 " + "承" * 60 for i in range(150))  # about 9,600 characters
    await messenger.send("42", RenderedMessage(text=text))
    sent = session.calls("sendMessage")
    assert len(sent) == 3
    assert all(len(p["text"]) <= 4096 for p in sent)
    assert "".join(p["text"] for p in sent).replace("\n", "") == text.replace("\n", "")

    # Found: a card's buttons went under its last part, and its edit put the head there.
    button = RenderedButton("通过", data="x:1:sig")
    message_id = await messenger.send("42", RenderedMessage(text=text, buttons=((button,),)))
    (card,) = session.calls("sendMessage")[3:]
    assert len(card["text"]) <= 4096 and card["text"].startswith("第0行")
    keyboard = card["reply_markup"]["inline_keyboard"]
    assert keyboard[0][0]["text"] == "通过"
    assert keyboard[0][0]["callback_data"] == "x:1:sig"
    assert message_id == "103"
    await messenger.edit(
        "42", RenderedMessage(text=text, buttons=((button,),), edit_message_id=message_id)
    )
    (edit,) = session.calls("editMessageText")
    assert edit["text"] == card["text"] and edit["message_id"] == 103


async def test_telegram_errors_map_to_delivery_errors():
    session = RecordingSession()
    messenger = TelegramMessenger(Bot(TOKEN, session=session))
    msg = RenderedMessage(text="hi")
    method = None
    cases = [
        (TelegramRetryAfter(method=method, message="slow down", retry_after=7), "retry_after", 7),
        (TelegramForbiddenError(method=method, message="bot was blocked"), "blocked", True),
        (TelegramBadRequest(method=method, message="chat not found"), "permanent", True),
    ]
    for exc, attr, value in cases:
        session.failures["sendMessage"] = exc
        with pytest.raises(DeliveryError) as caught:
            await messenger.send("42", msg)
        assert getattr(caught.value, attr) == value
    server = delivery_error(TelegramServerError(method=method, message="Bad Gateway"))
    assert not (server.permanent or server.blocked) and server.retry_after is None
    # network faults are not DeliveryErrors: the worker retries them with backoff
    session.failures["sendMessage"] = TelegramNetworkError(method=method, message="reset")
    with pytest.raises(TelegramNetworkError):
        await messenger.send("42", msg)


async def test_not_modified_edit_counts_as_success():
    session = RecordingSession()
    messenger = TelegramMessenger(Bot(TOKEN, session=session))
    session.failures["editMessageText"] = TelegramBadRequest(
        method=None, message="Bad Request: message is not modified"
    )
    await messenger.edit("42", RenderedMessage(text="same", edit_message_id="9"))
    session.failures["editMessageText"] = TelegramBadRequest(
        method=None, message="Bad Request: message to edit not found"
    )
    with pytest.raises(DeliveryError) as caught:
        await messenger.edit("42", RenderedMessage(text="x", edit_message_id="9"))
    assert caught.value.permanent


async def test_chat_menu_has_no_language_code():
    session = RecordingSession()
    messenger = TelegramMessenger(Bot(TOKEN, session=session))
    await messenger.set_commands("42", RenderedMenu("en", (("help", "What you can do"),)))
    (call,) = session.calls("setMyCommands")
    assert call["scope"] == {"type": "chat", "chat_id": 42}
    assert "language_code" not in call
    assert call["commands"] == [{"command": "help", "description": "What you can do"}]


async def test_default_menus_and_their_failures_do_not_crash():
    session = RecordingSession()
    bot = Bot(TOKEN, session=session)
    await set_default_menus(bot)
    calls = session.calls("setMyCommands")
    by_key = {(c["scope"]["type"], c.get("language_code")): c["commands"] for c in calls}
    assert set(by_key) == {
        ("default", None),
        ("default", "zh"),
        ("default", "en"),
        ("all_group_chats", None),
        ("all_group_chats", "zh"),
        ("all_group_chats", "en"),
    }
    assert [c["command"] for c in by_key[("default", None)]] == ["start", "help", "lang"]
    assert [c["command"] for c in by_key[("all_group_chats", "en")]] == [
        "bindgroup",
        "unbindgroup",
        "help",
    ]
    assert by_key[("default", "en")][1]["description"] == catalog().render("command.help", "en")
    assert by_key[("default", None)] == by_key[("default", "zh")]
    session.failures["setMyCommands"] = TelegramServerError(method=None, message="boom")
    await set_default_menus(bot)  # logged, not raised


# -- the dispatcher over the real core -----------------------------------------------------------


async def test_unbound_user_gets_the_request_contact_keyboard(rig: Rig):
    await rig.message(1001, "/start")
    (sent,) = rig.session.calls("sendMessage")
    assert sent["chat_id"] == 1001
    keyboard = sent["reply_markup"]["keyboard"]
    assert keyboard[0][0]["request_contact"] is True
    assert keyboard[0][0]["text"] == catalog().render("bind.share_button", "zh_CN")


async def test_binding_sets_the_chat_menu_per_role_and_language(rig: Rig):
    await rig.bind(2001, MEMBER_PHONE)
    await rig.bind(2002, SECRETARY_PHONE)
    menus = {c["scope"]["chat_id"]: c for c in rig.session.calls("setMyCommands")}
    assert set(menus) == {2001, 2002}
    for menu in menus.values():
        assert "language_code" not in menu
        assert menu["commands"][0] == {
            "command": "help",
            "description": catalog().render("command.help", "zh_CN"),
        }
    member_cmds = [c["command"] for c in menus[2001]["commands"]]
    assert "start" not in member_cmds and "help" in member_cmds and "lang" in member_cmds
    # the secretary's menu is the member's plus what the role allows: reviewing members' pledges
    secretary_cmds = [c["command"] for c in menus[2002]["commands"]]
    assert set(member_cmds) < set(secretary_cmds)
    assert "review" in secretary_cmds and "review" not in member_cmds
    accounts = sqlite3.connect(rig.db).execute("SELECT external_id FROM account").fetchall()
    assert sorted(a for (a,) in accounts) == ["2001", "2002"]

    rig.session.requests.clear()
    await rig.message(2001, "/lang en")
    (menu,) = rig.session.calls("setMyCommands")
    assert menu["scope"] == {"type": "chat", "chat_id": 2001}
    assert menu["commands"][0]["description"] == catalog().render("command.help", "en")
    (reply,) = rig.session.calls("sendMessage")
    assert reply["text"] == catalog().render("lang.switched", "en")


async def test_forged_button_is_answered_and_changes_nothing(rig: Rig):
    await rig.bind(3001, MEMBER_PHONE)
    rig.session.requests.clear()
    await rig.press(3001, "lang:en:AAAAAAAA")
    (answer,) = rig.session.calls("answerCallbackQuery")
    assert answer["text"] == catalog().render("error.bad_button", "zh_CN")
    assert rig.session.calls("sendMessage") == []
    (locale,) = sqlite3.connect(rig.db).execute("SELECT locale FROM account").fetchone()
    assert locale == "zh_CN"


class ExplodingCore:
    """A core whose every call fails, as when the database is gone."""

    async def handle(self, event) -> Handled:
        raise RuntimeError("database is on fire: secret detail")


async def test_callback_is_answered_even_when_handling_raises(template_db: Path, tmp_path: Path):
    db = tmp_path / "x.db"
    shutil.copy(template_db, db)
    r = Rig(db, core=ExplodingCore())
    try:
        await r.press(4001, "whatever")
        (answer,) = r.session.calls("answerCallbackQuery")
        assert answer["text"] == catalog().render("error.unexpected", "zh_CN")
        assert "fire" not in answer["text"]

        await r.message(4001, "hello")
        (apology,) = r.session.calls("sendMessage")
        assert apology["text"] == catalog().render("error.unexpected", "zh_CN")
    finally:
        await r.close()


async def test_handler_failure_inside_the_core_is_a_toast(rig: Rig, monkeypatch):
    from handlers import start

    async def boom(ctx, cb):
        raise RuntimeError("secret detail")

    rig.core.router.buttons[start.LangCb] = boom
    await rig.bind(5001, MEMBER_PHONE)
    rig.session.requests.clear()
    await rig.press(5001, rig.core.codec.encode(start.LangCb("en")))
    (answer,) = rig.session.calls("answerCallbackQuery")
    assert answer["text"] == catalog().render("error.unexpected", "zh_CN")


# -- the run command ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"BOT_TOKEN": "not-a-token"}, [], "BOT_TOKEN"),
        ({"BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://x.example/tg"}, [], "WEBHOOK_SECRET"),
        ({"BOT_TOKEN": TOKEN}, ["--webhook"], "WEBHOOK_URL"),
        ({"BOT_TOKEN": TOKEN, "WEBHOOK_SECRET": "bad secret!"}, [], "WEBHOOK_SECRET"),
    ],
)
def test_run_refuses_settings_that_cannot_work(tmp_path, monkeypatch, env, args, says):
    import click
    from click.testing import CliRunner

    from bot import cli_run

    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for key in ("BOT_TOKEN", "WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(key, raising=False)
    group = click.Group()
    cli_run.register(group)
    result = CliRunner().invoke(group, ["run", *args], env=env)
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output


async def test_the_menu_is_a_persistent_reply_keyboard():
    from bot.delivery import render_reply
    from models.reply import Keyboard, Reply

    session = RecordingSession()
    messenger = TelegramMessenger(Bot(TOKEN, session=session))
    reply = Reply("menu.choose", keyboard=Keyboard.MENU, menu=("pledge", "mine", "report"))
    await messenger.send("42", render_reply(reply, "zh_CN"))
    (sent,) = session.calls("sendMessage")
    markup = sent["reply_markup"]
    assert markup["is_persistent"] is True and markup["resize_keyboard"] is True
    labels = [[b["text"] for b in row] for row in markup["keyboard"]]
    assert labels == [["写承诺", "我的承诺"], ["报进度"]]
