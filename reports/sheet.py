"""Spreadsheets the product writes: one helper for safe text and one page setup for every form.

Every .xlsx goes through ``Book``: XlsxWriter in ``constant_memory`` mode (rows stream to disk,
so a city-wide ledger stays small), A4, a merged title row with the form's name, organization
and period, the header rows repeated on every printed page, fit to the page width, numbers as
numbers, dates as dates, sheet names in the reader's language.

Text that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula (or
the start of one) to Excel, WPS and LibreOffice. ``Book`` never writes text through a path that
turns strings into formulas: every string is written as a string cell, and risky ones carry
Excel's quote prefix (``'`` typed in front), so the text shows exactly as the person wrote it
and stays text when someone edits the cell. ``neutral`` is the same rule for formats without
cell types (CSV): it puts the apostrophe in front.
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import xlsxwriter
import xlsxwriter.workbook

from campaign.cells import FORMULA_LEAD, neutral, risky

__all__ = ["FORMULA_LEAD", "Book", "Percent", "Sheet", "neutral", "risky"]

#: Excel's limit on a sheet name, and the characters it refuses in one
SHEET_NAME_MAX = 31
_SHEET_BAD = re.compile(r"[\[\]:*?/\\']")
#: Excel's limit on a cell's text
CELL_MAX = 32767
#: texts up to this long are remembered per column, up to this many
MEMO_CHARS = 40
MEMO_SIZE = 20_000
A4 = 9
#: deflate level of the .xlsx package: 1 packs a city-wide ledger's XML about four times
#: faster than zlib's default 6, for a file about 40% larger (still far below Telegram's 50 MB)
ZIP_LEVEL = 1


def sheet_name(name: str, taken: set[str]) -> str:
    """Return a valid, unique sheet name made from ``name`` (≤ 31 characters, no brackets …)."""
    base = _SHEET_BAD.sub("_", name).strip() or "Sheet"
    base = base[:SHEET_NAME_MAX]
    candidate, n = base, 1
    while candidate.lower() in {t.lower() for t in taken}:
        n += 1
        suffix = f"({n})"
        candidate = base[: SHEET_NAME_MAX - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


class Sheet:
    """One worksheet of a form: title, header, then rows written top to bottom."""

    def __init__(self, book: Book, ws, widths: Sequence[float]) -> None:
        self.book = book
        self.ws = ws
        self.widths = list(widths)
        self.row = 0
        #: the XML of short texts, dates and blanks already written (labels repeat on every row)
        self._memo: dict[tuple[Any, bool], str] = {}
        for i, w in enumerate(widths):
            ws.set_column(i, i, w)

    def title(self, text: str, subtitle: str = "") -> None:
        """Write the merged title row (the form's name) and the organization/period row."""
        last = len(self.widths) - 1
        self.ws.set_row(self.row, 30)
        self.ws.merge_range(self.row, 0, self.row, last, "", self.book.f_title)
        self.ws.write_string(self.row, 0, text, self.book.f_title)
        self.row += 1
        if subtitle:
            self.ws.merge_range(self.row, 0, self.row, last, "", self.book.f_sub)
            self.ws.write_string(self.row, 0, subtitle, self.book.f_sub)
            self.row += 1

    def header(self, labels: Sequence[str]) -> None:
        """Write the header row and repeat the rows so far on every printed page."""
        self.ws.set_row(self.row, 32)
        for col, label in enumerate(labels):
            self.ws.write_string(self.row, col, label, self.book.f_head)
        self.ws.repeat_rows(0, self.row)
        self.ws.freeze_panes(self.row + 1, 0)
        self.row += 1

    def write(self, values: Iterable[Any], *, bold: bool = False) -> None:
        """Write one row: numbers as numbers, dates as dates, text always as text."""
        if self.book.constant_memory:
            self._stream(list(values), bold)
        else:
            self._write(list(values), bold)
        self.row += 1

    def _write(self, values: list[Any], bold: bool) -> None:
        book, ws, r = self.book, self.ws, self.row
        for col, value in enumerate(values):
            kind, value = _cell(value)
            fmt = book.cell_format(kind, bold)
            if kind == "blank":
                ws.write_blank(r, col, None, fmt)
            elif kind in ("num", "pct"):
                ws.write_number(r, col, value, fmt)
            elif kind == "date":
                ws.write_datetime(r, col, value, fmt)
            else:
                ws.write_string(r, col, value, fmt)

    def _stream(self, values: list[Any], bold: bool) -> None:
        """Write a row's XML straight to the sheet's row file (streaming mode).

        XlsxWriter spends most of a big ledger's time building each cell through its general
        API; the cells here are few kinds, so their XML is made in one pass (the XML XlsxWriter
        writes: inline strings, serial dates, style indices). Cells carry no reference: every
        cell of the row is written, blanks included, so each one's place is its order (the
        ``r`` of a cell is optional in SpreadsheetML), and a short text, a date or a blank
        already written is the same XML on every row.
        """
        ws, r = self.ws, self.row
        if ws.table:
            ws._write_single_row(r)  # a row written through the API is still pending
        n = str(r + 1)
        styles = self.book.styles(bold)
        memo = self._memo
        remember = len(memo) < MEMO_SIZE
        cells = []
        add = cells.append
        for value in values:
            kind = type(value)
            key = None
            if value is None or kind is date or (kind is str and len(value) <= MEMO_CHARS):
                key = (value, bold)
                known = memo.get(key)
                if known is not None:
                    add(known)
                    continue
            if kind is str and value:
                style = styles["quoted"] if value[0] in FORMULA_LEAD else styles["text"]
                text = _xml_text(value[:CELL_MAX])
                if text[0] in _SPACE or text[-1] in _SPACE or "\n" in text:
                    cell = (
                        f'<c s="{style}" t="inlineStr"><is><t xml:space="preserve">'
                        f"{text}</t></is></c>"
                    )
                else:
                    cell = f'<c s="{style}" t="inlineStr"><is><t>{text}</t></is></c>'
            elif value is None or value == "":
                cell = f'<c s="{styles["blank"]}"/>'
            elif kind is int or kind is float:
                cell = f'<c s="{styles["num"]}"><v>{value!r}</v></c>'
            elif kind is date:
                cell = f'<c s="{styles["date"]}"><v>{(value - EPOCH).days}</v></c>'
            else:
                cell_kind, value = _cell(value)
                style = styles[cell_kind]
                if cell_kind == "date":
                    cell = f'<c s="{style}"><v>{(value - EPOCH).days}</v></c>'
                elif cell_kind in ("num", "pct"):
                    cell = f'<c s="{style}"><v>{value!r}</v></c>'
                else:
                    text = _xml_text(value)
                    cell = f'<c s="{style}" t="inlineStr"><is><t>{text}</t></is></c>'
            add(cell)
            if key is not None and remember:
                memo[key] = cell
        ws.fh.write(f'<row r="{n}">{"".join(cells)}</row>')
        if ws.dim_rowmin is None:
            ws.dim_rowmin = r
        ws.dim_rowmax = r
        ws.dim_colmin = 0 if ws.dim_colmin is None else min(ws.dim_colmin, 0)
        last = max(len(values) - 1, 0)
        ws.dim_colmax = last if ws.dim_colmax is None else max(ws.dim_colmax, last)
        ws.previous_row = r + 1

    def note(self, text: str) -> None:
        """Write a merged line under the table (who filled it in, when)."""
        last = len(self.widths) - 1
        self.ws.merge_range(self.row, 0, self.row, last, "", self.book.f_note)
        self.ws.write_string(self.row, 0, text, self.book.f_note)
        self.row += 1


EPOCH = date(1899, 12, 30)
#: text with these at either end keeps them only when marked xml:space="preserve"
_SPACE = " \t\n"
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_ESCAPED = re.compile(r"(_x[0-9a-fA-F]{4}_)")


def _xml_text(text: str) -> str:
    """Escape text for a cell's <t> element as Excel does (control characters as _xHHHH_)."""
    if "_x" in text:
        text = _ESCAPED.sub(r"_x005F\1", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    if "&" in text or "<" in text or ">" in text:
        text = text.translate(_XML_ESCAPES)
    return text


def _cell(value: Any) -> tuple[str, Any]:
    """Return the kind of a cell (blank, num, pct, date, text, quoted) and its value."""
    if value is None or value == "":
        return "blank", None
    if isinstance(value, bool):
        return "text", str(value)
    if isinstance(value, int | float):
        return "num", value
    if isinstance(value, Percent):
        return "pct", value.value
    if isinstance(value, datetime):
        return "date", value.date()
    if isinstance(value, date):
        return "date", value
    text = str(value)[:CELL_MAX]
    return ("quoted" if risky(text) else "text"), text


class Percent:
    """A share to show as a percentage (a number in the cell, 0.875 → 87.5%)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


class Book:
    """A workbook written to memory, every sheet set up for A4 printing.

    Args:
        landscape: ledgers and reports print across the page.
        constant_memory: stream rows (rows must then be written in order, as ``Sheet`` does).
    """

    def __init__(self, *, landscape: bool = True, constant_memory: bool = True) -> None:
        self.out = io.BytesIO()
        self.wb = xlsxwriter.Workbook(
            self.out,
            {
                "constant_memory": constant_memory,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "default_date_format": "yyyy-mm-dd",
            },
        )
        self.landscape = landscape
        self._names: set[str] = set()
        font = {"font_name": "SimSun", "font_size": 10}
        base = {**font, "border": 1, "valign": "vcenter", "text_wrap": True}
        add = self.wb.add_format
        self.f_title = add({**font, "bold": True, "font_size": 16, "align": "center"})
        self.f_title.set_align("vcenter")
        self.f_sub = add({**font, "align": "left"})
        self.f_head = add({**base, "bold": True, "align": "center", "bg_color": "#EDEDED"})
        self.f_cell = add(base)
        self.f_bold = add({**base, "bold": True})
        self.f_quoted = add({**base, "quote_prefix": True})
        self.f_num = add({**base, "align": "center"})
        self.f_num_bold = add({**base, "align": "center", "bold": True})
        self.f_date = add({**base, "align": "center", "num_format": "yyyy-mm-dd"})
        self.f_pct = add({**base, "align": "center", "num_format": "0.0%"})
        self.f_note = add({**font, "align": "left"})
        self._kinds = {
            ("blank", False): self.f_cell,
            ("blank", True): self.f_bold,
            ("num", False): self.f_num,
            ("num", True): self.f_num_bold,
            ("pct", False): self.f_pct,
            ("pct", True): self.f_pct,
            ("date", False): self.f_date,
            ("date", True): self.f_date,
            ("text", False): self.f_cell,
            ("text", True): self.f_bold,
            ("quoted", False): self.f_quoted,
            ("quoted", True): self.f_quoted,
        }
        self._styles: dict[tuple[str, bool], int] = {}
        self._style_maps: dict[bool, dict[str, int]] = {}

    @property
    def constant_memory(self) -> bool:
        """Tell whether rows stream to disk as they are written."""
        return bool(self.wb.constant_memory)

    def cell_format(self, kind: str, bold: bool):
        """Return the format of a kind of cell."""
        return self._kinds[(kind, bold)]

    def styles(self, bold: bool) -> dict[str, int]:
        """Return the style index of each kind of cell, plain or bold."""
        cached = self._style_maps.get(bold)
        if cached is None:
            kinds = ("blank", "num", "pct", "date", "text", "quoted")
            cached = self._style_maps[bold] = {k: self.style(k, bold) for k in kinds}
        return cached

    def style(self, kind: str, bold: bool) -> int:
        """Return the style index of a kind of cell (as XlsxWriter numbers its formats)."""
        key = (kind, bold)
        index = self._styles.get(key)
        if index is None:
            index = self._styles[key] = self._kinds[key]._get_xf_index()
        return index

    def sheet(self, name: str, widths: Sequence[float]) -> Sheet:
        """Add a sheet named ``name`` (made valid and unique), set up for A4 printing."""
        ws = self.wb.add_worksheet(sheet_name(name, self._names))
        ws.set_paper(A4)
        if self.landscape:
            ws.set_landscape()
        else:
            ws.set_portrait()
        ws.fit_to_pages(1, 0)
        ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
        ws.center_horizontally()
        ws.set_footer("&C&P / &N")
        return Sheet(self, ws, widths)

    def close(self) -> bytes:
        """Finish the workbook and return its bytes (packed at ``ZIP_LEVEL``)."""
        module = xlsxwriter.workbook
        plain = module.ZipFile
        module.ZipFile = functools.partial(zipfile.ZipFile, compresslevel=ZIP_LEVEL)
        try:
            self.wb.close()
        finally:
            module.ZipFile = plain
        return self.out.getvalue()
