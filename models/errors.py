"""Domain errors: each carries a message key that the adapters render in the user's language."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the user should hear about, in words from the catalog.

    Args:
        key: message key in the catalogs, e.g. ``error.stale_card``.
        **context: values the message template may use.
    """

    def __init__(self, key: str, **context: Any) -> None:
        super().__init__(key)
        self.key = key
        self.context = context
