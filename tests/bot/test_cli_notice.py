"""``pledgebot notice send``: queues through the campaign function, a re-run sends nothing twice."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from bot.cli import main
from campaign.db import Store
from models import Account
from tests.conftest import bind_everyone, seed_people


@pytest.fixture
async def db(tmp_path, monkeypatch):
    path = tmp_path / "cli.db"
    store = Store(f"sqlite:///{path}")
    await store.migrate()
    people = await seed_people(store)
    async with store.write() as s:
        bind_everyone(s, people)
        s.add(Account(platform="x", external_id="x", chat_id="x", member_id=people.ids["member"]))
    await store.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    (tmp_path / "notice.txt").write_text("各村于月底前完成自查。\n", encoding="utf-8")
    (tmp_path / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    return path


def _rows(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_send_queues_once_with_the_attachment(db):
    args = ["notice", "send", "--org", "陇南市/武都区/城关镇", "--file", "notice.txt"]
    args += ["--attach", "chart.png", "--no-wait"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "公告第1号已排队：4 人，5 条" in result.output
    rows = _rows(db, "SELECT payload FROM outbox WHERE dedup_key LIKE 'notice:1:%'")
    assert len(rows) == 5 and all('"stored"' in p and '"photo"' in p for (p,) in rows)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "已经发过（第1号）" in again.output
    assert len(_rows(db, "SELECT id FROM outbox")) == 5
    assert len(_rows(db, "SELECT id FROM storedfile")) == 1


def test_bad_input_changes_nothing(db):
    cases = [
        (["--org", "陇南市/不存在", "--file", "notice.txt"], "没有这个党组织"),
        (["--org", "陇南市", "--audience", "all", "--file", "notice.txt"], "发送范围只能是"),
        (["--org", "陇南市", "--file", "missing.txt"], "读不了文件"),
        (
            [
                "--org",
                "陇南市/武都区/城关镇",
                "--audience",
                "org:陇南市/武都区",
                "--file",
                "notice.txt",
            ],
            "只能向您本级及下级",
        ),
    ]
    for args, said in cases:
        result = CliRunner().invoke(main, ["notice", "send", *args, "--no-wait"])
        assert result.exit_code == 1 and said in result.output, result.output
    assert _rows(db, "SELECT count(*) FROM outbox") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM notice") == [(0,)]


def test_the_bar_follows_until_everything_is_delivered(db):
    # nothing delivers here: a short timeout returns with the figures and what waits
    args = ["notice", "send", "--org", "陇南市/武都区/城关镇/东江村党支部", "--file", "notice.txt"]
    result = CliRunner().invoke(main, [*args, "--timeout", "0"])
    assert result.exit_code == 0, result.output
    assert "待发 4" in result.output and "pledgebot run" in result.output
