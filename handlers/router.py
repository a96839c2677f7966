"""Route an event to its handler: commands, buttons by callback type, dialog input, contacts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.callbacks import BadCallback, CallbackData
from handlers.context import Ctx
from handlers.events import (
    ButtonPressed,
    CommandReceived,
    ContactShared,
    PhotoReceived,
    PollUpdated,
    TextReceived,
)
from models.reply import Keyboard, Reply

Handler = Callable[[Ctx], Awaitable[list[Reply]]]

#: commands that may be used in the middle of a dialog without leaving it
KEEPS_DIALOG = frozenset({"help", "lang", "cancel"})
ButtonHandler = Callable[[Ctx, CallbackData], Awaitable[list[Reply]]]


class Router:
    """A table from inputs to handlers, built by a factory (no module-level registration)."""

    def __init__(self) -> None:
        self.commands: dict[str, Handler] = {}
        self.public_commands: set[str] = set()
        self.group_commands: set[str] = set()
        self.buttons: dict[type[CallbackData], ButtonHandler] = {}
        self.public_buttons: set[type[CallbackData]] = set()
        self.dialogs: dict[str, Handler] = {}
        self.contact: Handler | None = None
        self.poll: Handler | None = None

    def command(
        self, name: str, handler: Handler, *, public: bool = False, group: bool = False
    ) -> None:
        """Register ``/name``; public ones work before binding, group ones in groups."""
        self.commands[name] = handler
        if public:
            self.public_commands.add(name)
        if group:
            self.group_commands.add(name)

    def button(
        self, cb_type: type[CallbackData], handler: ButtonHandler, *, public: bool = False
    ) -> None:
        """Register the handler of one callback type."""
        self.buttons[cb_type] = handler
        if public:
            self.public_buttons.add(cb_type)

    def dialog(self, name: str, handler: Handler) -> None:
        """Register the handler of text and photos while a person is in dialog ``name``."""
        self.dialogs[name] = handler

    def callback_types(self) -> list[type[CallbackData]]:
        """Return every callback type registered, for the codec."""
        return list(self.buttons)

    async def route(self, ctx: Ctx) -> list[Reply]:
        """Run the handler for ``ctx.event`` and return its replies."""
        event = ctx.event
        bound = ctx.actor is not None
        if isinstance(event, PollUpdated):
            return await self.poll(ctx) if self.poll is not None else []
        if isinstance(event, CommandReceived):
            name = event.command.lower()
            handler = self.commands.get(name)
            if ctx.in_group:
                if handler is None or name not in self.group_commands:
                    return []
                return await handler(ctx)
            if handler is None:
                return [ctx.reply("error.unknown_command", command=name)]
            if not bound and name not in self.public_commands:
                return [need_binding()]
            if name not in KEEPS_DIALOG and name != ctx.state.dialog:
                # Another command leaves the dialog, so later text is not taken as its answer;
                # drafts live in the database and the dialog's own command resumes them.
                ctx.state.clear()
            return await handler(ctx)
        if isinstance(event, ButtonPressed):
            try:
                cb = ctx.codec.decode(event.data)
            except BadCallback:
                return [Reply("error.bad_button", toast=True)]
            handler = self.buttons.get(type(cb))
            if handler is None:
                return [Reply("error.bad_button", toast=True)]
            if not bound and type(cb) not in self.public_buttons:
                return [Reply("bind.needed_short", toast=True), need_binding()]
            return await handler(ctx, cb)
        if ctx.in_group:
            return []
        if isinstance(event, ContactShared) and self.contact is not None:
            return await self.contact(ctx)
        if not bound:
            return [need_binding()]
        if isinstance(event, TextReceived | PhotoReceived) and ctx.state.dialog in self.dialogs:
            return await self.dialogs[ctx.state.dialog](ctx)
        return [ctx.reply("help.hint")]


def need_binding() -> Reply:
    """Return the polite explanation for someone not bound yet, with the contact button."""
    return Reply("bind.needed", keyboard=Keyboard.REQUEST_CONTACT)
