"""Word lists people type (request phrases, standing-duty phrases, date words), as data.

Each ``lexicon/<locale>/<name>.toml`` holds lists of phrases under keys. Input is matched
against every locale at once: a person whose interface is English may still type Chinese.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent


@cache
def lexicon(name: str) -> dict[str, tuple[str, ...]]:
    """Return one word list, key → phrases, merged over every locale (zh_CN first)."""
    merged: dict[str, list[str]] = {}
    for folder in sorted(p for p in HERE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        path = folder / f"{name}.toml"
        if not path.exists():
            continue
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        for key, phrases in data.items():
            bucket = merged.setdefault(key, [])
            bucket.extend(p for p in phrases if p not in bucket)
    if not merged:
        raise FileNotFoundError(f"no lexicon {name!r}")
    return {key: tuple(phrases) for key, phrases in merged.items()}
