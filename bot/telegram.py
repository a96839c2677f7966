"""The aiogram 3 runtime: Telegram updates in, the core in the middle, the outbox out.

It turns an ``Update`` into one of our typed events by the table it shares with the
python-telegram-bot runtime (``bot/updates.py``, on the update's raw JSON), hands it to the
core, answers a pressed button at once, and has the outbox deliver the replies the core queued.
``TelegramMessenger`` is the ``Messenger`` port over an aiogram ``Bot``: it splits long texts,
draws buttons and keyboards, sets command menus and maps Telegram's errors onto
``DeliveryError``.

Updates are never lost: the core commits an update before polling confirms it (updates are
handled one after another, so the offset moves only past handled ones) and before a webhook
request is answered; a redelivered update is recognised by its id in the database. When the
store cannot record an update (``StoreUnavailable``: SQLite locked, PostgreSQL down), nobody is
told anything: polling keeps its offset before the update and retries it with backoff, and the
webhook answers 503 so that Telegram sends it again. Sending is not on that path: replies go out
in the background, in order per chat.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, NoReturn

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    BufferedInputFile,
    CallbackQuery,
    ErrorEvent,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    Poll,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot import updates
from bot.delivery import (
    DeliveryError,
    RenderedMenu,
    RenderedMessage,
    shorten_text,
)
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
from handlers.events import (
    Event,
    PollUpdated,
    Unsupported,
)
from templates import DEFAULT_LOCALE, catalog

log = logging.getLogger(__name__)


# -- updates -> events (the table is bot/updates.py, shared with the PTB runtime) ---------------


def raw_of(obj: Any) -> dict[str, Any]:
    """Return an aiogram object as the Bot API JSON it was made from (``from``, not from_user)."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


def message_to_event(
    message: Message, update_id: int | None = None, *, bot_username: str | None = None
) -> Event | None:
    """Return the event a message stands for, or None for what the bot does not handle."""
    return updates.message_event(raw_of(message), update_id, bot_username=bot_username)


def unsupported_kind(message: Message) -> Unsupported | None:
    """Return the kind of content the bot cannot read, or None for a service message."""
    return updates.unsupported_kind(raw_of(message))


def edited_to_event(message: Message, update_id: int | None = None) -> Event | None:
    """Return the event of an edited message: the bot says it reads only new messages."""
    return updates.edited_event(raw_of(message), update_id)


def callback_to_event(query: CallbackQuery, update_id: int | None = None) -> Event | None:
    """Return the ButtonPressed event of a callback query."""
    return updates.callback_event(raw_of(query), update_id)


def update_to_event(update: Update, *, bot_username: str | None = None) -> Event | None:
    """Return the event of a whole update (a message or a pressed button), if it has one."""
    return updates.update_event(raw_of(update), bot_username=bot_username)


def poll_to_event(poll: Poll, update_id: int | None = None) -> PollUpdated:
    """Return a poll update (totals changed, or closed) as an event; nobody sent it."""
    return updates.poll_event(raw_of(poll), update_id)


# -- the Messenger port -------------------------------------------------------------------------


def _chat(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # @channelusername


def _inline_markup(message: RenderedMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    rows = []
    for row in message.buttons:
        rows.append(
            [
                InlineKeyboardButton(text=b.text, url=b.url)
                if b.url
                else InlineKeyboardButton(text=b.text, callback_data=b.data or "-")
                for b in row
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _keyboard_markup(message: RenderedMessage) -> ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    if message.keyboard == "request_contact":
        label = message.keyboard_label or catalog().render("bind.share_button", DEFAULT_LOCALE)
        return ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=label, request_contact=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if message.keyboard == "remove":
        return ReplyKeyboardRemove()
    if message.keyboard == "menu" and message.keyboard_rows:
        return ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=t) for t in row] for row in message.keyboard_rows],
            resize_keyboard=True,
            is_persistent=True,
        )
    return None


