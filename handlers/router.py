"""Route an event to its handler: commands, buttons by callback type, dialog input, contacts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from campaign import channels
from campaign.access import Action, allowed_actions
from handlers import menu
from handlers.callbacks import BadCallback, CallbackData
from handlers.context import Ctx, State
from handlers.events import (
    ButtonPressed,
    CommandReceived,
    ContactShared,
    PhotoReceived,
    PollUpdated,
    TextReceived,
    UnsupportedReceived,
)
from handlers.input import TAKES_COMMANDS, TAKES_PHOTO, TAKES_TEXT, unsupported_reply
from models.reply import Keyboard, Reply

Handler = Callable[[Ctx], Awaitable[list[Reply]]]
#: what a dialog takes at a step: ``text``, ``photo`` (a photo or text) or ``buttons``
Takes = Callable[[State], str]

#: commands that may be used in the middle of a dialog without leaving it
KEEPS_DIALOG = frozenset({"help", "lang", "cancel"})
ButtonHandler = Callable[[Ctx, CallbackData], Awaitable[list[Reply]]]
#: commands that are actions some roles do not allow (the menu shows only the allowed ones)
ACTIONS = frozenset(a.value for a in Action)


class Router:
    """A table from inputs to handlers, built by a factory (no module-level registration)."""

    def __init__(self) -> None:
        self.commands: dict[str, Handler] = {}
        self.public_commands: set[str] = set()
        self.group_commands: set[str] = set()
        self.buttons: dict[type[CallbackData], ButtonHandler] = {}
        self.public_buttons: set[type[CallbackData]] = set()
        self.dialogs: dict[str, Handler] = {}
        #: dialogs that take a file sent in chat (the notice's attachment)
        self.document_dialogs: set[str] = set()
        #: (dialog, step) pairs where no question is pending: plain requests are read there too
        self.idle_steps: set[tuple[str, str]] = set()
        self.takes: dict[str, Takes] = {}
        self.contact: Handler | None = None
        self.poll: Handler | None = None
        #: every text that arrives by SMS (``campaign.channels.SMS``): answers, not commands
        self.sms: Handler | None = None

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

    def dialog(
        self,
        name: str,
        handler: Handler,
        *,
        idle: tuple[str, ...] = (),
        photos: bool = False,
        takes: Takes | None = None,
        documents: bool = False,
    ) -> None:
        """Register the handler of text and photos while a person is in dialog ``name``.

        ``idle`` names the dialog's steps that wait for no typed answer (an overview with
        buttons): there a plain request such as "我要报进度" is read as its command.
        ``photos`` says the dialog asks for evidence (a photo or text); ``takes`` tells, for
        dialogs that also wait on buttons, what each step takes. Both only shape the answer to
        content the bot cannot read (a sticker, a voice note …). ``documents``: a file sent
        during the dialog goes to its handler (as ``UnsupportedReceived`` with its file id).
        """
        self.dialogs[name] = handler
        if documents:
            self.document_dialogs.add(name)
        self.idle_steps.update((name, step) for step in idle)
        fixed = TAKES_PHOTO if photos else TAKES_TEXT
        self.takes[name] = takes or (lambda _state: fixed)

    def callback_types(self) -> list[type[CallbackData]]:
        """Return every callback type registered, for the codec."""
        return list(self.buttons)

    async def route(self, ctx: Ctx) -> list[Reply]:
        """Run the handler for ``ctx.event`` and return its replies."""
        event = ctx.event
        bound = ctx.actor is not None
        if ctx.sender.platform == channels.SMS:
            return await self.sms(ctx) if self.sms is not None else []
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
            if (
                bound
                and not ctx.actor.is_party_member
                and name in ACTIONS
                and Action(name) not in allowed_actions(ctx.actor)
            ):
                # An 评议员 from outside the Party gets their own menu, never a pledge form.
                return [menu.menu_reply(ctx, "menu.not_yours")]
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
        if isinstance(event, UnsupportedReceived):
            if not bound:
                return [need_binding()]
            if event.file_id and ctx.state.dialog in self.document_dialogs:
                return await self.dialogs[ctx.state.dialog](ctx)
            takes = self.takes.get(ctx.state.dialog or "")
            return [unsupported_reply(ctx, takes(ctx.state) if takes else TAKES_COMMANDS)]
        if isinstance(event, ContactShared) and self.contact is not None:
            return await self.contact(ctx)
        if not bound:
            return [need_binding()]
        in_dialog = ctx.state.dialog in self.dialogs
        if isinstance(event, TextReceived):
            # A menu button's label is a command even mid-dialog; a plain request only outside.
            idle = (ctx.state.dialog, ctx.state.step) in self.idle_steps
            read = menu.button_command if in_dialog and not idle else menu.request_command
            name = read(event.text)
            if name is not None and name in self.commands:
                ctx.event = CommandReceived(
                    sender=event.sender, command=name, update_id=event.update_id
                )
                return await self.route(ctx)
        if isinstance(event, TextReceived | PhotoReceived) and in_dialog:
            return await self.dialogs[ctx.state.dialog](ctx)
        return [menu.menu_reply(ctx, "menu.unknown")]


def need_binding() -> Reply:
    """Return the polite explanation for someone not bound yet, with the contact button."""
    return Reply("bind.needed", keyboard=Keyboard.REQUEST_CONTACT)
