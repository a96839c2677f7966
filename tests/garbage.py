"""Scan every text column of every table for characters the normalizer never lets through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import JSON, Enum, String, Text, TypeDecorator, select
from sqlmodel import SQLModel

import models  # noqa: F401  (every table registered)
from campaign.db import Store
from models.text import is_forbidden


def bad_chars(text: str) -> list[str]:
    """Return the forbidden characters in ``text`` (controls but newline/tab, bidi, invisible)."""
    return [f"U+{ord(c):04X}" for c in text if is_forbidden(c)]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _texty(kind: Any) -> bool:
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, String | Text | JSON) and not isinstance(kind, Enum)


async def garbage(store: Store) -> list[tuple[str, str, str]]:
    """Return (table, column, value) for every stored text holding a forbidden character."""
    found: list[tuple[str, str, str]] = []
    async with store.read() as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if _texty(c.type)]
            if not columns:
                continue
            rows = (await session.exec(select(*columns))).all()
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str) and isinstance(column.type, JSON):
                        value = json.loads(value)
                    for text in _strings(value):
                        if bad_chars(text):
                            found.append((table.name, column.name, repr(text)[:120]))
    return found