def delivery_error(exc: TelegramAPIError) -> DeliveryError:
    """Return the DeliveryError that tells the outbox what Telegram's answer means."""
    text = f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, TelegramRetryAfter):
        return DeliveryError(text, retry_after=float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return DeliveryError(text, blocked=True)
    if isinstance(
        exc,
        TelegramBadRequest | TelegramNotFound | TelegramMigrateToChat | TelegramEntityTooLarge,
    ):
        return DeliveryError(text, permanent=True)
    return DeliveryError(text)  # server errors, conflicts, a bad token: try again later


def _raise_for(exc: TelegramAPIError) -> NoReturn:
    """Re-raise a network fault as it is (the worker retries it), anything else translated."""
    if isinstance(exc, TelegramNetworkError) and not isinstance(exc, TelegramEntityTooLarge):
        raise exc
    raise delivery_error(exc) from exc


class TelegramMessenger:
    """Send, edit and set menus through an aiogram ``Bot`` (the Messenger port)."""

    platform = PLATFORM

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: str, message: RenderedMessage) -> str | None:
        """Send a message, split at 4096 characters; one with buttons is never split."""
        try:
            return await self._send(_chat(chat_id), message)
        except TelegramAPIError as exc:
            log.info("send to %s failed: %s", chat_id, exc.message)
            _raise_for(exc)

    async def _send(self, chat: int | str, message: RenderedMessage) -> str | None:
        if message.poll is not None:
            sent = await self.bot.send_poll(
                chat,
                question=message.text[:POLL_QUESTION_LIMIT],
                options=list(message.poll.options),
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
        source: Any = attachment.get("file_id")
        if attachment.get("data") is not None:
            source = BufferedInputFile(attachment["data"], filename=attachment.get("filename"))
        elif not source:
            source = FSInputFile(attachment["path"], filename=attachment.get("filename"))
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
            except TelegramBadRequest as exc:
                if "already" in exc.message.lower() and "closed" in exc.message.lower():
                    return
                raise delivery_error(exc) from exc
            except TelegramAPIError as exc:
                _raise_for(exc)
            return
        text = shorten_text(message.text, TEXT_LIMIT) if message.text else "-"
        try:
            await self.bot.edit_message_text(
                text=text,
                chat_id=_chat(chat_id),
                message_id=int(message.edit_message_id),
                reply_markup=_inline_markup(message),
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message.lower():
                return
            raise delivery_error(exc) from exc
        except TelegramAPIError as exc:
            _raise_for(exc)

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        """Show one chat its command menu, in the language the person chose.

        A per-chat menu is shown whatever the app's language, so it carries no language code.
        """
        try:
            await self.bot.set_my_commands(
                _bot_commands(menu.commands), scope=BotCommandScopeChat(chat_id=_chat(chat_id))
            )
        except TelegramAPIError as exc:
            _raise_for(exc)


def _bot_commands(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(command=c[:32], description=(d or c)[:256]) for c, d in pairs]


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


# -- handling updates ---------------------------------------------------------------------------


class UpdateHandler:
    """Glue between aiogram and the core: one event in, a button answered, replies sent.

    Args:
        core: the platform-neutral core.
        worker: the outbox worker that delivers what the core queued.
        bot_username: our @username, to ignore commands addressed to other bots.
    """

    def __init__(
        self, core: Core, worker: OutboxWorker, *, bot_username: str | None = None
    ) -> None:
        self.core = core
        self.worker = worker
        self.bot_username = bot_username
        self.chains = updates.DeliveryChains(worker)

    async def on_message(self, message: Message, bot: Bot, event_update: Update) -> None:
        """Handle a message."""
        event = message_to_event(message, event_update.update_id, bot_username=self.bot_username)
        if event is not None:
            await self._handle(await with_chat_admin(bot, event))

    async def on_edited(self, message: Message, event_update: Update) -> None:
        """Answer an edited message: only new messages are read."""
        event = edited_to_event(message, event_update.update_id)
        if event is not None:
            await self._handle(event)

    async def on_callback(self, query: CallbackQuery, bot: Bot, event_update: Update) -> None:
        """Handle a pressed button and always answer it, with the core's toast if any."""
        event = callback_to_event(query, event_update.update_id)
        if event is None:
            await _answer(bot, query.id, None)
            return
        handled = await self.core.handle(event)
        await _answer(bot, query.id, handled.toast)
        self._deliver(event.sender.chat_id, handled.outbox_ids)

    async def on_poll(self, poll: Poll, event_update: Update) -> None:
        """Handle a poll's new totals (the public's votes, read when the poll is closed)."""
        await self._handle(poll_to_event(poll, event_update.update_id))

    async def _handle(self, event: Event) -> None:
        handled = await self.core.handle(event)
        self._deliver(event.sender.chat_id, handled.outbox_ids)

    async def on_error(self, error: ErrorEvent, bot: Bot) -> bool:
        """Log an unexpected failure and give the person a plain apology, never its text.

        An update the store could not record is no failure: it goes back to the runtime, which
        has it delivered again, and the person is told nothing meanwhile.
        """
        if isinstance(error.exception, StoreUnavailable):
            raise error.exception
        update = error.update
        log.error(
            "update %s failed",
            update.update_id,
            exc_info=(type(error.exception), error.exception, error.exception.__traceback__),
        )
        target = updates.apology_target(raw_of(update))
        if target is None:
            return True
        apology = updates.apology(target.language)
        if target.callback_id is not None:
            # answered only if the core finished; a second answer is refused and ignored
            await _answer(bot, target.callback_id, apology)
        elif target.chat_id is not None:
            with suppress(Exception):
                await bot.send_message(target.chat_id, apology)
        return True

    def _deliver(self, chat_id: str, ids: tuple[int, ...]) -> None:
        """Deliver rows now, after whatever is still going out to the same chat."""
        self.chains.deliver(chat_id, ids)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) until the replies handed out so far are sent."""
        await self.chains.drain(timeout)


async def _answer(bot: Bot, callback_id: str, text: str | None) -> None:
    try:
        await bot.answer_callback_query(callback_id, text=text[:TOAST_LIMIT] if text else None)
    except TelegramAPIError as exc:
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


def build_dispatcher(handler: UpdateHandler) -> Dispatcher:
    """Return a new dispatcher whose router sends messages and buttons to ``handler``."""
    router = Router(name="pledgebot")
    router.message.register(handler.on_message)
    router.edited_message.register(handler.on_edited)
    router.callback_query.register(handler.on_callback)
    router.poll.register(handler.on_poll)
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    dispatcher.errors.register(handler.on_error)
    return dispatcher


# -- running --------------------------------------------------------------------------------------


class StartupError(RuntimeError):
    """The bot cannot start with these settings (the message says why, for the operator)."""


def make_bot(settings: Settings) -> Bot:
    """Return a Bot for the settings' token, talking to TELEGRAM_API_BASE."""
    token = settings.require_token()
    base = (settings.telegram_api_base or PUBLIC_API).rstrip("/")
    if base == PUBLIC_API:
        return Bot(token)
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))


