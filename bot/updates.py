"""What each Telegram update becomes: one table, library-free, shared by every Telegram runtime.

Both Telegram runtimes (aiogram in ``bot/telegram.py``, python-telegram-bot in
``bot/telegram_ptb.py``) turn an update into its raw Bot API JSON (a dict as Telegram sends it:
``from``, not ``from_user``; dates in seconds) and ask this module what it stands for, so the two
cannot drift. ``UPDATE_KINDS`` is the table: update field -> the function that maps it; the
runtimes ask Telegram for exactly these kinds (``ALLOWED_UPDATES``).

Also here, because both runtimes need them alike: which events need the group-admin check
(``needs_admin_check`` / ``with_admin_status``), who gets the apology for an update that failed
(``apology_target``), and the per-chat ordering of deliveries after an update
(``DeliveryChains``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.delivery import shorten_text, split_text
from campaign.db import is_unavailable
from handlers.core import StoreUnavailable
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
from templates import DEFAULT_LOCALE, LOCALES, catalog, normalize_locale

if TYPE_CHECKING:
    from bot.outbox import OutboxWorker
    from bot.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
TOAST_LIMIT = 200
POLL_QUESTION_LIMIT = 300
#: commands for people not bound yet, and for group chats (SPEC: Chat)
UNBOUND_COMMANDS = ("start", "help", "lang")
GROUP_COMMANDS = ("bindgroup", "unbindgroup", "help")
#: group commands only the group's administrators may use: the runtime asks getChatMember
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

Raw = Mapping[str, Any]


def _uid(update_id: Any) -> str | None:
    return str(update_id) if update_id is not None else None


def _chat_type(raw: str) -> ChatType | None:
    if raw == "private":
        return ChatType.PRIVATE
    if raw in ("group", "supergroup"):
        return ChatType.GROUP
    return None  # channels are not conversations


def full_name(user: Raw) -> str:
    """Return a person's name as Telegram libraries show it: first and last name."""
    first = user.get("first_name") or ""
    last = user.get("last_name")
    return f"{first} {last}" if last else first


def sender_of(message: Raw | None, user: Raw | None) -> Sender | None:
    """Return who sent a message (or pressed a button under it); None for bots and channels."""
    if not user or user.get("is_bot"):
        return None
    if message is None:
        # a button on an inline message: no chat, answer the person privately
        return Sender(
            platform=PLATFORM,
            user_id=str(user["id"]),
            chat_id=str(user["id"]),
            display_name=full_name(user),
            language=user.get("language_code"),
        )
    chat = message.get("chat") or {}
    chat_type = _chat_type(str(chat.get("type")))
    if chat_type is None:
        return None
    return Sender(
        platform=PLATFORM,
        user_id=str(user["id"]),
        chat_id=str(chat["id"]),
        chat_type=chat_type,
        display_name=full_name(user),
        language=user.get("language_code"),
        chat_title=chat.get("title") or "",
    )


#: message field -> what the person is told the bot cannot read, first match wins
UNSUPPORTED: tuple[tuple[str, Unsupported], ...] = (
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


def unsupported_kind(message: Raw) -> Unsupported | None:
    """Return the kind of content the bot cannot read, or None for a service message.

    Service messages (someone joined, a title changed) are nobody's question.
    """
    for field, kind in UNSUPPORTED:
        if message.get(field) is not None:
            return kind
    return None


def message_event(
    message: Raw, update_id: Any = None, *, bot_username: str | None = None
) -> Event | None:
    """Return the event a message stands for, or None for what the bot does not handle.

    A ``/command@otherbot`` is addressed to another bot in the same group and ignored.
    """
    sender = sender_of(message, message.get("from"))
    if sender is None:
        return None
    uid = _uid(update_id)
    contact = message.get("contact")
    if contact is not None:
        contact_user = contact.get("user_id")
        return ContactShared(
            sender=sender,
            update_id=uid,
            phone=contact.get("phone_number") or "",
            contact_user_id=str(contact_user) if contact_user else None,
        )
    photo = message.get("photo")
    if photo:
        return PhotoReceived(
            sender=sender,
            update_id=uid,
            file_id=photo[-1]["file_id"],
            caption=message.get("caption") or "",
        )
    text = message.get("text")
    if text is None:
        kind = unsupported_kind(message)
        if kind is None:
            return None
        document = message.get("document") if kind is Unsupported.DOCUMENT else None
        if document:
            return UnsupportedReceived(
                sender=sender,
                update_id=uid,
                kind=kind,
                file_id=document.get("file_id"),
                file_name=document.get("file_name") or "",
                caption=message.get("caption") or "",
            )
        return UnsupportedReceived(sender=sender, update_id=uid, kind=kind)
    match = _COMMAND.match(text.strip())
    if match is not None:
        name, addressee, args = match.groups()
        if addressee and bot_username and addressee.lower() != bot_username.lower():
            return None
        return CommandReceived(
            sender=sender, update_id=uid, command=name.lower(), args=(args or "").strip()
        )
    return TextReceived(sender=sender, update_id=uid, text=text)


def edited_event(message: Raw, update_id: Any = None, **_: Any) -> Event | None:
    """Return the event of an edited message: the bot says it reads only new messages."""
    sender = sender_of(message, message.get("from"))
    if sender is None:
        return None
    return UnsupportedReceived(sender=sender, update_id=_uid(update_id), kind=Unsupported.EDITED)


def callback_event(query: Raw, update_id: Any = None, **_: Any) -> Event | None:
    """Return the ButtonPressed event of a callback query."""
    # a card older than 48 hours is "inaccessible" but still names its chat
    message = query.get("message")
    sender = sender_of(message, query.get("from"))
    if sender is None:
        return None
    return ButtonPressed(
        sender=sender,
        update_id=_uid(update_id),
        data=query.get("data") or "",
        message_id=str(message["message_id"]) if message is not None else None,
        callback_id=str(query["id"]),
    )


def poll_event(poll: Raw, update_id: Any = None, **_: Any) -> PollUpdated:
    """Return a poll update (totals changed, or closed) as an event; nobody sent it."""
    return PollUpdated(
        sender=Sender(platform=PLATFORM, user_id="poll", chat_id="poll"),
        update_id=_uid(update_id),
        poll_id=str(poll["id"]),
        counts=tuple(int(o.get("voter_count") or 0) for o in poll.get("options") or ()),
        closed=bool(poll.get("is_closed")),
    )


#: THE table: update field -> its mapping, in the order they are looked for
UPDATE_KINDS: dict[str, Callable[..., Event | None]] = {
    "message": message_event,
    "callback_query": callback_event,
    "edited_message": edited_event,
    "poll": poll_event,
}
#: what the runtimes ask Telegram for (getUpdates / setWebhook)
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "poll"]
assert set(ALLOWED_UPDATES) == set(UPDATE_KINDS)


