"""No dead ends: the person's menu as buttons, and plain requests read as commands.

Nobody must know slash commands. After binding, after /help and whenever someone types what
the bot does not understand outside a dialog, the answer carries the person's menu as a reply
keyboard (persistent on Telegram): one text button per thing their roles allow. Pressing a
button sends its label as text; the label, or a plain request such as "我要报进度", is read
here as that command. The phrases are data (``templates/lexicon/<locale>/requests.toml``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache

from campaign.access import Action, allowed_actions
from handlers.context import Ctx
from models.reply import Keyboard, Reply
from templates import LOCALES, catalog
from templates.lexicon import lexicon

#: commands that never sit on the menu keyboard (start binds; the rest are in /help)
NOT_ON_KEYBOARD = frozenset({"start", "lang", "channel", "cancel", "bindgroup"})
#: the lexicon key of the words a request may hold besides its phrase
FILLER = "_filler"
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
    return replace(reply, keyboard=Keyboard.MENU, menu=keyboard_commands(ctx))


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

    A menu label counts as it is. Otherwise the text must be one phrase of the request lexicon
    and nothing but filler words around it ("我要", "怎么", "please"): "帮助本组3户困难户" is
    an answer, not a request for help. Of several phrases, the longest wins.
    """
    if (cmd := button_command(text)) is not None:
        return cmd
    raw = _SPACES.sub(" ", text.strip().lower())
    if not _fold(raw) or len(_fold(raw)) > REQUEST_MAX:
        return None
    words = lexicon("requests")
    fillers = sorted((f.lower() for f in words.get(FILLER, ())), key=len, reverse=True)
    best: tuple[int, str] | None = None
    for cmd, phrases in words.items():
        if cmd == FILLER:
            continue
        for phrase in phrases:
            p = phrase.lower()
            rest = _without(raw, p)
            if rest is None or _without_fillers(rest, fillers):
                continue
            if best is None or len(p) > best[0]:
                best = (len(p), cmd)
    return best[1] if best else None


def _without(text: str, phrase: str) -> str | None:
    """Return ``text`` with ``phrase`` taken out (English as whole words), or None if absent."""
    if _ASCII_WORD.match(phrase):
        pattern = rf"(?<![a-z]){re.escape(phrase)}(?![a-z])"
        return re.sub(pattern, " ", text, count=1) if re.search(pattern, text) else None
    folded, p = _fold(text), _fold(phrase)
    return folded.replace(p, " ", 1) if p and p in folded else None


def _without_fillers(rest: str, fillers: list[str]) -> str:
    """Return what is left of ``rest`` once the filler words are gone."""
    tokens = [t for t in re.split(r"[\s]+", _PUNCT.sub(" ", rest)) if t]
    left = []
    for token in tokens:
        if _ASCII_WORD.match(token):
            if token not in fillers:
                left.append(token)
            continue
        for filler in fillers:  # Chinese has no spaces: peel fillers off, longest first
            token = token.replace(filler, "")
        if token:
            left.append(token)
    return "".join(left)
