"""The delivery port and the rendering of queued replies into platform-neutral messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.reply import Reply
from templates import catalog

#: buttons per row of a menu keyboard
MENU_ROW = 2


@dataclass(frozen=True)
class RenderedButton:
    """A button with its label in the recipient's language."""

    text: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class RenderedMessage:
    """A message ready for a platform: text, buttons, keyboard, attachment."""

    text: str
    buttons: tuple[tuple[RenderedButton, ...], ...] = ()
    keyboard: str | None = None
    keyboard_label: str | None = None
    #: the labels of a ``menu`` keyboard, in rows; pressing one sends its label as text
    keyboard_rows: tuple[tuple[str, ...], ...] = ()
    attachment: dict | None = None
    edit_message_id: str | None = None
    poll: RenderedPoll | None = None
    #: the language it was rendered in, and the outbox row it comes from (set by the worker),
    #: for messengers that add words of their own or record what they sent (SMS)
    locale: str | None = None
    outbox_id: int | None = None


@dataclass(frozen=True)
class RenderedPoll:
    """A native poll: the message's text is the question; options in the recipient's language.

    ``stop`` closes the poll that is message ``edit_message_id``. A platform without polls
    shows ``numbered()`` instead.
    """

    options: tuple[str, ...]
    anonymous: bool = True
    stop: bool = False

    def numbered(self, question: str) -> str:
        """Return the question with its options numbered, for platforms without polls."""
        return "\n".join([question, *(f"{i}. {o}" for i, o in enumerate(self.options, 1))])


def poll_ids(sent_message_id: str | None) -> tuple[str | None, str | None]:
    """Split what a messenger returned for a sent poll into (message id, platform poll id)."""
    if not sent_message_id:
        return None, None
    message_id, _, poll_id = sent_message_id.partition(":")
    return message_id, poll_id or None


@dataclass(frozen=True)
class RenderedMenu:
    """A command menu: (command, description) pairs in one language."""

    locale: str
    commands: tuple[tuple[str, str], ...] = field(default_factory=tuple)


class DeliveryError(Exception):
    """A send that failed, with what the platform said about trying again.

    Attributes:
        retry_after: seconds the platform asked us to wait (HTTP 429).
        permanent: retrying cannot help (a malformed request).
        blocked: the person blocked the bot or left; stop writing to them.
        hold_until: not now, and no attempt spent: send at this time (SMS quiet hours).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        blocked: bool = False,
        hold_until: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.hold_until = hold_until
        self.retry_after = retry_after
        self.permanent = permanent
        self.blocked = blocked


class Messenger(Protocol):
    """A platform's outgoing side, as the outbox worker sees it.

    Implementations raise DeliveryError for every failure the worker should understand; any
    other exception is treated as a network fault and retried with backoff.
    """

    platform: str

    async def send(self, chat_id: str, message: RenderedMessage) -> str | None:
        """Send a message; return the platform's message id.

        For a native poll, return ``<message id>:<poll id>`` (``poll_ids`` splits it).
        """
        ...

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        """Replace the text and buttons of ``message.edit_message_id`` (or stop its poll)."""
        ...

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        """Show a command menu in one chat."""
        ...


def render_reply(reply: Reply, locale: str) -> RenderedMessage:
    """Render a reply's template, buttons and keyboard in ``locale``."""
    cat = catalog()
    text = cat.render(reply.template, locale, **reply.context)
    buttons = tuple(
        tuple(
            RenderedButton(cat.render(b.label, locale, **b.context), data=b.data, url=b.url)
            for b in row
        )
        for row in reply.buttons
    )
    keyboard = reply.keyboard.value if reply.keyboard else None
    label = cat.render("bind.share_button", locale) if keyboard == "request_contact" else None
    rows: tuple[tuple[str, ...], ...] = ()
    if keyboard == "menu":
        labels = [cat.render(f"menu.btn.{c}", locale) for c in reply.menu]
        rows = tuple(tuple(labels[i : i + MENU_ROW]) for i in range(0, len(labels), MENU_ROW))
    attachment = None
    if reply.attachment is not None:
        attachment = {k: v for k, v in vars(reply.attachment).items() if v is not None}
    poll = None
    if reply.poll is not None:
        poll = RenderedPoll(
            tuple(cat.render(o, locale) for o in reply.poll.options),
            anonymous=reply.poll.anonymous,
            stop=reply.poll.stop,
        )
    return RenderedMessage(
        text=text,
        buttons=buttons,
        keyboard=keyboard,
        keyboard_label=label,
        keyboard_rows=rows,
        attachment=attachment,
        edit_message_id=reply.edit_message_id,
        poll=poll,
        locale=locale,
    )


def render_menu(commands: list[str], locale: str) -> RenderedMenu:
    """Render a command menu's descriptions in ``locale``."""
    cat = catalog()
    return RenderedMenu(
        locale=locale, commands=tuple((c, cat.render(f"command.{c}", locale)) for c in commands)
    )


def split_text(text: str, limit: int = 4096) -> list[str]:
    """Split text into parts of at most ``limit`` characters, at line breaks where possible."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut <= limit // 2:
            cut = limit
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest:
        parts.append(rest)
    return parts


def shorten_text(text: str, limit: int = 4096) -> str:
    """Return text cut to one message of ``limit`` characters, at a line break where possible.

    For a message with buttons, which is never split (its buttons would sit under the last part
    and an edit would replace only one part). Cards are built to fit; this is the last guard.
    """
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - 1)
    if cut <= limit // 2:
        cut = limit - 1
    return text[:cut].rstrip() + "…"