class _SecretCheckingHandler(SimpleRequestHandler):
    """aiogram's webhook handler; handles each update before answering, so none is lost.

    Without the secret: 401. A body that is not an update: 400 and one log line. An update the
    store could not record (or not within ``WEBHOOK_DEADLINE``): 503, so Telegram sends it again.
    aiohttp's body size limit (1 MiB) answers 413 before any of this.
    """

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        if not self.secret_token:
            return False
        return hmac.compare_digest(telegram_secret_token.encode(), self.secret_token.encode())

    async def handle(self, request: web.Request) -> web.Response:
        """Hand one update to the core."""
        bot = self.bot
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        body = await request.read()
        try:
            raw = bot.session.json_loads(body)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            update = Update.model_validate(raw, context={"bot": bot})
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            reason = "not an update" if isinstance(exc, ValidationError) else "not JSON"
            log.warning("webhook: refused a %d-byte body (%s)", len(body), reason)
            return web.Response(text="Bad Request", status=400)
        try:
            result = await asyncio.wait_for(
                self.dispatcher.feed_update(bot, update, **self.data), WEBHOOK_DEADLINE
            )
        except StoreUnavailable as exc:
            log.warning("webhook: update %s not recorded (%s); 503", update.update_id, exc)
            return web.Response(text="Service Unavailable", status=503)
        except TimeoutError:
            log.warning("webhook: update %s not handled in time; 503", update.update_id)
            return web.Response(text="Service Unavailable", status=503)
        if not isinstance(result, TelegramMethod):
            result = None
        return web.Response(body=self._build_response_writer(bot=bot, result=result))


