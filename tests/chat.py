"""A chat harness for handler tests: the core, the outbox worker and a transcript.

It drives the core as a platform adapter would (events in, queued rows delivered at once) and
presses buttons by the data of the messages the bot actually sent, found by their label.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import func, select

from bot.delivery import RenderedMessage
from bot.outbox import OutboxWorker
from handlers.app import build_core
from handlers.events import (
    ButtonPressed,
    CommandReceived,
    ContactShared,
    PhotoReceived,
    Sender,
    TextReceived,
)
from tests.conftest import RecordingMessenger

SECRET = b"test-secret"
MEMBER, SECRETARY, PEER, REVIEWER = "1", "2", "3", "4"
PHONES = {MEMBER: "13800000001", SECRETARY: "13800000002", PEER: "13800000003"}
PHONES[REVIEWER] = "13800000004"


def sender(uid: str) -> Sender:
    return Sender(platform="test", user_id=uid, chat_id=uid)


class EditingMessenger(RecordingMessenger):
    """A transcript in which an edited message shows its new text and buttons."""

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        await super().edit(chat_id, message)
        index = int(message.edit_message_id) - 1
        assert self.sent[index][0] == chat_id
        self.sent[index] = (chat_id, message)


class ChatBot:
    """The core, the outbox worker and a transcript, as a platform adapter would drive them."""

    def __init__(
        self,
        store,
        people,
        now: Callable[[], datetime],
        *,
        editing: bool = False,
        documents=None,
    ):
        self.store = store
        self.people = people
        self.core = build_core(store, secret=SECRET, clock=now, documents=documents)
        self.messenger = EditingMessenger() if editing else RecordingMessenger()
        self.worker = OutboxWorker(store, {"test": self.messenger})
        self.toasts: list[str] = []
        self.taps = 0
        self._update = 0

    async def send(self, event):
        handled = await self.core.handle(event)
        if handled.toast:
            self.toasts.append(handled.toast)
        await self.worker.deliver_ids(handled.outbox_ids)
        return handled

    def _uid(self) -> str:
        self._update += 1
        return f"{id(self)}-{self._update}"

    async def cmd(self, chat: str, command: str, args: str = ""):
        return await self.send(
            CommandReceived(sender=sender(chat), command=command, args=args, update_id=self._uid())
        )

    async def say(self, chat: str, text: str):
        return await self.send(TextReceived(sender=sender(chat), text=text, update_id=self._uid()))

    async def photo(self, chat: str, file_id: str, caption: str = ""):
        return await self.send(
            PhotoReceived(
                sender=sender(chat), file_id=file_id, caption=caption, update_id=self._uid()
            )
        )

    async def press_data(self, chat: str, data: str, message_id: str | None = None):
        self.taps += 1
        return await self.send(
            ButtonPressed(
                sender=sender(chat), data=data, message_id=message_id, update_id=self._uid()
            )
        )

    def find(self, chat: str, label: str) -> tuple[str, str]:
        """Return (data, message id) of the newest button in ``chat`` whose label has ``label``."""
        for index in range(len(self.messenger.sent) - 1, -1, -1):
            c, message = self.messenger.sent[index]
            if c != chat:
                continue
            for row in message.buttons:
                for b in row:
                    if label in b.text:
                        return b.data, str(index + 1)
        raise AssertionError(f"no button {label!r} in chat {chat}: {self.messenger.texts(chat)}")

    def button(self, chat: str, label: str) -> str:
        """Return the data of the newest button in ``chat`` whose label contains ``label``."""
        return self.find(chat, label)[0]

    async def press(self, chat: str, label: str):
        data, message_id = self.find(chat, label)
        return await self.press_data(chat, data, message_id)

    def last(self, chat: str) -> str:
        return self.messenger.texts(chat)[-1]

    def labels(self, chat: str) -> list[str]:
        """Return the button labels of the newest message in ``chat``."""
        message = [m for c, m in self.messenger.sent if c == chat][-1]
        return [b.text for row in message.buttons for b in row]

    async def bind(self, chat: str):
        await self.send(
            ContactShared(sender=sender(chat), phone=PHONES[chat], contact_user_id=chat)
        )

    async def count(self, model, *where) -> int:
        async with self.store.read() as s:
            query = select(func.count()).select_from(model)
            for w in where:
                query = query.where(w)
            return (await s.exec(query)).one()

    async def rows(self, model, *where) -> list:
        async with self.store.read() as s:
            query = select(model)
            for w in where:
                query = query.where(w)
            return list((await s.exec(query)).all())
