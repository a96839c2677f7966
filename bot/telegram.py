"""The aiogram 3 runtime: Telegram updates in, the core in the middle, the outbox out.

This module is the only place that knows Telegram's shapes. It turns an ``Update`` into one of
our typed events, hands it to the core, answers a pressed button at once, and has the outbox
deliver the replies the core queued. ``TelegramMessenger`` is the ``Messenger`` port over an
aiogram ``Bot``: it splits long texts, draws buttons and keyboards, sets command menus and maps
Telegram's errors onto ``DeliveryError``.

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
import dataclasses
import hmac
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, NoReturn
from urllib.parse import urlsplit

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
    InaccessibleMessage,
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

from bot.compose import Services, build_services
from bot.delivery import (
    DeliveryError,
    RenderedMenu,
    RenderedMessage,
    shorten_text,
    split_text,
)
from bot.notices import follow_notices
from bot.outbox import OutboxWorker
from bot.settings import PUBLIC_API, Settings
from campaign.db import is_unavailable
from handlers.core import Core, StoreUnavailable
from handlers.events import (
    ButtonPressed,
    ChatType,
    CommandReceived,
    ContactShared,
    Event,
    PhotoReceived,
    PollUpdated,
    Sender,
    TextReceived,
    Unsupported,
    UnsupportedReceived,
)
from reminders.jobs import Jobs
from reminders.scheduler import build_scheduler
from templates import DEFAULT_LOCALE, LOCALES, catalog, normalize_locale

log = logging.getLogger(__name__)

PLATFORM = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
TOAST_LIMIT = 200
POLL_QUESTION_LIMIT = 300
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "poll"]
#: commands for people not bound yet, and for group chats (SPEC: Chat)
UNBOUND_COMMANDS = ("start", "help", "lang")
GROUP_COMMANDS = ("bindgroup", "unbindgroup", "help")
#: group commands only the group's administrators may use: the adapter asks getChatMember
ADMIN_COMMANDS = frozenset({"bindgroup", "unbindgroup"})
ADMIN_STATUSES = frozenset({"creator", "administrator"})
#: our locale -> Telegram's language_code of a command menu
MENU_LANGUAGE = {"zh_CN": "zh", "en": "en"}

#: long-polling wait of one getUpdates call, in seconds
POLL_TIMEOUT = 25
#: backoff between attempts at an update the store could not record, and after failed polls
RETRY_FIRST = 0.5
RETRY_MAX = 10.0
#: a webhook request not handled within this many seconds gets 503 (Telegram gives up at 60)
WEBHOOK_DEADLINE = 50.0

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.DOTALL)


# -- updates -> events ----------------------------------------------------------------------------


def _chat_type(raw: str) -> ChatType | None:
    if raw == "private":
        return ChatType.PRIVATE
    if raw in ("group", "supergroup"):
        return ChatType.GROUP
    return None  # channels are not conversations


def _sender(message: Message | InaccessibleMessage | None, user: Any) -> Sender | None:
    if user is None or getattr(user, "is_bot", False):
        return None
    if message is None:
        # a button on an inline message: no chat, answer the person privately
        return Sender(
            platform=PLATFORM,
            user_id=str(user.id),
            chat_id=str(user.id),
            display_name=user.full_name,
            language=user.language_code,
        )
    chat_type = _chat_type(str(message.chat.type))
    if chat_type is None:
        return None
    return Sender(
        platform=PLATFORM,
        user_id=str(user.id),
        chat_id=str(message.chat.id),
        chat_type=chat_type,
        display_name=user.full_name,
        language=user.language_code,
        chat_title=message.chat.title or "",
    )


def message_to_event(
    message: Message, update_id: int | None = None, *, bot_username: str | None = None
) -> Event | None:
    """Return the event a message stands for, or None for what the bot does not handle.

    A ``/command@otherbot`` is addressed to another bot in the same group and ignored.
    """
    sender = _sender(message, message.from_user)
    if sender is None:
        return None
    uid = str(update_id) if update_id is not None else None
    if message.contact is not None:
        contact_user = message.contact.user_id
        return ContactShared(
            sender=sender,
            update_id=uid,
            phone=message.contact.phone_number,
            contact_user_id=str(contact_user) if contact_user else None,
        )
    if message.photo:
        return PhotoReceived(
            sender=sender,
            update_id=uid,
            file_id=message.photo[-1].file_id,
            caption=message.caption or "",
        )
    if message.text is None:
        kind = unsupported_kind(message)
        return UnsupportedReceived(sender=sender, update_id=uid, kind=kind) if kind else None
    match = _COMMAND.match(message.text.strip())
    if match is not None:
        name, addressee, args = match.groups()
        if addressee and bot_username and addressee.lower() != bot_username.lower():
            return None
        return CommandReceived(
            sender=sender, update_id=uid, command=name.lower(), args=(args or "").strip()
        )
    return TextReceived(sender=sender, update_id=uid, text=message.text)


#: Message attribute -> what the person is told the bot cannot read, first match wins
_UNSUPPORTED = (
    ("sticker", Unsupported.STICKER),
    ("voice", Unsupported.VOICE),
    ("audio", Unsupported.VOICE),
    ("video", Unsupported.VIDEO),
    ("video_note", Unsupported.VIDEO),
    ("animation", Unsupported.VIDEO),
    ("document", Unsupported.DOCUMENT),
    ("location", Unsupported.LOCATION),
    ("venue", Unsupported.LOCATION),
    ("poll", Unsupported.POLL),
    ("dice", Unsupported.OTHER),
    ("game", Unsupported.OTHER),
    ("story", Unsupported.OTHER),
)


def unsupported_kind(message: Message) -> Unsupported | None:
    """Return the kind of content the bot cannot read, or None for a service message.

    Service messages (someone joined, a title changed) are nobody's question.
    """
    for attribute, kind in _UNSUPPORTED:
        if getattr(message, attribute, None) is not None:
            return kind
    return None


def edited_to_event(message: Message, update_id: int | None = None) -> Event | None:
    """Return the event of an edited message: the bot says it reads only new messages."""
    sender = _sender(message, message.from_user)
    if sender is None:
        return None
    uid = str(update_id) if update_id is not None else None
    return UnsupportedReceived(sender=sender, update_id=uid, kind=Unsupported.EDITED)


def callback_to_event(query: CallbackQuery, update_id: int | None = None) -> Event | None:
    """Return the ButtonPressed event of a callback query."""
    # a card older than 48 hours is "inaccessible" but still names its chat
    sender = _sender(query.message, query.from_user)
    if sender is None:
        return None
    return ButtonPressed(
        sender=sender,
        update_id=str(update_id) if update_id is not None else None,
        data=query.data or "",
        message_id=str(query.message.message_id) if query.message is not None else None,
        callback_id=query.id,
    )


def update_to_event(update: Update, *, bot_username: str | None = None) -> Event | None:
    """Return the event of a whole update (a message or a pressed button), if it has one."""
    if update.message is not None:
        return message_to_event(update.message, update.update_id, bot_username=bot_username)
    if update.callback_query is not None:
        return callback_to_event(update.callback_query, update.update_id)
    if update.edited_message is not None:
        return edited_to_event(update.edited_message, update.update_id)
    if update.poll is not None:
        return poll_to_event(update.poll, update.update_id)
    return None


def poll_to_event(poll: Poll, update_id: int | None = None) -> PollUpdated:
    """Return a poll update (totals changed, or closed) as an event; nobody sent it."""
    return PollUpdated(
        sender=Sender(platform=PLATFORM, user_id="poll", chat_id="poll"),
        update_id=str(update_id) if update_id is not None else None,
        poll_id=poll.id,
        counts=tuple(o.voter_count for o in poll.options),
        closed=poll.is_closed,
    )


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
        inline = _inline_markup(message)
        keyboard = _keyboard_markup(message)
        attachment = message.attachment
        text = message.text
        if attachment and len(text) <= CAPTION_LIMIT:
            sent = await self._send_file(chat, attachment, text, inline or keyboard)
            return str(sent.message_id)
        if inline and len(text) > TEXT_LIMIT:
            # a card: its buttons and its later edits belong to one message
            log.warning("a message with buttons was %d characters; shortened", len(text))
            text = shorten_text(text, TEXT_LIMIT)
        parts = split_text(text, TEXT_LIMIT) if text else []
        last_id: str | None = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last and not attachment:
                # one reply_markup per message: inline buttons win; a keyboard then rides on
                # the first part (or is dropped when there is only one)
                markup = inline or (keyboard if len(parts) == 1 else None)
            else:
                markup = keyboard if i == 0 else None
            sent = await self.bot.send_message(chat, part, reply_markup=markup)
            last_id = str(sent.message_id)
        if attachment:
            sent = await self._send_file(chat, attachment, None, inline)
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
                if "already closed" in exc.message.lower():
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


def _menu(commands: tuple[str, ...], locale: str) -> list[BotCommand]:
    cat = catalog()
    return _bot_commands([(c, cat.render(f"command.{c}", locale)) for c in commands])


async def set_default_menus(bot: Bot) -> None:
    """Set the menus of people not bound yet and of group chats; failures are only logged."""
    calls: list[tuple[list[BotCommand], Any, str | None]] = [
        (_menu(UNBOUND_COMMANDS, DEFAULT_LOCALE), BotCommandScopeDefault(), None),
        (_menu(GROUP_COMMANDS, DEFAULT_LOCALE), BotCommandScopeAllGroupChats(), None),
    ]
    for locale in LOCALES:
        code = MENU_LANGUAGE.get(locale)
        if code is None:
            continue
        calls.append((_menu(UNBOUND_COMMANDS, locale), BotCommandScopeDefault(), code))
        calls.append((_menu(GROUP_COMMANDS, locale), BotCommandScopeAllGroupChats(), code))
    for commands, scope, code in calls:
        try:
            await bot.set_my_commands(commands, scope=scope, language_code=code)
        except Exception as exc:  # a menu is a nicety: never fail start-up over it
            log.warning("setMyCommands (%s, %s) failed: %r", scope.type, code or "-", exc)


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
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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
        query = update.callback_query
        user = query.from_user if query else (update.message.from_user if update.message else None)
        locale = normalize_locale(user.language_code if user else None)
        apology = catalog().render("error.unexpected", locale)
        if query is not None:
            # answered only if the core finished; a second answer is refused and ignored
            await _answer(bot, query.id, apology)
        elif update.message is not None:
            with suppress(Exception):
                await bot.send_message(update.message.chat.id, apology)
        return True

    def _deliver(self, chat_id: str, ids: tuple[int, ...]) -> None:
        """Deliver rows now, after whatever is still going out to the same chat."""
        if not ids:
            return
        before = self._chains.get(chat_id)
        task = asyncio.create_task(self._deliver_after(before, ids))
        self._chains[chat_id] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._chains.get(chat_id) is t:
                del self._chains[chat_id]

        task.add_done_callback(done)

    async def _deliver_after(
        self, before: asyncio.Task[None] | None, ids: tuple[int, ...]
    ) -> None:
        if before is not None:
            with suppress(Exception):
                await asyncio.shield(before)
        try:
            await self.worker.deliver_ids(ids)
        except Exception as exc:  # the worker's loop picks the rows up again
            if is_unavailable(exc):
                log.warning("delivery of %s waits: the store is unavailable", ids)
            else:
                log.exception("delivery of %s failed", ids)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) until the replies handed out so far are sent."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


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
    s = event.sender
    if not (
        isinstance(event, CommandReceived)
        and event.command in ADMIN_COMMANDS
        and s.chat_type is ChatType.GROUP
    ):
        return event
    member = await bot.get_chat_member(_chat(s.chat_id), int(s.user_id))
    status = getattr(member.status, "value", member.status)
    admin = status in ADMIN_STATUSES
    return dataclasses.replace(event, sender=dataclasses.replace(s, is_chat_admin=admin))


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


def webhook_path(url: str) -> str:
    """Return the path part of WEBHOOK_URL, where the webhook server listens."""
    return urlsplit(url).path or "/"


def check_webhook_settings(settings: Settings) -> None:
    """Refuse webhook mode without a secret: anyone could post updates otherwise.

    Raises:
        ValueError: WEBHOOK_URL is missing or WEBHOOK_SECRET is unset.
    """
    if not settings.webhook_url:
        raise ValueError("webhook mode needs WEBHOOK_URL")
    if not urlsplit(settings.webhook_url).scheme.startswith("http"):
        raise ValueError("WEBHOOK_URL must be an http(s) URL")
    if not settings.webhook_secret:
        raise ValueError(
            "WEBHOOK_SECRET is required in webhook mode (1-256 characters of A-Z a-z 0-9 _ -)"
        )


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


async def _retrying(what: str, call: Callable[[], Awaitable[Any]], attempts: int = 5) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except TelegramUnauthorizedError:
            raise
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("%s failed (%r); retrying", what, exc)
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
    return None


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
    services: Services | None = None
    try:
        try:
            me = await _retrying("getMe", bot.me)
        except TelegramUnauthorizedError as exc:
            raise StartupError("the Bot API refused BOT_TOKEN (401 Unauthorized)") from exc
        username = settings.bot_username or me.username
        services = await build_services(settings, bot_username=username)
        worker = services.worker({PLATFORM: TelegramMessenger(bot)})
        handler = UpdateHandler(services.core, worker, bot_username=username)
        dispatcher = build_dispatcher(handler)
        await set_default_menus(bot)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, _on_signal, sig, stop)
        worker_stop = asyncio.Event()
        worker_task = asyncio.create_task(worker.run(worker_stop))
        calendar = None
        notices_task = None
        if scheduler:
            # the senders' notice messages, edited in place as delivery goes (bot/notices.py)
            notices_task = asyncio.create_task(
                follow_notices(services.store, worker, worker_stop, every=settings.notice_every)
            )
            # The leader runs the campaign calendar; what it queues is delivered by the worker.
            calendar = build_scheduler(
                Jobs(services.store, services.core.codec, documents=services.documents),
                after_tick=worker.kick,
            )
            calendar.start()
        try:
            if use_webhook:
                await _serve_webhook(settings, bot, dispatcher, stop)
            else:
                await _serve_polling(bot, dispatcher, stop)
        finally:
            log.info("stopping: sending what is left")
            if calendar is not None:
                calendar.shutdown(wait=False)
            await handler.drain()
            worker_stop.set()
            try:
                await asyncio.wait_for(worker_task, timeout=10)
            except TimeoutError:
                worker_task.cancel()
            if notices_task is not None:
                with suppress(Exception):
                    await asyncio.wait_for(notices_task, timeout=5)
            for sig in (signal.SIGINT, signal.SIGTERM):
                with suppress(NotImplementedError, ValueError):
                    loop.remove_signal_handler(sig)
    finally:
        await bot.session.close()
        if services is not None:
            await services.close()
    log.info("stopped")


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("received %s, shutting down", sig.name)
    stop.set()


async def _serve_polling(bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    # getUpdates is refused while a webhook is set; pending updates are kept
    await _retrying("deleteWebhook", lambda: bot.delete_webhook(drop_pending_updates=False))
    await Poller(bot, dispatcher, stop).run()


class Poller:
    """Long polling that confirms an update only once the core has recorded it.

    aiogram's own loop moves the offset past every update it has tried; this one handles updates
    one after another and moves the offset past an update only when it was handled. An update the
    store could not record is tried again, with backoff, before any later one.
    """

    def __init__(self, bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.stop = stop
        self.offset: int | None = None

    async def run(self) -> None:
        """Poll until ``stop`` is set, then confirm what was handled."""
        me = await self.bot.me()
        log.info("polling for updates as @%s", me.username)
        delay = RETRY_FIRST
        timeout = int((self.bot.session.timeout or 60) + POLL_TIMEOUT)
        while not self.stop.is_set():
            try:
                updates = await self._unless_stopped(
                    self.bot.get_updates(
                        offset=self.offset,
                        timeout=POLL_TIMEOUT,
                        allowed_updates=ALLOWED_UPDATES,
                        request_timeout=timeout,
                    )
                )
            except _Stopped:
                break
            except Exception as exc:
                log.error(
                    "getUpdates failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay
                )
                if await self._sleep(delay):
                    break
                delay = min(RETRY_MAX, delay * 2)
                continue
            delay = RETRY_FIRST
            for update in updates:
                if not await self._feed(update):
                    break
                self.offset = update.update_id + 1
        await self._confirm()

    async def _feed(self, update: Update) -> bool:
        """Handle one update until the store records it; False if stopped before it could."""
        delay = RETRY_FIRST
        while True:
            try:
                await self.dispatcher.feed_update(self.bot, update)
                return True
            except StoreUnavailable as exc:
                log.warning(
                    "update %s not recorded (%s); trying again in %.1fs",
                    update.update_id,
                    exc,
                    delay,
                )
            except Exception:  # the error handler answers everything else; never stall on it
                log.exception("update %s failed", update.update_id)
                return True
            if await self._sleep(delay):
                return False
            delay = min(RETRY_MAX, delay * 2)

    async def _confirm(self) -> None:
        """Tell the Bot API which updates were handled, so a restart is not sent them again."""
        if self.offset is None:
            return
        try:
            await asyncio.wait_for(
                self.bot.get_updates(offset=self.offset, limit=1, timeout=0), timeout=5
            )
        except Exception as exc:  # the next start recognises them by their ids anyway
            log.info("could not confirm the last updates: %r", exc)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; return whether ``stop`` was set."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        return self.stop.is_set()

    async def _unless_stopped(self, call: Awaitable[Any]) -> Any:
        task = asyncio.ensure_future(call)
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
            raise _Stopped
        return task.result()


class _Stopped(Exception):
    """``stop`` was set while waiting."""


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