async def _retrying(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
    return await retrying(what, call, fatal=TelegramUnauthorizedError)


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
    bot = make_bot(settings)
    try:
        try:
            me = await _retrying("getMe", bot.me)
        except TelegramUnauthorizedError as exc:
            raise StartupError("the Bot API refused BOT_TOKEN (401 Unauthorized)") from exc
        username = settings.bot_username or me.username
        await set_default_menus(bot)
        dispatchers: list[Dispatcher] = []

        def make_handler(core: Core, worker: OutboxWorker) -> UpdateHandler:
            handler = UpdateHandler(core, worker, bot_username=username)
            dispatchers.append(build_dispatcher(handler))
            return handler

        async def serve(handler: UpdateHandler, stop: asyncio.Event) -> None:
            if use_webhook:
                await _serve_webhook(settings, bot, dispatchers[0], stop)
            else:
                await _serve_polling(bot, dispatchers[0], stop)

        await serve_core(
            settings,
            bot_username=username,
            messenger=TelegramMessenger(bot),
            make_handler=make_handler,
            serve=serve,
            scheduler=scheduler,
        )
    finally:
        await bot.session.close()
    log.info("stopped")


async def _serve_polling(bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    # getUpdates is refused while a webhook is set; pending updates are kept
    await _retrying("deleteWebhook", lambda: bot.delete_webhook(drop_pending_updates=False))
    await Poller(bot, dispatcher, stop).run()


class Poller(UpdatePoller):
    """Long polling through aiogram that confirms an update only once the core recorded it."""

    library = "aiogram"

    def __init__(self, bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
        super().__init__(stop)
        self.bot = bot
        self.dispatcher = dispatcher

    async def username(self) -> str:
        """Return the bot's @name."""
        return (await self.bot.me()).username or ""

    async def fetch(self) -> list[Update]:
        """Return the next batch of updates after the offset (a long poll)."""
        return await self.bot.get_updates(
            offset=self.offset,
            timeout=POLL_TIMEOUT,
            allowed_updates=ALLOWED_UPDATES,
            request_timeout=int((self.bot.session.timeout or 60) + POLL_TIMEOUT),
        )

    async def handle(self, update: Update) -> None:
        """Hand one update to the core."""
        await self.dispatcher.feed_update(self.bot, update)

    async def confirm(self) -> None:
        """Confirm the offset to the Bot API."""
        await self.bot.get_updates(offset=self.offset, limit=1, timeout=0)


async def _serve_webhook(
    settings: Settings, bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event
) -> None:
    assert settings.webhook_url and settings.webhook_secret
    requests = _SecretCheckingHandler(
        dispatcher, bot, handle_in_background=False, secret_token=settings.webhook_secret
    )
    app = web.Application()
    # registered by hand: aiogram's register() would close the bot's session on shutdown,
    # before the last replies are out
    app.router.add_post(webhook_path(settings.webhook_url), requests.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    log.info(
        "webhook server on %s:%s%s",
        settings.webhook_host,
        settings.webhook_port,
        webhook_path(settings.webhook_url),
    )
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
