"""The one normalizer for text from every platform and file (pure, stdlib only).

Every text a person sends, and every name a roster gives, passes through ``normalize`` before
anything reads or stores it: Unicode NFC; control characters other than newline and tab,
zero-width and other invisible format characters and bidirectional overrides removed; line and
paragraph separators and carriage returns read as newlines. Text that cannot be meant by anyone
typing (a lone surrogate, a NUL) is refused as a whole rather than repaired, so that the person
is told plainly instead of having something else stored in their name.
"""

from __future__ import annotations

import re
import unicodedata

#: the control characters a person may mean
KEPT_CONTROLS = frozenset("\n\t")

#: bidirectional marks, embeddings, overrides and isolates (all of category Cf but listed so that
#: the roster can name them)
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: zero-width and invisible characters that are not of category Cf
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u034f")

_NEWLINES = re.compile("\r\n|[\r\u2028\u2029\x85\x0b\x0c]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class RefusedText(ValueError):
    """The text holds something nobody types: a lone surrogate or a NUL character.

    Attributes:
        reason: ``surrogate`` or ``nul``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_forbidden(char: str) -> bool:
    """Tell whether one character is removed by ``normalize`` (or refused)."""
    if char in KEPT_CONTROLS:
        return False
    if char in INVISIBLE:
        return True
    category = unicodedata.category(char)
    # Cc: C0/C1 controls (ESC of ANSI colours, DEL, NUL); Cf: zero-width spaces and joiners,
    # BOM, soft hyphen, bidi controls, tag characters; Cs: surrogates; Zl/Zp: separators.
    return category in ("Cc", "Cf", "Cs", "Zl", "Zp")


def refusal(text: str) -> str | None:
    """Return why ``text`` is refused (``surrogate``, ``nul``), or None if it is acceptable."""
    if "\x00" in text:
        return "nul"
    if _SURROGATE.search(text):
        return "surrogate"
    return None


def normalize(text: str) -> str:
    """Return ``text`` cleaned: NFC, no controls but newline and tab, nothing invisible.

    Raises:
        RefusedText: for a lone surrogate or a NUL character.
    """
    if text.isascii() and text.isprintable():
        return text  # the common case, nothing to do
    reason = refusal(text)
    if reason is not None:
        raise RefusedText(reason)
    text = _NEWLINES.sub("\n", text)
    text = "".join(c for c in text if not is_forbidden(c))
    # Composing may follow a removal (e + ZWSP + U+0301 becomes é), never the reverse.
    return unicodedata.normalize("NFC", text)


def scrub(text: str) -> str:
    """Return ``text`` normalized, dropping what ``normalize`` would refuse.

    For text nobody answers for (a display name, a chat title): it is cleaned, not refused.
    """
    text = _SURROGATE.sub("", text.replace("\x00", ""))
    return normalize(text)


def unsafe_chars(text: str) -> list[str]:
    """Return what a one-line name must not hold, as ``U+XXXX`` codes, in order, once each.

    That is every character ``normalize`` removes or refuses, and newline and tab as well.
    """
    seen: dict[str, None] = {}
    for c in text:
        if c in KEPT_CONTROLS or is_forbidden(c):
            seen.setdefault(f"U+{ord(c):04X}")
    return list(seen)


def is_clean(text: str) -> bool:
    """Tell whether ``text`` is already what ``normalize`` returns."""
    return (
        not any(is_forbidden(c) for c in text)
        and "\r" not in text
        and unicodedata.is_normalized("NFC", text)
    )