def update_event(raw: Raw, *, bot_username: str | None = None) -> Event | None:
    """Return the event of a whole raw update (Bot API JSON), if it has one."""
    for field, mapping in UPDATE_KINDS.items():
        part = raw.get(field)
        if part is not None:
            return mapping(part, raw.get("update_id"), bot_username=bot_username)
    return None


def is_update(raw: Any) -> bool:
    """Say whether a decoded webhook body looks like an update (a JSON object with its id)."""
    return (
        isinstance(raw, dict)
        and isinstance(raw.get("update_id"), int)
        and not isinstance(raw.get("update_id"), bool)
        and all(raw.get(f) is None or isinstance(raw.get(f), dict) for f in UPDATE_KINDS)
    )


def needs_admin_check(event: Event) -> bool:
    """Say whether the runtime must ask whether the sender administers the group."""
    return (
        isinstance(event, CommandReceived)
        and event.command in ADMIN_COMMANDS
        and event.sender.chat_type is ChatType.GROUP
    )


def with_admin_status(event: Event, status: Any) -> Event:
    """Return the event with ``Sender.is_chat_admin`` set from a getChatMember status."""
    status = getattr(status, "value", status)
    admin = status in ADMIN_STATUSES
    sender = dataclasses.replace(event.sender, is_chat_admin=admin)
    return dataclasses.replace(event, sender=sender)


@dataclasses.dataclass(frozen=True)
class ApologyTarget:
    """Where the plain apology for a failed update goes: a toast, or a message to a chat."""

    language: str | None
    callback_id: str | None = None
    chat_id: int | str | None = None


def apology_target(raw: Raw) -> ApologyTarget | None:
    """Return whom to apologise to for an update that failed, or None (polls, service)."""
    query = raw.get("callback_query")
    if query is not None:
        user = query.get("from") or {}
        return ApologyTarget(user.get("language_code"), callback_id=str(query["id"]))
    message = raw.get("message")
    if message is not None:
        user = message.get("from") or {}
        return ApologyTarget(user.get("language_code"), chat_id=(message.get("chat") or {})["id"])
    return None


def command_pairs(commands: tuple[str, ...], locale: str) -> list[tuple[str, str]]:
    """Return (command, description) pairs of a menu, in ``locale``, cut to Telegram's sizes."""
    cat = catalog()
    return [(c[:32], (cat.render(f"command.{c}", locale) or c)[:256]) for c in commands]


def default_menus() -> list[tuple[list[tuple[str, str]], str, str | None]]:
    """Return the menus of people not bound yet and of group chats.

    Each is (pairs, scope, language code): scope ``default`` or ``all_group_chats``; the menus
    without a code are the fallback in the default language.
    """
    plan = [
        (command_pairs(UNBOUND_COMMANDS, DEFAULT_LOCALE), "default", None),
        (command_pairs(GROUP_COMMANDS, DEFAULT_LOCALE), "all_group_chats", None),
    ]
    for locale in LOCALES:
        code = MENU_LANGUAGE.get(locale)
        if code is None:
            continue
        plan.append((command_pairs(UNBOUND_COMMANDS, locale), "default", code))
        plan.append((command_pairs(GROUP_COMMANDS, locale), "all_group_chats", code))
    return plan


