"""Message catalogs and document layouts: zh_CN first, en beside it.

Every user-facing string lives here. A catalog is every ``messages/<locale>/*.toml`` file merged;
each key maps to a jinja2 template string. Documents are ``documents/*.<locale>.j2``.
This package is a leaf: it imports nothing of ours, and every layer may use it.

Dates and times: never format them in Python and never show ISO text. Put the value in the
context (a ``date``/``datetime``, or its ISO text: ``2027-03-31``, ``2027-03``, or a datetime
with or without offset; a naive datetime is UTC, as the store keeps it) and format it in the
template with one of these filters, in the recipient's locale:

- ``{{ deadline | date }}`` → 2027年3月31日 / 31 Mar 2027
- ``{{ decided_at | datetime(tz) }}`` → 2026年12月3日 09:05 / 3 Dec 2026 09:05
- ``{{ "2027-03" | month }}`` → 2027年3月 / Mar 2027
- ``{{ "2027Q2" | quarter }}`` → 2027年第2季度 / Q2 2027

``tz`` is the campaign's ``timezone`` (put it in the context; ``campaign.timefmt`` helps); a
datetime shown by ``date`` takes it too (``{{ published_at | date(tz) }}``), since the day
depends on the zone. Without ``tz`` a datetime keeps its own offset, a naive one is shown in
Asia/Shanghai. An empty value renders as "". The patterns are the keys ``fmt.date``,
``fmt.datetime``, ``fmt.month`` and ``fmt.quarter`` (templates/messages/<locale>/review2.toml).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context

from templates import timefmt

HERE = Path(__file__).resolve().parent
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
TIME_FILTERS = ("date", "datetime", "month")  # each formats with the pattern ``fmt.<name>``
LOCALE_VAR = "_locale"  # the rendering locale, seen by the date filters


def normalize_locale(code: str | None) -> str:
    """Map a platform language code (``zh-hans``, ``en-US`` …) to one of ours."""
    if not code:
        return DEFAULT_LOCALE
    code = code.replace("-", "_").lower()
    if code.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


class MissingMessage(KeyError):
    """A key that no catalog defines: a programming error, caught by the catalog tests."""


def _load_catalog(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((HERE / "messages" / locale).glob("*.toml")):
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        for key, value in _flatten(data):
            if key in merged:
                raise ValueError(f"{path.name}: key {key!r} defined twice in {locale}")
            merged[key] = value
    return merged


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, full + "."))
        else:
            out.append((full, str(value)))
    return out


def plural(count: int, singular: str, many: str | None = None) -> str:
    """Return ``count`` with the noun in the right number: 1 item, 2 items, 3 people."""
    word = singular if count == 1 else (many or f"{singular}s")
    return f"{count} {word}"


class Catalog:
    """Render message keys and documents in one of the supported locales."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(HERE / "documents")),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # ``plural(n, "item")`` → "1 item", "3 items" (English; Chinese needs none)
        self.env.globals["plural"] = plural
        self.messages = {loc: _load_catalog(loc) for loc in LOCALES}
        self._compiled: dict[tuple[str, str], Template] = {}
        for name in TIME_FILTERS:
            self.env.filters[name] = self._time_filter(f"fmt.{name}")
        self.env.filters["quarter"] = self._quarter_filter

    def _time_filter(self, key: str):
        @pass_context
        def fmt(context: Context, value: Any, tz: str | None = None) -> str:
            locale = context.get(LOCALE_VAR, DEFAULT_LOCALE)
            return timefmt.format_as(key, value, tz, lambda k, **f: self.render(k, locale, **f))

        return fmt

    @pass_context
    def _quarter_filter(self, context: Context, value: str) -> str:
        locale = context.get(LOCALE_VAR, DEFAULT_LOCALE)
        return self.render("fmt.quarter", locale, **timefmt.quarter_fields(value))

    def format_time(
        self,
        value: Any,
        locale: str = DEFAULT_LOCALE,
        tz: str | None = None,
        kind: str = "datetime",
    ) -> str:
        """Format a date or time outside a template, as the ``date``/``datetime`` filters do."""
        return timefmt.format_as(
            f"fmt.{kind}", value, tz, lambda k, **f: self.render(k, locale, **f)
        )

    def keys(self, locale: str = DEFAULT_LOCALE) -> set[str]:
        """Return every message key of a locale."""
        return set(self.messages[locale])

    def has(self, key: str) -> bool:
        """Tell whether the default catalog defines ``key``."""
        return key in self.messages[DEFAULT_LOCALE]

    def template(self, key: str, locale: str) -> Template:
        """Return the compiled template of a key, falling back to the default locale."""
        locale = locale if locale in self.messages else DEFAULT_LOCALE
        cached = self._compiled.get((locale, key))
        if cached is not None:
            return cached
        source = self.messages[locale].get(key)
        if source is None:
            source = self.messages[DEFAULT_LOCALE].get(key)
        if source is None:
            raise MissingMessage(key)
        compiled = self.env.from_string(source)
        self._compiled[(locale, key)] = compiled
        return compiled

    def render(self, key: str, locale: str = DEFAULT_LOCALE, **context: Any) -> str:
        """Render one message key with its context."""
        template = self.template(key, locale)
        return template.render({LOCALE_VAR: locale}, t=self._translator(locale), **context).strip()

    def document(self, name: str, locale: str = DEFAULT_LOCALE, **context: Any) -> str:
        """Render a document layout ``documents/<name>.<locale>.j2``."""
        locale = locale if locale in self.messages else DEFAULT_LOCALE
        template = self.env.get_template(f"{name}.{locale}.j2")
        return template.render({LOCALE_VAR: locale}, t=self._translator(locale), **context)

    def _translator(self, locale: str):
        def t(key: str, **context: Any) -> str:
            return self.render(key, locale, **context)

        return t


@cache
def catalog() -> Catalog:
    """Return the process-wide catalog (read-only after loading)."""
    return Catalog()
