"""No dead ends: the person's menu as buttons, and plain requests read as commands.

Nobody must know slash commands. After binding, after /help and whenever someone types what
the bot does not understand outside a dialog, the answer carries the person's menu as a reply
keyboard (persistent on Telegram): one text button per thing their roles allow. Pressing a
button sends its label as text; the label, or a plain request such as "我要报进度", is read
here as that command. The phrases are data (``templates/lexicon/<locale>/requests.toml``).
"""

from __future__ import annotations

import re
from functools import cache

from campaign.access import Action, allowed_actions
from handlers.context import Ctx
from models.reply import Keyboard, Reply
from templates import LOCALES, catalog
from templates.lexicon import lexicon

#: commands that never sit on the menu keyboard (start binds; the rest are in /help)
NOT_ON_KEYBOARD = frozenset({"start", "lang", "cancel", "bindgroup"})
#: a message longer than this is not a request for a function, whatever words it contains
REQUEST_MAX = 24
_ASCII_WORD = re.compile(r"^[a-z0-9 '\-]+$")
_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[\s,.!?;:，。！？；：、…~～\"'“”‘’（）()]+")


def keyboard_commands(ctx: Ctx) -> tuple[str, ...]:
    """Return the commands on the sender's menu keyboard, in menu order, help last."""
    actions = [a.value for a in allowed_actions(ctx.actor) if a is not Action.BIND_GROUP]
    cmds = [c for c in actions if c not in NOT_ON_KEYBOARD]
    return tuple(c for c in [*cmds, "help"] if c in ctx.commands)


def with_menu(ctx: Ctx, reply: Reply) -> Reply:
    """Return ``reply`` carrying the sender's menu keyboard (bound people only)."""
    if ctx.actor is None:
        return reply
    return Reply(
        reply.template,
        reply.context,
        buttons=reply.buttons,
        keyboard=Keyboard.MENU,
        edit_message_id=reply.edit_message_id,
        attachment=reply.attachment,
        menu=keyboard_commands(ctx),
    )


def menu_reply(ctx: Ctx, template: str = "menu.choose", **context) -> Reply:
    """Return a message with the sender's menu keyboard."""
    return with_menu(ctx, Reply(template, context))


@cache
def _labels() -> dict[str, str]:
    """Return every menu button label, in every locale, folded → its command."""
    cat = catalog()
    out: dict[str, str] = {}
    prefix = "menu.btn."
    for locale in LOCALES:
        for key in cat.keys(locale):
            if key.startswith(prefix):
                out[_fold(cat.render(key, locale))] = key[len(prefix) :]
    return out


def _fold(text: str) -> str:
    return _PUNCT.sub("", text.strip().lower())


def button_command(text: str) -> str | None:
    """Return the command of a menu button whose exact label is ``text``, if any."""
    return _labels().get(_fold(text))


def request_command(text: str) -> str | None:
    """Return the command a plain request asks for ("我要报进度" → report), if any.

    A menu label counts as it is; otherwise the longest phrase of the request lexicon found in
    the text wins (English phrases as whole words). Long messages are never requests.
    """
    if (cmd := button_command(text)) is not None:
        return cmd
    raw = _SPACES.sub(" ", text.strip().lower())
    if not raw or len(raw) > REQUEST_MAX:
        return None
    folded = _fold(raw)
    best: tuple[int, str] | None = None
    for cmd, phrases in lexicon("requests").items():
        for phrase in phrases:
            p = phrase.lower()
            if _ASCII_WORD.match(p):
                found = re.search(rf"(?<![a-z]){re.escape(p)}(?![a-z])", raw) is not None
            else:
                found = _fold(p) in folded
            if found and (best is None or len(p) > best[0]):
                best = (len(p), cmd)
    return best[1] if best else None
