"""The context a handler works in: one transaction, one sender, their roles and dialog state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from campaign.access import Actor
from campaign.documents import Documents
from handlers.callbacks import CallbackCodec, CallbackData
from handlers.events import ChatType, Event, Sender
from models.campaign import DEFAULT_TIMEZONE
from models.org import Account
from models.reply import Button, Reply


@dataclass(frozen=True)
class Outgoing:
    """A reply made after the transaction, with the file it carries (kept when it is queued)."""

    reply: Reply
    name: str | None = None
    data: bytes | None = None


#: work a handler leaves for after its commit: it reads through the session it is given (a read
#: session, no write lock) and returns what to send; the core keeps the files and queues the
#: replies in one short write transaction
Later = Callable[[AsyncSession], Awaitable[list[Outgoing]]]


@dataclass
class State:
    """A person's place in a dialog: which dialog, which step, and its data (JSON-friendly)."""

    dialog: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> tuple:
        """Return a comparable copy, to tell whether a handler changed anything."""
        import json

        return (self.dialog, self.step, json.dumps(self.data, sort_keys=True, default=str))

    def enter(self, dialog: str, step: str, **data: Any) -> None:
        """Start a dialog at a step, keeping keys that outlive dialogs (such as the locale)."""
        keep = {k: v for k, v in self.data.items() if k.startswith("_")}
        self.dialog, self.step, self.data = dialog, step, {**keep, **data}

    def clear(self) -> None:
        """Leave any dialog, keeping keys that outlive dialogs."""
        self.enter(None, None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CoreConfig:
    """Deployment facts handlers need: the bot's public name for links, the default locale."""

    bot_username: str | None = None
    default_locale: str = "zh_CN"


@dataclass
class Ctx:
    """Everything one handler call may use. Valid only inside that call's transaction."""

    session: AsyncSession
    event: Event
    locale: str
    now: datetime
    codec: CallbackCodec
    config: CoreConfig
    state: State
    account: Account | None = None
    actor: Actor | None = None
    extra_outbox: list[int] = field(default_factory=list)
    #: commands this deployment has; menus and /help list only these
    commands: frozenset[str] = frozenset()
    #: the documents port (attachments, charts, spot check), if this deployment makes files
    documents: Documents | None = None
    #: work to do after the commit, in a read session (``after_commit``)
    later: list[Later] = field(default_factory=list)

    def after_commit(self, make: Later) -> None:
        """Make something (a file) after this transaction commits, reading in its own session.

        A city-wide document takes seconds to make: made here, it would hold the write lock
        (SQLite has one writer) all that time. The core runs ``make`` in a read session once
        this transaction has committed, then keeps its files and queues its replies in a short
        write transaction. Outside the core (no commit to wait for) nothing runs.
        """
        self.later.append(make)

    @property
    def sender(self) -> Sender:
        """Return who sent the event."""
        return self.event.sender

    @property
    def in_group(self) -> bool:
        """Tell whether the event came from a group chat."""
        return self.sender.chat_type is ChatType.GROUP

    def today(self, timezone: str = DEFAULT_TIMEZONE) -> date:
        """Return today's date where the campaign is (days turn at local midnight, not UTC)."""
        return self.now.astimezone(ZoneInfo(timezone)).date()

    def reply(self, template: str, **context: Any) -> Reply:
        """Return a plain reply to the sender."""
        return Reply(template, context)

    def button(self, label: str, cb: CallbackData, **context: Any) -> Button:
        """Return an inline button carrying typed callback data."""
        return Button(label, data=self.codec.encode(cb), context=context)
