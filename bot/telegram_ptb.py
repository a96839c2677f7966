"""The python-telegram-bot (PTB 22) runtime: the same core, outbox and limits as the aiogram one.

``RUNTIME=ptb`` selects it. It is a lean use of ``telegram.Bot`` (no ``Application``): PTB's own
updater confirms an update as soon as it is fetched, and ours must not. What an update becomes
is decided by the shared table in ``bot/updates.py`` from ``Update.to_dict()``, the raw Bot API
JSON, exactly as the aiogram runtime does from its own objects, so the two cannot drift.

* Polling (``Poller``): getUpdates one batch at a time; the offset moves past an update only once
  the core has recorded it; on ``StoreUnavailable`` the update is tried again with backoff,
  before any later one, and nobody is told anything.
* Webhook: an aiohttp server checks the secret token (``X-Telegram-Bot-Api-Secret-Token``,
  compared in constant time; 401 without it), answers 400 for a body that is not an update,
  handles the update before answering, and answers 503 when the store could not record it (or
  not within ``WEBHOOK_DEADLINE``), so Telegram sends it again. It refuses to start without
  ``WEBHOOK_SECRET``.
* ``PtbMessenger`` is the ``Messenger`` port: text split at 4096 characters, inline buttons,
  reply keyboards and menus, edits, documents and photos from stored files, native polls and
  stopPoll, per-chat command menus; PTB's errors map onto ``DeliveryError`` (``RetryAfter`` ->
  retry_after, ``Forbidden`` -> blocked, ``BadRequest`` / ``ChatMigrated`` -> permanent; a
  network fault or timeout is re-raised for the worker to retry).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from bot import updates
from bot.delivery import DeliveryError, RenderedMenu, RenderedMessage, shorten_text
from bot.outbox import OutboxWorker
from bot.runtime import retrying, serve_core
from bot.settings import PUBLIC_API, Settings
from bot.updates import (
    ALLOWED_UPDATES,
    PLATFORM,
    POLL_QUESTION_LIMIT,
    POLL_TIMEOUT,
    TEXT_LIMIT,
    TOAST_LIMIT,
    WEBHOOK_DEADLINE,
    UpdatePoller,
    check_webhook_settings,
    posts_of,
    webhook_path,
)
from handlers.core import Core, StoreUnavailable
from handlers.events import ButtonPressed, Event
from templates import DEFAULT_LOCALE, catalog

__all__ = [
    "Poller",
    "PtbMessenger",
    "PtbUpdateHandler",
    "StartupError",
    "check_webhook_settings",
    "make_bot",
    "run_bot",
    "update_to_event",
]

log = logging.getLogger(__name__)

# PTB 23's durations (RetryAfter.retry_after a timedelta) now, instead of a deprecation warning
# on every 429; ``_seconds`` reads either
os.environ.setdefault("PTB_TIMEDELTA", "true")

#: connections for sending (the outbox sends on 8 lanes, button answers and admin checks beside)
SEND_POOL = 16
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


#: loggers of PTB's HTTP client: at INFO httpx logs every request's URL, which holds the token
QUIET_LOGGERS = ("httpx", "httpcore")


def quiet_library_logs() -> None:
    """Keep the HTTP client's request lines (URLs with the bot token in them) out of the log."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))


class StartupError(RuntimeError):
    """The bot cannot start with these settings (the message says why, for the operator)."""


# -- updates -> events ----------------------------------------------------------------------------


def update_to_event(update: Update, *, bot_username: str | None = None) -> Event | None:
    """Return the event of a PTB update, by the table the aiogram runtime uses too."""
    return updates.update_event(update.to_dict(), bot_username=bot_username)


# -- the Messenger port ---------------------------------------------------------------------------


def _chat(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # @channelusername


def _inline_markup(message: RenderedMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.text, url=b.url)
                if b.url
                else InlineKeyboardButton(b.text, callback_data=b.data or "-")
                for b in row
            ]
            for row in message.buttons
        ]
    )


