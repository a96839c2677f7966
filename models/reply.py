"""Replies as data: a template key, its context and its buttons, rendered by each adapter.

Replies are stored in the outbox as JSON (``to_payload``) and rendered at delivery in the
recipient's language, so every value in a context must be JSON-friendly (str, int, lists …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Keyboard(StrEnum):
    """A reply keyboard to show beside a message (not inline buttons)."""

    REQUEST_CONTACT = "request_contact"
    REMOVE = "remove"
    #: the person's menu: one text button per command in ``Reply.menu``; pressing one sends
    #: its label as text, which the router reads as that command (persistent on Telegram)
    MENU = "menu"


@dataclass(frozen=True)
class Button:
    """An inline button: a label key, and callback data or a URL.

    Attributes:
        label: message key of the label (rendered in the recipient's language).
        data: callback data made by the codec (≤ 64 bytes).
        url: a link instead of a callback.
        context: values for the label template.
    """

    label: str
    data: str | None = None
    url: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """Return the button as JSON-friendly data."""
        out: dict[str, Any] = {"label": self.label}
        if self.data is not None:
            out["data"] = self.data
        if self.url is not None:
            out["url"] = self.url
        if self.context:
            out["context"] = self.context
        return out

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Button:
        """Rebuild a button from ``to_payload`` output."""
        return cls(
            label=data["label"],
            data=data.get("data"),
            url=data.get("url"),
            context=data.get("context", {}),
        )


class AttachmentKind(StrEnum):
    """How a file is shown: a document to download, or a photo shown in the chat."""

    DOCUMENT = "document"
    PHOTO = "photo"


@dataclass(frozen=True)
class Attachment:
    """A file sent with a reply: a generated file kept in the database, or a platform file.

    Attributes:
        kind: ``document`` or ``photo`` (an ``AttachmentKind`` value).
        stored: id of a ``StoredFile`` row (what the bot generated); the delivery worker
            reads its bytes when it sends.
        path: a file on the sending machine's disk (tools and tests only).
        file_id: a file the platform already has.
        filename: the name the recipient sees.
    """

    kind: str
    stored: int | None = None
    path: str | None = None
    file_id: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class PollSpec:
    """A native poll: the reply's text is its question, ``options`` are label keys.

    Platforms without native polls show the question with numbered options. ``stop`` closes
    the poll sent as message ``edit_message_id`` instead of sending one.

    Attributes:
        ref: our ``Poll`` row, to match the platform's poll updates.
    """

    options: tuple[str, ...] = ()
    anonymous: bool = True
    ref: int | None = None
    stop: bool = False

    def to_payload(self) -> dict[str, Any]:
        """Return the poll as JSON-friendly data."""
        return {
            "options": list(self.options),
            "anonymous": self.anonymous,
            "ref": self.ref,
            "stop": self.stop,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> PollSpec:
        """Rebuild a poll from ``to_payload`` output."""
        return cls(
            options=tuple(data.get("options", ())),
            anonymous=bool(data.get("anonymous", True)),
            ref=data.get("ref"),
            stop=bool(data.get("stop", False)),
        )


@dataclass(frozen=True)
class Reply:
    """What the bot says: a message key with its context, buttons and options.

    Attributes:
        template: message key in the catalogs.
        context: values for the template (JSON-friendly).
        buttons: rows of inline buttons.
        keyboard: a reply keyboard to show or remove.
        edit_message_id: edit that message (a card) instead of sending a new one.
        toast: answer the pressed button with this text instead of a message.
        attachment: a document or photo to send with the text as caption.
        menu: the commands of a ``Keyboard.MENU`` keyboard, in order.
        poll: send the text as a native poll's question (or close one: ``poll.stop``).
    """

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    buttons: tuple[tuple[Button, ...], ...] = ()
    keyboard: Keyboard | None = None
    edit_message_id: str | None = None
    toast: bool = False
    attachment: Attachment | None = None
    menu: tuple[str, ...] = ()
    poll: PollSpec | None = None

    def to_payload(self) -> dict[str, Any]:
        """Return the reply as JSON-friendly data for the outbox."""
        out: dict[str, Any] = {"template": self.template, "context": self.context}
        if self.buttons:
            out["buttons"] = [[b.to_payload() for b in row] for row in self.buttons]
        if self.keyboard:
            out["keyboard"] = self.keyboard.value
        if self.edit_message_id:
            out["edit_message_id"] = self.edit_message_id
        if self.attachment:
            out["attachment"] = {k: v for k, v in vars(self.attachment).items() if v is not None}
        if self.menu:
            out["menu"] = list(self.menu)
        if self.poll:
            out["poll"] = self.poll.to_payload()
        return out

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Reply:
        """Rebuild a reply from ``to_payload`` output."""
        att = data.get("attachment")
        return cls(
            template=data["template"],
            context=data.get("context", {}),
            buttons=tuple(
                tuple(Button.from_payload(b) for b in row) for row in data.get("buttons", [])
            ),
            keyboard=Keyboard(data["keyboard"]) if data.get("keyboard") else None,
            edit_message_id=data.get("edit_message_id"),
            attachment=Attachment(**att) if att else None,
            menu=tuple(data.get("menu", ())),
            poll=PollSpec.from_payload(data["poll"]) if data.get("poll") else None,
        )


@dataclass(frozen=True)
class CommandMenu:
    """The command menu to show one chat: command names, described in the chat's language."""

    commands: tuple[str, ...]

    def to_payload(self) -> dict[str, Any]:
        """Return the menu as JSON-friendly data for the outbox."""
        return {"commands": list(self.commands)}
