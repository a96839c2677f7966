"""Typed events: what a platform adapter turns an update into before the core sees it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ChatType(StrEnum):
    """Where the message was sent."""

    PRIVATE = "private"
    GROUP = "group"


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who sent an event, and from where.

    Attributes:
        platform: ``telegram``, ``console``, ``sms`` …
        user_id: the platform's id of the person.
        chat_id: the platform's id of the chat (equal to user_id in private chats).
        language: the platform's language hint (``zh-hans``, ``en``), if any.
        is_chat_admin: whether the sender administers the group chat, where the platform can
            say (filled for the commands that need it); None when it cannot say.
    """

    platform: str
    user_id: str
    chat_id: str
    chat_type: ChatType = ChatType.PRIVATE
    display_name: str = ""
    language: str | None = None
    chat_title: str = ""
    is_chat_admin: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``update_id`` makes a redelivered update harmless."""

    sender: Sender
    update_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TextReceived(Event):
    """Plain text, not a command."""

    text: str


@dataclass(frozen=True, kw_only=True)
class CommandReceived(Event):
    """A ``/command`` with its argument text (the deep-link payload for ``/start``)."""

    command: str
    args: str = ""


@dataclass(frozen=True, kw_only=True)
class ButtonPressed(Event):
    """An inline button pressed on a message the bot sent."""

    data: str
    message_id: str | None = None
    callback_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContactShared(Event):
    """A phone contact card; ``contact_user_id`` says whose it is."""

    phone: str
    contact_user_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhotoReceived(Event):
    """A photo, kept by the platform's file id."""

    file_id: str
    caption: str = ""


class Unsupported(StrEnum):
    """Content the bot cannot read; each gets a short answer saying what it can take."""

    STICKER = "sticker"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    LOCATION = "location"
    POLL = "poll"
    EDITED = "edited"
    OTHER = "other"


@dataclass(frozen=True, kw_only=True)
class UnsupportedReceived(Event):
    """A sticker, voice note, video, file, location, poll or an edited message.

    A file (``DOCUMENT``) carries its platform id, name and caption: most steps answer it like
    any content they cannot read, and a dialog registered with ``documents=True`` (a notice)
    takes it as an attachment.
    """

    kind: Unsupported
    file_id: str | None = None
    file_name: str = ""
    caption: str = ""


@dataclass(frozen=True, kw_only=True)
class PollUpdated(Event):
    """A native poll's totals changed or it was closed (anonymous: no voter is known).

    Attributes:
        poll_id: the platform's id of the poll.
        counts: votes per option, in the order the options were sent.
    """

    poll_id: str
    counts: tuple[int, ...]
    closed: bool = False
