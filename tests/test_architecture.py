"""The layout is the architecture: imports flow one way, and frameworks stay at the edge."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "templates": set(),
    "models": set(),
    "campaign": {"models", "templates"},
    "handlers": {"models", "campaign", "templates"},
    "reminders": {"models", "campaign", "templates"},
    "reports": {"models", "campaign", "templates"},
    "bot": {"models", "campaign", "handlers", "reminders", "reports", "templates"},
}
FRAMEWORKS = {"aiogram", "telegram", "smpplib"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def _files(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def test_layers_import_one_way():
    ours = set(LAYERS)
    bad = []
    for package, allowed in LAYERS.items():
        for path in _files(package):
            for line, name in _imports(path):
                if name in ours and name != package and name not in allowed:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "imports against the flow of DESIGN.md:\n" + "\n".join(bad)


def test_frameworks_only_in_bot():
    bad = []
    for package in LAYERS:
        if package == "bot":
            continue
        for path in _files(package):
            for line, name in _imports(path):
                if name in FRAMEWORKS:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "aiogram/telegram/smpplib outside bot/:\n" + "\n".join(bad)


def test_nothing_imports_bot():
    bad = []
    for package in LAYERS:
        if package == "bot":
            continue
        for path in _files(package):
            bad += [f"{path.relative_to(ROOT)}:{ln}" for ln, n in _imports(path) if n == "bot"]
    assert not bad, "bot/ is imported by: " + ", ".join(bad)


def test_the_checker_sees_a_violation(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import aiogram\nfrom bot.cli import main\nfrom .y import z\n")
    assert [n for _, n in _imports(sample)] == ["aiogram", "bot"]
