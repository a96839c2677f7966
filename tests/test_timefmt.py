"""The one date formatter: the campaign's zone, each locale's way, and no raw dates in catalogs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from models.campaign import DEFAULT_TIMEZONE
from templates import LOCALES, Catalog, timefmt

#: context names that hold a date or a time; shown raw they would read 2026-12-02T17:05:00
TIME_NAMES = re.compile(
    r"(_at|_on|date|deadline|month|until|today|registered|earliest|latest|quarter|done_before)$"
)
RAW = re.compile(r"\{\{\s*([a-z_][a-z_.0-9]*)\s*(\[[^\]]*\]\s*)?(\}\}|or\b|\|\s*replace)")


@pytest.fixture(scope="module")
def cat():
    return Catalog()


def show(cat: Catalog, source: str, locale: str, **context) -> str:
    return cat.env.from_string(source).render(_locale=locale, **context)


def test_the_default_zone_is_the_campaigns():
    assert timefmt.DEFAULT_TIMEZONE == DEFAULT_TIMEZONE


@pytest.mark.parametrize(
    ("source", "context", "zh", "en"),
    [
        ("{{ v | date }}", {"v": "2027-03-05"}, "2027年3月5日", "5 Mar 2027"),
        ("{{ v | date }}", {"v": date(2027, 12, 31)}, "2027年12月31日", "31 Dec 2027"),
        ("{{ v | month }}", {"v": "2027-03"}, "2027年3月", "March 2027"),
        ("{{ v | quarter }}", {"v": "2027Q2"}, "2027年第2季度", "Q2 2027"),
        # 17:05 UTC on 2 December is 01:05 on 3 December in Shanghai
        (
            "{{ v | datetime(tz) }}",
            {"v": "2026-12-02T17:05:00+00:00", "tz": "Asia/Shanghai"},
            "2026年12月3日 01:05",
            "3 Dec 2026 01:05",
        ),
        (
            "{{ v | date(tz) }}",
            {"v": datetime(2026, 12, 2, 17, 5, tzinfo=UTC), "tz": "Asia/Shanghai"},
            "2026年12月3日",
            "3 Dec 2026",
        ),
        (  # a naive time is UTC, shown in the default zone
            "{{ v | datetime }}",
            {"v": datetime(2026, 12, 2, 17, 5)},
            "2026年12月3日 01:05",
            "3 Dec 2026 01:05",
        ),
        (
            "{{ v | datetime(tz) }}",
            {"v": "2026-12-02T17:05:00+00:00", "tz": "Europe/London"},
            "2026年12月2日 17:05",
            "2 Dec 2026 17:05",
        ),
        ("[{{ v | date }}]", {"v": None}, "[]", "[]"),
    ],
)
def test_filters_in_both_locales(cat, source, context, zh, en):
    assert show(cat, source, "zh_CN", **context) == zh
    assert show(cat, source, "en", **context) == en


def test_a_message_formats_in_its_own_locale(cat):
    ctx = {"value": "2026-11-30"}
    assert cat.render("pledge.date", "zh_CN", **ctx) == "2026年11月30日"
    assert cat.render("pledge.date", "en", **ctx) == "30 Nov 2026"


def test_no_catalog_shows_a_date_or_time_raw(cat):
    """Every date-like value in a message goes through a filter (no ISO text to people)."""
    raw = []
    for locale in LOCALES:
        for key, source in cat.messages[locale].items():
            for m in RAW.finditer(source):
                name = m.group(1).split(".")[-1]
                if TIME_NAMES.search(name) and not name.endswith("_day") and name != "done_month":
                    raw.append(f"{locale}:{key}: {m.group(0)}")
    assert not raw, "\n".join(raw)
