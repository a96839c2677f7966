"""Message catalogs and document layouts: zh_CN first, en beside it.

Every user-facing string lives here. A catalog is every ``messages/<locale>/*.toml`` file merged;
each key maps to a jinja2 template string. Documents are ``documents/*.<locale>.j2``.
This package is a leaf: it imports nothing of ours, and every layer may use it.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

HERE = Path(__file__).resolve().parent
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"


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
        return self.template(key, locale).render(t=self._translator(locale), **context).strip()

    def document(self, name: str, locale: str = DEFAULT_LOCALE, **context: Any) -> str:
        """Render a document layout ``documents/<name>.<locale>.j2``."""
        locale = locale if locale in self.messages else DEFAULT_LOCALE
        template = self.env.get_template(f"{name}.{locale}.j2")
        return template.render(t=self._translator(locale), **context)

    def _translator(self, locale: str):
        def t(key: str, **context: Any) -> str:
            return self.render(key, locale, **context)

        return t


@cache
def catalog() -> Catalog:
    """Return the process-wide catalog (read-only after loading)."""
    return Catalog()