def _keyboard_markup(message: RenderedMessage) -> ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    if message.keyboard == "request_contact":
        label = message.keyboard_label or catalog().render("bind.share_button", DEFAULT_LOCALE)
        return ReplyKeyboardMarkup(
            [[KeyboardButton(label, request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if message.keyboard == "remove":
        return ReplyKeyboardRemove()
    if message.keyboard == "menu" and message.keyboard_rows:
        return ReplyKeyboardMarkup(
            [[KeyboardButton(t) for t in row] for row in message.keyboard_rows],
            resize_keyboard=True,
            is_persistent=True,
        )
    return None


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Return the DeliveryError that tells the outbox what Telegram's answer means."""
    text = f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, RetryAfter):
        return DeliveryError(text, retry_after=_seconds(exc.retry_after))
    if isinstance(exc, Forbidden):
        return DeliveryError(text, blocked=True)
    if isinstance(exc, BadRequest | ChatMigrated | EndPointNotFound) or _too_large(exc):
        return DeliveryError(text, permanent=True)
    return DeliveryError(text)  # server errors, conflicts, a bad token: try again later


def _too_large(exc: TelegramError) -> bool:
    return "(413)" in exc.message or "too large" in exc.message.lower()


def _raise_for(exc: TelegramError) -> NoReturn:
    """Re-raise a network fault as it is (the worker retries it), anything else translated.

    In PTB a ``BadRequest`` is a ``NetworkError`` too; it is a refusal, not a fault.
    """
    if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest) and not _too_large(exc):
        raise exc
    raise delivery_error(exc) from exc


def _bot_commands(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(c[:32], (d or c)[:256]) for c, d in pairs]


class PtbMessenger:
    """Send, edit and set menus through a PTB ``Bot`` (the Messenger port)."""

    platform = PLATFORM

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: str, message: RenderedMessage) -> str | None:
        """Send a message, split at 4096 characters; one with buttons is never split."""
        try:
            return await self._send(_chat(chat_id), message)
        except TelegramError as exc:
            log.info("send to %s failed: %s", chat_id, exc.message)
            _raise_for(exc)

    async def _send(self, chat: int | str, message: RenderedMessage) -> str | None:
        if message.poll is not None:
            sent = await self.bot.send_poll(
                chat,
                message.text[:POLL_QUESTION_LIMIT],
                list(message.poll.options),
                is_anonymous=message.poll.anonymous,
            )
            return f"{sent.message_id}:{sent.poll.id}" if sent.poll else str(sent.message_id)
        last_id: str | None = None
        attachment = message.attachment
        for post in posts_of(message, _inline_markup(message), _keyboard_markup(message)):
            if post.file:
                sent = await self._send_file(chat, attachment, post.text, post.markup)
            else:
                sent = await self.bot.send_message(chat, post.text, reply_markup=post.markup)
            last_id = str(sent.message_id)
        return last_id

    async def _send_file(
        self, chat: int | str, attachment: dict, caption: str | None, markup: Any
    ) -> Message:
        filename = attachment.get("filename")
        source: Any = attachment.get("file_id")
        if attachment.get("data") is not None:
            source = InputFile(attachment["data"], filename=filename)
        elif not source:
            path = Path(attachment["path"])
            source = InputFile(path.read_bytes(), filename=filename or path.name)
        if attachment.get("kind") == "photo":
            return await self.bot.send_photo(chat, source, caption=caption, reply_markup=markup)
        return await self.bot.send_document(chat, source, caption=caption, reply_markup=markup)

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        """Replace a card's text and buttons; an unchanged card counts as edited."""
        if not message.edit_message_id:
            raise DeliveryError("edit without a message id", permanent=True)
        if message.poll is not None and message.poll.stop:
            try:
                await self.bot.stop_poll(_chat(chat_id), int(message.edit_message_id))
            except BadRequest as exc:
                if "already" in exc.message.lower() and "closed" in exc.message.lower():
                    return
                raise delivery_error(exc) from exc
            except TelegramError as exc:
                _raise_for(exc)
            return
        text = shorten_text(message.text, TEXT_LIMIT) if message.text else "-"
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=_chat(chat_id),
                message_id=int(message.edit_message_id),
                reply_markup=_inline_markup(message),
            )
        except BadRequest as exc:
            if "message is not modified" in exc.message.lower():
                return
            raise delivery_error(exc) from exc
        except TelegramError as exc:
            _raise_for(exc)

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        """Show one chat its command menu (no language code: it is shown whatever the app's)."""
        try:
            await self.bot.set_my_commands(
                _bot_commands(menu.commands), scope=BotCommandScopeChat(_chat(chat_id))
            )
        except TelegramError as exc:
            _raise_for(exc)


_SCOPES = {"default": BotCommandScopeDefault, "all_group_chats": BotCommandScopeAllGroupChats}