def apology(language: str | None) -> str:
    """Return the plain apology for an update that failed, in the sender's language."""
    return catalog().render("error.unexpected", normalize_locale(language))


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


class DeliveryChains:
    """Deliver the rows an update queued at once, after whatever still goes to the same chat."""

    def __init__(self, worker: OutboxWorker) -> None:
        self.worker = worker
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def deliver(self, chat_id: str, ids: tuple[int, ...]) -> None:
        """Deliver rows now, after whatever is still going out to the same chat."""
        if not ids:
            return
        before = self._chains.get(chat_id)
        task = asyncio.create_task(self._after(before, ids))
        self._chains[chat_id] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._chains.get(chat_id) is t:
                del self._chains[chat_id]

        task.add_done_callback(done)

    async def _after(self, before: asyncio.Task[None] | None, ids: tuple[int, ...]) -> None:
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
        """Wait (up to ``timeout`` seconds) until the deliveries handed out so far are done."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


class Stopped(Exception):
    """``stop`` was set while waiting."""


class UpdatePoller:
    """Long polling that confirms an update only once the core has recorded it (both runtimes).

    The libraries' own loops move the offset past every update they have tried; this one
    handles updates one after another and moves the offset past an update only when it was
    handled. An update the store could not record is tried again, with backoff, before any
    later one. A runtime says how to fetch a batch, handle one update and confirm the offset.
    """

    #: the library, for the log line
    library = ""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.offset: int | None = None

    async def fetch(self) -> list[Any]:
        """Return the next batch of updates after ``self.offset`` (a long poll)."""
        raise NotImplementedError

    async def handle(self, update: Any) -> None:
        """Hand one update to the core; raise ``StoreUnavailable`` if it was not recorded."""
        raise NotImplementedError

    async def confirm(self) -> None:
        """Tell the Bot API the offset (getUpdates with limit 1 and no wait)."""
        raise NotImplementedError

    async def username(self) -> str:
        """Return the bot's @name, for the log line."""
        raise NotImplementedError

    async def run(self) -> None:
        """Poll until ``stop`` is set, then confirm what was handled."""
        log.info("polling for updates as @%s (%s)", await self.username(), self.library)
        delay = RETRY_FIRST
        while not self.stop.is_set():
            try:
                batch = await self._unless_stopped(self.fetch())
            except Stopped:
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
            for update in batch:
                if not await self._feed(update):
                    break
                self.offset = update.update_id + 1
        await self._confirm()

    async def _feed(self, update: Any) -> bool:
        """Handle one update until the store records it; False if stopped before it could."""
        delay = RETRY_FIRST
        while True:
            try:
                await self.handle(update)
                return True
            except StoreUnavailable as exc:
                log.warning(
                    "update %s not recorded (%s); trying again in %.1fs",
                    update.update_id,
                    exc,
                    delay,
                )
            except Exception:  # the handler answers everything else; never stall on it
                log.exception("update %s failed", update.update_id)
                return True
            if await self._sleep(delay):
                return False
            delay = min(RETRY_MAX, delay * 2)

    async def _confirm(self) -> None:
        if self.offset is None:
            return
        try:
            await asyncio.wait_for(self.confirm(), timeout=5)
        except Exception as exc:  # the next start recognises them by their ids anyway
            log.info("could not confirm the last updates: %r", exc)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; return whether ``stop`` was set."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        return self.stop.is_set()

    async def _unless_stopped(self, call: Any) -> Any:
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
            raise Stopped
        return task.result()


@dataclasses.dataclass(frozen=True)
class Post:
    """One Bot API call of a message: a text part, or the file (with its caption, if any)."""

    text: str | None
    markup: Any
    file: bool = False


def posts_of(message: Any, inline: Any, keyboard: Any) -> list[Post]:
    """Return the calls that carry a rendered message, in order, for either runtime.

    A file whose caption fits goes alone with the text as caption. Otherwise the text goes in
    parts of at most 4096 characters (a message with buttons is shortened instead: its buttons
    and later edits belong to one message), then the file. One markup per message: inline
    buttons ride on the last part (or on the file after the text), a keyboard on the first part.
    """
    attachment = message.attachment
    text = message.text
    if attachment and len(text) <= CAPTION_LIMIT:
        return [Post(text, inline or keyboard, file=True)]
    if inline and len(text) > TEXT_LIMIT:
        log.warning("a message with buttons was %d characters; shortened", len(text))
        text = shorten_text(text, TEXT_LIMIT)
    parts = split_text(text, TEXT_LIMIT) if text else []
    posts = []
    for i, part in enumerate(parts):
        if i == len(parts) - 1 and not attachment:
            # inline buttons win; a keyboard then rides on the first part (or is dropped when
            # there is only one)
            markup = inline or (keyboard if len(parts) == 1 else None)
        else:
            markup = keyboard if i == 0 else None
        posts.append(Post(part, markup))
    if attachment:
        posts.append(Post(None, inline, file=True))
    return posts
