"""Input at the boundary: every text of every event is normalized once, before any handler.

``clean_event`` returns the event with its texts passed through ``models.text.normalize`` (the
sender's display name and chat title are scrubbed instead: nobody answers for them), or the
reason it is refused. ``unsupported_reply`` answers content the bot cannot read with what it
can take at the person's current step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from handlers.context import Ctx
from handlers.events import (
    CommandReceived,
    ContactShared,
    Event,
    PhotoReceived,
    TextReceived,
    Unsupported,
    UnsupportedReceived,
)
from models.reply import Reply
from models.text import RefusedText, normalize, scrub

#: what a step can take, as the answers name it
TAKES_TEXT = "text"
TAKES_PHOTO = "photo"
TAKES_BUTTONS = "buttons"
TAKES_COMMANDS = "commands"


def clean_event(event: Event) -> tuple[Event, str | None]:
    """Return ``event`` with its texts normalized, and why it is refused (None if it is not)."""
    s = event.sender
    name, title = scrub(s.display_name), scrub(s.chat_title)
    if (name, title) != (s.display_name, s.chat_title):
        event = dataclasses.replace(
            event, sender=dataclasses.replace(s, display_name=name, chat_title=title)
        )
    try:
        if isinstance(event, TextReceived):
            return _replace(event, text=normalize(event.text)), None
        if isinstance(event, CommandReceived):
            command = scrub(event.command).strip()
            return _replace(event, command=command, args=normalize(event.args).strip()), None
        if isinstance(event, PhotoReceived):
            return _replace(event, caption=normalize(event.caption)), None
        if isinstance(event, ContactShared):
            return _replace(event, phone=scrub(event.phone)), None
    except RefusedText as exc:
        return event, exc.reason
    return event, None


def _replace(event: Event, **changes: str) -> Event:
    if all(getattr(event, k) == v for k, v in changes.items()):
        return event
    return dataclasses.replace(event, **changes)


def refused_reply(ctx: Ctx, reason: str, group_commands: Collection[str] = ()) -> list[Reply]:
    """Answer refused text plainly; in a group only a command meant for groups is answered."""
    event = ctx.event
    if ctx.in_group and not (
        isinstance(event, CommandReceived) and event.command.lower() in group_commands
    ):
        return []
    return [ctx.reply("input.refused", reason=reason, in_dialog=ctx.state.dialog is not None)]


def unsupported_reply(ctx: Ctx, takes: str) -> Reply:
    """Say that this kind of content cannot be read, and what the current step takes."""
    assert isinstance(ctx.event, UnsupportedReceived)
    return ctx.reply("input.unsupported", kind=Unsupported(ctx.event.kind).value, takes=takes)