async def set_default_menus(bot: Bot) -> None:
    """Set the menus of people not bound yet and of group chats; failures are only logged."""
    for pairs, scope, code in updates.default_menus():
        try:
            await bot.set_my_commands(
                _bot_commands(pairs), scope=_SCOPES[scope](), language_code=code
            )
        except Exception as exc:  # a menu is a nicety: never fail start-up over it
            log.warning("setMyCommands (%s, %s) failed: %r", scope, code or "-", exc)


# -- handling updates -----------------------------------------------------------------------------


async def _answer(bot: Bot, callback_id: str, text: str | None) -> None:
    try:
        await bot.answer_callback_query(callback_id, text=text[:TOAST_LIMIT] if text else None)
    except TelegramError as exc:
        log.info("answerCallbackQuery %s refused: %s", callback_id, exc.message)
    except Exception as exc:
        log.warning("answerCallbackQuery %s failed: %r", callback_id, exc)


async def with_chat_admin(bot: Bot, event: Event) -> Event:
    """Say whether the sender administers the group, for the commands that need to know.

    Asked afresh each time (nothing cached): rights in a group change. A failed call raises,
    and the person gets the plain apology and can try again; nothing is linked meanwhile.
    """
    if not updates.needs_admin_check(event):
        return event
    s = event.sender
    member = await bot.get_chat_member(_chat(s.chat_id), int(s.user_id))
    return updates.with_admin_status(event, member.status)


class PtbUpdateHandler:
    """Glue between PTB and the core: one raw update in, a button answered, replies sent.

    Args:
        core: the platform-neutral core.
        worker: the outbox worker that delivers what the core queued.
        bot: the PTB bot (button answers, admin checks, apologies).
        bot_username: our @username, to ignore commands addressed to other bots.
    """

    def __init__(
        self, core: Core, worker: OutboxWorker, bot: Bot, *, bot_username: str | None = None
    ) -> None:
        self.core = core
        self.bot = bot
        self.bot_username = bot_username
        self.chains = updates.DeliveryChains(worker)

    async def feed(self, update: Update) -> None:
        """Handle one update (``Update.to_dict()`` through the shared table)."""
        await self.feed_raw(update.to_dict())

    async def feed_raw(self, raw: dict[str, Any]) -> None:
        """Handle one raw update; an unexpected failure gets the plain apology, never its text.

        Raises:
            StoreUnavailable: the store could not record it; the runtime has it sent again and
                the person is told nothing meanwhile.
        """
        try:
            await self._handle(raw)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("update %s failed", raw.get("update_id"))
            await self._apologise(raw)

    async def _handle(self, raw: dict[str, Any]) -> None:
        event = updates.update_event(raw, bot_username=self.bot_username)
        if event is None:
            query = raw.get("callback_query")
            if query is not None:
                await _answer(self.bot, str(query["id"]), None)
            return
        event = await with_chat_admin(self.bot, event)
        handled = await self.core.handle(event)
        if isinstance(event, ButtonPressed) and event.callback_id:
            await _answer(self.bot, event.callback_id, handled.toast)
        self.chains.deliver(event.sender.chat_id, handled.outbox_ids)

    async def _apologise(self, raw: dict[str, Any]) -> None:
        target = updates.apology_target(raw)
        if target is None:
            return
        text = updates.apology(target.language)
        if target.callback_id is not None:
            # answered only if the core finished; a second answer is refused and ignored
            await _answer(self.bot, target.callback_id, text)
        elif target.chat_id is not None:
            with suppress(Exception):
                await self.bot.send_message(target.chat_id, text)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) until the replies handed out so far are sent."""
        await self.chains.drain(timeout)


# -- running --------------------------------------------------------------------------------------


def make_bot(settings: Settings) -> Bot:
    """Return a PTB Bot for the settings' token, talking to TELEGRAM_API_BASE.

    Two connection pools: one for the long poll, one for everything sent.
    """
    token = settings.require_token()
    base = (settings.telegram_api_base or PUBLIC_API).rstrip("/")
    return Bot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=HTTPXRequest(
            connection_pool_size=SEND_POOL,
            read_timeout=30.0,
            write_timeout=60.0,
            connect_timeout=10.0,
            pool_timeout=30.0,
        ),
        get_updates_request=HTTPXRequest(
            connection_pool_size=2, read_timeout=POLL_TIMEOUT + 15.0, connect_timeout=10.0
        ),
    )


async def _retrying(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
    return await retrying(what, call, fatal=InvalidToken)


async def run_bot(
    settings: Settings, *, webhook: bool | None = None, scheduler: bool = True
) -> None:
    """Run the bot until SIGINT or SIGTERM: polling, or a webhook server when WEBHOOK_URL is set.

    Raises:
        ValueError: settings that cannot work (no token, webhook mode without a secret).
        StartupError: the Bot API refused the token.
    """
    use_webhook = bool(settings.webhook_url) if webhook is None else webhook
    if use_webhook:
        check_webhook_settings(settings)
    quiet_library_logs()
    bot = make_bot(settings)
    try:
        try:
            await _retrying("getMe", bot.initialize)
        except InvalidToken as exc:
            raise StartupError("the Bot API refused BOT_TOKEN (401 Unauthorized)") from exc
        username = settings.bot_username or bot.username
        await set_default_menus(bot)

        def make_handler(core: Core, worker: OutboxWorker) -> PtbUpdateHandler:
            return PtbUpdateHandler(core, worker, bot, bot_username=username)

        async def serve(handler: PtbUpdateHandler, stop: asyncio.Event) -> None:
            if use_webhook:
                await _serve_webhook(settings, bot, handler, stop)
            else:
                await _retrying(
                    "deleteWebhook", lambda: bot.delete_webhook(drop_pending_updates=False)
                )
                await Poller(bot, handler, stop).run()

        await serve_core(
            settings,
            bot_username=username,
            messenger=PtbMessenger(bot),
            make_handler=make_handler,
            serve=serve,
            scheduler=scheduler,
        )
    finally:
        with suppress(Exception):
            await bot.shutdown()
    log.info("stopped")


class Poller(UpdatePoller):
    """Long polling through PTB that confirms an update only once the core recorded it."""

    library = "python-telegram-bot"

    def __init__(self, bot: Bot, handler: PtbUpdateHandler, stop: asyncio.Event) -> None:
        super().__init__(stop)
        self.bot = bot
        self.handler = handler

    async def username(self) -> str:
        """Return the bot's @name."""
        return self.bot.username

    async def fetch(self) -> list[Update]:
        """Return the next batch of updates after the offset (a long poll)."""
        return list(
            await self.bot.get_updates(
                offset=self.offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
            )
        )

    async def handle(self, update: Update) -> None:
        """Hand one update to the core."""
        await self.handler.feed_raw(update.to_dict())

    async def confirm(self) -> None:
        """Confirm the offset to the Bot API."""
        await self.bot.get_updates(offset=self.offset, limit=1, timeout=0)


