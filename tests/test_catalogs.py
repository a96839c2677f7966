"""Every message exists in zh_CN and en, and every template compiles."""

import ast
import re
from pathlib import Path

import pytest

from templates import LOCALES, Catalog

ROOT = Path(__file__).resolve().parent.parent
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def cat():
    return Catalog()


def test_same_keys_in_every_locale(cat):
    zh, en = cat.keys("zh_CN"), cat.keys("en")
    assert not zh - en, f"missing in en: {sorted(zh - en)}"
    assert not en - zh, f"missing in zh_CN: {sorted(en - zh)}"


def test_every_template_compiles(cat):
    for locale in LOCALES:
        for key in cat.keys(locale):
            cat.template(key, locale)


def test_en_has_no_untranslated_chinese(cat):
    allowed = {"lang.name.zh_CN", "command.lang", "lang.unknown"}
    leftovers = [
        k for k in cat.keys("en") if k not in allowed and HAN.search(cat.messages["en"][k])
    ]
    assert not leftovers, f"Chinese text in the en catalog: {leftovers}"


def _message_like_strings(path: Path) -> list[str]:
    """Return the string constants of a module that could be message keys.

    Left out: ``foreign_key=`` values and the event kind of ``audit.record(session, kind)``,
    which look like keys but name tables and audit events.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # pieces of an f-string are no keys by themselves
            skip.update(id(sub) for sub in ast.walk(node))
        if isinstance(node, ast.keyword) and node.arg == "foreign_key":
            skip.add(id(node.value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "record"
            and len(node.args) >= 2
        ):
            for sub in ast.walk(node.args[1]):
                skip.add(id(sub))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def test_keys_used_in_code_exist(cat):
    """A message key written in Python code must be in the catalogs."""
    namespaces = {k.split(".")[0] for k in cat.keys("zh_CN")}
    pattern = re.compile(r"^[a-z_]+(?:\.[a-z_0-9]+)+$")
    missing = []
    for package in ("handlers", "campaign", "bot", "models", "reminders", "reports"):
        for path in (ROOT / package).rglob("*.py"):
            for text in _message_like_strings(path):
                if pattern.match(text) and text.split(".")[0] in namespaces and not cat.has(text):
                    missing.append(f"{path.name}: {text}")
    assert not missing, sorted(set(missing))
