"""The console runtime: talk to the same core in a terminal, as any person on the roster.

Lines starting with ``/`` are commands; a bare number presses the visible button with that
number (a button keeps its number while its message shows it) and ``'5`` types the number 5
itself; anything else is text, and the labels of the menu keyboard (⌨) are typed as they read.
``/as PHONE`` takes the seat of the roster member with that phone (the seat shares that
person's contact, so binding goes through the same path as in Telegram); ``/contact PHONE``
shares a contact by hand; ``/group LINE`` says LINE in the branch's group chat (for /bindgroup
and the display posts); ``/quit`` leaves. Messages the bot sends to other people are printed
too, marked with their name, so a whole story can be followed in one window.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from sqlmodel import select

from bot.compose import Services
from bot.delivery import RenderedMenu, RenderedMessage
from bot.outbox import OutboxWorker
from campaign import notices
from handlers.core import Handled, StoreUnavailable
from handlers.events import (
    ButtonPressed,
    ChatType,
    CommandReceived,
    ContactShared,
    Event,
    Sender,
    TextReceived,
)
from models.org import Account, Member
from templates import catalog

PLATFORM = "console"
GROUP_CHAT = "group"
#: seconds a typed line waits for a busy or restarting store before it is given up
STORE_PATIENCE = 60.0


@dataclass
class ConsoleMessenger:
    """Print messages to a terminal and keep every still-visible button pressable by number."""

    out: TextIO = sys.stdout
    names: dict[str, str] = field(default_factory=dict)
    current: str | None = None
    #: each chat's visible buttons by their number: (label, data, the card's message id). A
    #: button keeps its number while its message shows it (as on Telegram, where old cards
    #: stay pressable); an edit that keeps the card's shape keeps the numbers
    buttons: dict[str, dict[int, tuple[str, str, str | None]]] = field(default_factory=dict)
    _cards: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    _counter: dict[str, int] = field(default_factory=dict)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    platform: str = PLATFORM
    #: where files the bot sends are written, so the person can open them
    files_dir: Path = field(default_factory=lambda: Path("pledgebot-files"))
    _next_id: int = 0

    def _head(self, chat_id: str) -> str:
        if chat_id == self.current:
            return "🤖 "
        if chat_id == GROUP_CHAT:
            return "🤖 → [👥] "
        return f"🤖 → [{self.names.get(chat_id, chat_id)}] "

    def _remember(self, chat_id: str, flat: list, message_id: str | None) -> list[int]:
        """Number a message's buttons (keeping an edited card's numbers); return the numbers."""
        known = self.buttons.setdefault(chat_id, {})
        cards = self._cards.setdefault(chat_id, {})
        old = cards.pop(message_id, []) if message_id else []
        if old and len(old) == len(flat):
            numbers = old
        else:
            for n in old:
                known.pop(n, None)
            if not known:
                self._counter[chat_id] = 0  # nothing visible: numbering may start afresh
            start = self._counter.get(chat_id, 0)
            numbers = list(range(start + 1, start + 1 + len(flat)))
            self._counter[chat_id] = start + len(flat)
        for n, entry in zip(numbers, flat, strict=True):
            known[n] = entry
        if numbers and message_id:
            cards[message_id] = numbers
        return numbers

    def button(self, chat_id: str, number: int) -> tuple[str, str, str | None] | None:
        """Return the visible button with that number in a chat, if any."""
        return self.buttons.get(chat_id, {}).get(number)

    def find(self, chat_id: str, label: str) -> int | None:
        """Return the number of the newest visible button in a chat whose label has ``label``."""
        for n in sorted(self.buttons.get(chat_id, {}), reverse=True):
            if label.casefold() in self.buttons[chat_id][n][0].casefold():
                return n
        return None

    async def send(self, chat_id: str, message: RenderedMessage) -> str:
        """Print a message and its numbered buttons (a poll as a numbered vote)."""
        self._next_id += 1
        if message.poll is not None:
            message = replace(message, text=message.poll.numbered(message.text))
        self._print(chat_id, message, message_id=str(self._next_id))
        return str(self._next_id)

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        """Print the new state of an edited card."""
        self._print(chat_id, message, edited=True, message_id=message.edit_message_id)

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        """Note the menu quietly; a terminal has no menu button."""
        self.transcript.append((chat_id, "menu:" + ",".join(c for c, _ in menu.commands)))

    def _print(
        self,
        chat_id: str,
        message: RenderedMessage,
        edited: bool = False,
        message_id: str | None = None,
    ) -> None:
        flat = [
            (b.text, b.data or b.url or "", message_id) for row in message.buttons for b in row
        ]
        numbers = self._remember(chat_id, flat, message_id)
        self.transcript.append((chat_id, message.text))
        mark = "✎ " if edited else ""
        lines = message.text.splitlines() or [""]
        print(self._head(chat_id) + mark + lines[0], file=self.out)
        for line in lines[1:]:
            print("   " + line, file=self.out)
        if flat:
            labels = "  ".join(
                f"[{n}] {text}" for n, (text, _, _) in zip(numbers, flat, strict=True)
            )
            print("   " + labels, file=self.out)
        if message.keyboard == "request_contact":
            print(f"   [{message.keyboard_label}] → /contact PHONE", file=self.out)
        if message.keyboard == "menu" and message.keyboard_rows:
            keys = " | ".join(label for row in message.keyboard_rows for label in row)
            print(f"   ⌨ {keys}", file=self.out)
        if message.attachment:
            print(f"   📎 {self._save(message.attachment)}", file=self.out)
        self.out.flush()

    def _save(self, attachment: dict) -> str:
        """Write a sent file to the files directory; return its path (a terminal shows no file)."""
        data = attachment.get("data")
        if data is None:
            return str(attachment.get("path") or attachment.get("file_id") or "")
        self.files_dir.mkdir(parents=True, exist_ok=True)
        name = Path(attachment.get("filename") or "file").name
        path = self.files_dir / f"{attachment.get('stored', 0)}-{name}"
        path.write_bytes(data)
        self.transcript.append(("file", str(path)))
        return str(path.resolve())


class ConsoleSession:
    """One terminal seat driving the core; ``feed(line)`` is one line typed by a person."""

    def __init__(
        self, services: Services, out: TextIO = sys.stdout, locale: str | None = None
    ) -> None:
        self.services = services
        self.out = out
        self.messenger = ConsoleMessenger(out=out)
        self.worker = OutboxWorker(services.store, {PLATFORM: self.messenger})
        self.seat: str | None = None
        self.phone: str | None = None
        self.locale = locale or services.settings.default_locale

    def _sender(self, group: bool = False) -> Sender:
        seat = self.seat or "guest"
        if group:
            return Sender(
                platform=PLATFORM,
                user_id=seat,
                chat_id=GROUP_CHAT,
                chat_type=ChatType.GROUP,
                chat_title=GROUP_CHAT,
            )
        return Sender(
            platform=PLATFORM,
            user_id=seat,
            chat_id=seat,
            display_name=seat,
            language=self.locale,
        )

    async def _dispatch(self, event: Event) -> None:
        handled = await self._handle_patiently(event)
        if handled is None:
            return
        if self.seat and self.seat not in self.messenger.names:
            await self._learn_name(self.seat)
        if handled.toast:
            print(f"💬 {handled.toast}", file=self.out)
        await self.worker.deliver_ids(handled.outbox_ids)
        await self.flush()

    async def _handle_patiently(self, event: Event) -> Handled | None:
        """Handle ``event``, waiting out a busy or restarting store for up to a minute."""
        delay, waited = 0.5, 0.0
        while True:
            try:
                return await self.services.core.handle(event)
            except StoreUnavailable:
                if waited >= STORE_PATIENCE:
                    print(catalog().render("console.store_gave_up", self.locale), file=self.out)
                    return None
                if waited == 0:
                    print(catalog().render("console.store_busy", self.locale), file=self.out)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(8.0, delay * 2)

    async def _learn_name(self, seat: str) -> None:
        async with self.services.store.read() as session:
            name = (
                await session.exec(
                    select(Member.name)
                    .join(Account, Account.member_id == Member.id)
                    .where(Account.platform == PLATFORM, Account.external_id == seat)
                )
            ).first()
        if name:
            self.messenger.names[seat] = name

    async def flush(self) -> None:
        """Deliver whatever else is due for console seats (messages to other people).

        A notice under way gets its sender's message edited here, as the running bot's loop
        does (``bot.notices``), once the figures change.
        """
        while True:
            while await self.worker.run_once():
                pass
            async with self.services.store.write() as session:
                ids = await notices.advance(session)
            if not ids:
                return
            await self.worker.deliver_ids(ids)

    def take_guest_seat(self, name: str) -> None:
        """Sit as someone not bound yet (to try an invite link or a wrong contact)."""
        self.seat = f"guest-{name}"
        self.phone = None
        self.messenger.current = self.seat

    async def take_seat(self, phone: str) -> None:
        """Sit as the roster member with ``phone``; share their contact if not bound yet."""
        async with self.services.store.read() as session:
            member = (await session.exec(select(Member).where(Member.phone == phone))).first()
        self.seat = f"seat-{phone}"
        self.phone = phone
        self.messenger.current = self.seat
        if member is not None:
            self.messenger.names[self.seat] = member.name
        print(catalog().render("console.seat", self.locale, phone=phone), file=self.out)
        async with self.services.store.read() as session:
            bound = (
                await session.exec(
                    select(Account).where(
                        Account.platform == PLATFORM,
                        Account.external_id == self.seat,
                        Account.active == True,  # noqa: E712 (an ended binding: share again)
                    )
                )
            ).first()
        if bound is None:
            await self._dispatch(
                ContactShared(sender=self._sender(), phone=phone, contact_user_id=self.seat)
            )

    async def feed(self, line: str) -> bool:
        """Handle one typed line; return False when the person quits."""
        line = line.strip()
        if not line:
            return True
        print(f"👤 {line}", file=self.out)
        if line in ("/quit", "/exit"):
            return False
        if line.startswith("/as "):
            await self.take_seat(line[4:].strip())
            return True
        if self.seat is None:
            self.seat = "guest"
            self.messenger.current = self.seat
        if line.startswith("/group "):
            said = line[len("/group ") :].strip()
            if said.startswith("/"):
                command, _, args = said[1:].partition(" ")
                event: Event = CommandReceived(
                    sender=self._sender(group=True), command=command, args=args.strip()
                )
            else:
                event = TextReceived(sender=self._sender(group=True), text=said)
            await self._dispatch(event)
            return True
        if line.startswith("/contact"):
            phone = line[len("/contact") :].strip() or (self.phone or "")
            await self._dispatch(
                ContactShared(sender=self._sender(), phone=phone, contact_user_id=self.seat)
            )
            return True
        if line.startswith("/"):
            command, _, args = line[1:].partition(" ")
            await self._dispatch(
                CommandReceived(sender=self._sender(), command=command, args=args.strip())
            )
            return True
        if line.startswith("'"):  # '5 types the number 5 itself, not button 5
            await self._dispatch(TextReceived(sender=self._sender(), text=line[1:]))
            return True
        pressed = self.messenger.button(self.seat, int(line)) if line.isdigit() else None
        if pressed is not None:
            _, data, card = pressed
            await self._dispatch(ButtonPressed(sender=self._sender(), data=data, message_id=card))
            return True
        await self._dispatch(TextReceived(sender=self._sender(), text=line))
        return True


async def repl(
    services: Services,
    read: Callable[[], str] | None = None,
    out: TextIO = sys.stdout,
    locale: str | None = None,
) -> None:
    """Read lines from the terminal until end of input or /quit."""
    session = ConsoleSession(services, out=out, locale=locale)
    print(catalog().render("console.banner", session.locale), file=out)
    loop = asyncio.get_running_loop()
    reader = read or sys.stdin.readline
    while True:
        line = await loop.run_in_executor(None, reader)
        if not line:
            break
        if not await session.feed(line):
            break