def webhook_app(handler: PtbUpdateHandler, bot: Bot, secret: str, path: str) -> web.Application:
    """Return the aiohttp application that takes updates at ``path``.

    Without the secret: 401. A body that is not an update: 400 and one log line. An update the
    store could not record (or not within ``WEBHOOK_DEADLINE``): 503, so Telegram sends it again.
    aiohttp's body size limit (1 MiB) answers 413 before any of this.
    """
    expected = secret.encode()

    async def take(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return web.Response(text="Unauthorized", status=401)
        body = await request.read()
        try:
            raw = json.loads(body)
            if not updates.is_update(raw):
                raise ValueError("not an update")
            update = Update.de_json(raw, bot)
        except Exception as exc:  # JSON, shape or PTB's parsing
            log.warning("webhook: refused a %d-byte body (%s)", len(body), exc)
            return web.Response(text="Bad Request", status=400)
        try:
            await asyncio.wait_for(handler.feed(update), WEBHOOK_DEADLINE)
        except StoreUnavailable as exc:
            log.warning("webhook: update %s not recorded (%s); 503", update.update_id, exc)
            return web.Response(text="Service Unavailable", status=503)
        except TimeoutError:
            log.warning("webhook: update %s not handled in time; 503", update.update_id)
            return web.Response(text="Service Unavailable", status=503)
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post(path, take)
    return app


async def _serve_webhook(
    settings: Settings, bot: Bot, handler: PtbUpdateHandler, stop: asyncio.Event
) -> None:
    assert settings.webhook_url and settings.webhook_secret
    path = webhook_path(settings.webhook_url)
    runner = web.AppRunner(
        webhook_app(handler, bot, settings.webhook_secret, path), access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    log.info("webhook server on %s:%s%s", settings.webhook_host, settings.webhook_port, path)
    try:
        await _retrying(
            "setWebhook",
            lambda: bot.set_webhook(
                settings.webhook_url,
                secret_token=settings.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            ),
        )
        await stop.wait()
    finally:
        await runner.cleanup()
