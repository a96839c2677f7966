"""Turn stored dates and times into what a person reads: the campaign's zone, the locale's way.

The catalog registers these as jinja2 filters (see ``templates`` for their use in messages);
the patterns themselves are message keys (``fmt.date``, ``fmt.datetime``, ``fmt.month``), so
each locale writes a date its own way: 2026年12月3日 09:05, 3 Dec 2026 09:05.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

#: the zone of a datetime shown without one; it mirrors ``models.campaign.DEFAULT_TIMEZONE``
DEFAULT_TIMEZONE = "Asia/Shanghai"

Value = date | datetime | str | None
Render = Callable[..., str]


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def quarter_fields(value: str) -> dict[str, int]:
    """Return the year and quarter of a quarter key (``2026Q2`` → y=2026, q=2).

    Raises:
        ValueError: text that is no quarter key.
    """
    year, sep, q = str(value).upper().partition("Q")
    if not sep or not year.isdigit() or q not in ("1", "2", "3", "4"):
        raise ValueError(f"not a quarter: {value!r}")
    return {"y": int(year), "q": int(q)}


def parse(value: Value) -> date | datetime | None:
    """Return a date or datetime from a value kept in a context (ISO text when JSON-stored).

    ``2027-03`` is the first of that month; text with a time is a datetime.

    Raises:
        ValueError: text that is no ISO date, month or datetime.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime | date):
        return value
    text = str(value).strip()
    if len(text) == 7 and text[4] == "-":
        return date(int(text[:4]), int(text[5:7]), 1)
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local(value: Value, tz: str | None = None) -> date | datetime | None:
    """Return the value as seen in zone ``tz``: datetimes converted, dates as they are.

    A naive datetime is UTC (as the store keeps times); ``tz`` omitted means the value's own
    offset when it has one, else the default campaign zone.
    """
    parsed = parse(value)
    if not isinstance(parsed, datetime):
        return parsed
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    elif tz is None:
        return parsed
    return parsed.astimezone(_zone(tz or DEFAULT_TIMEZONE))


def fields(value: date | datetime) -> dict[str, int | str]:
    """Return the parts a format pattern may use: y, m, d, and HH, MM (two digits)."""
    out: dict[str, int | str] = {"y": value.year, "m": value.month, "d": value.day}
    if isinstance(value, datetime):
        out.update(HH=f"{value.hour:02d}", MM=f"{value.minute:02d}")
    else:
        out.update(HH="00", MM="00")
    return out


def format_as(key: str, value: Value, tz: str | None, render: Render) -> str:
    """Render ``value`` (in zone ``tz``) with the pattern ``key``; empty for no value."""
    seen = local(value, tz)
    if seen is None:
        return ""
    return render(key, **fields(seen))
