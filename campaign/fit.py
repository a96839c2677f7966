"""Make a message with buttons fit one platform message in every language, by shortening it.

A message that carries buttons cannot be split: its buttons would sit under the last part and
an edit would replace only one part (the head went onto the last part, the rest vanished).
So a card too long for one message shows its free texts shortened, each to the same cap, the
largest cap that fits in every locale; the card then offers a 全文 button for the whole text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from templates import LOCALES, catalog

#: Telegram's limit on a message's text; we count UTF-16 code units, as Telegram does
TEXT_LIMIT = 4096
#: the shortest a free text is cut to; below this a card shows little but "…"
CAP_FLOOR = 12
ELLIPSIS = "…"

Clip = Callable[[dict[str, Any], int], dict[str, Any]]


def length(text: str) -> int:
    """Return the length of a text as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def longest(template: str, context: dict[str, Any]) -> int:
    """Return the length of the longest rendering of a message over every locale."""
    cat = catalog()
    return max(length(cat.render(template, loc, **context)) for loc in LOCALES)


def clip(text: str | None, cap: int) -> str:
    """Return ``text`` cut to at most ``cap`` characters, ending in "…" when cut."""
    if not text or len(text) <= cap:
        return text or ""
    return text[: max(cap - 1, 1)].rstrip() + ELLIPSIS


def fit(
    template: str,
    context: dict[str, Any],
    shorten: Clip,
    *,
    limit: int = TEXT_LIMIT,
    ceiling: int = 2000,
) -> tuple[dict[str, Any], bool]:
    """Return the context to render (shortened if it must be) and whether it was shortened.

    ``shorten(context, cap)`` returns a copy whose free texts are cut to ``cap`` characters;
    the result must shrink as ``cap`` does. The largest cap that fits in every locale wins.

    Raises:
        ValueError: even the shortest form does not fit (a programming error: the layout has
            grown more than its fixed parts allow).
    """
    if longest(template, context) <= limit:
        return context, False
    low, high = CAP_FLOOR, ceiling
    if longest(template, shorten(context, low)) > limit:
        raise ValueError(f"{template} does not fit in {limit} even at cap {low}")
    while low < high:
        mid = (low + high + 1) // 2
        if longest(template, shorten(context, mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    return shorten(context, low), True
