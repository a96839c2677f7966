"""Spreadsheet text that no spreadsheet program evaluates (the one rule every writer follows).

Text that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula (or
the start of one) to Excel, WPS and LibreOffice ("CSV injection"). Writers with typed cells
(.xlsx) store such text as a text cell with Excel's quote prefix, so it shows as typed and
stays text when edited (``reports.sheet``, ``campaign.roster``); formats without types (CSV)
put an apostrophe in front (``neutral``).
"""

from __future__ import annotations

#: what makes a cell's text a formula to a spreadsheet program
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def risky(text: str) -> bool:
    """Tell whether a spreadsheet would read this text as (the start of) a formula."""
    return bool(text) and text.startswith(FORMULA_LEAD)


def neutral(text: str) -> str:
    """Return text that no spreadsheet evaluates: risky text gets an apostrophe in front."""
    return "'" + text if risky(text) else text


def plain(text: str) -> str:
    """Return CSV text as it was before ``neutral`` (the apostrophe in front taken off)."""
    return text[1:] if text.startswith("'") and risky(text[1:]) else text
