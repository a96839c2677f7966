"""The office's account commands: ``invite`` honours INVITE_TTL_DAYS, bad input changes nothing."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.settings import SettingsError, load_settings
from campaign.db import Store
from tests.conftest import seed_people


@pytest.fixture
async def db(tmp_path, monkeypatch):
    path = tmp_path / "cli.db"
    store = Store(f"sqlite:///{path}")
    await store.migrate()
    await seed_people(store)
    await store.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("BOT_USERNAME", "TestNameBot")
    return path


def _rows(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_invite_lasts_invite_ttl_days(db, monkeypatch):
    monkeypatch.setenv("INVITE_TTL_DAYS", "3")
    result = CliRunner().invoke(main, ["invite", "13800000001"])
    assert result.exit_code == 0, result.output
    assert "https://t.me/TestNameBot?start=inv_" in result.output
    ((created, expires),) = _rows(db, "SELECT created_at, expires_at FROM invite")
    span = datetime.fromisoformat(expires) - datetime.fromisoformat(created)
    assert span == timedelta(days=3)
    # a second link replaces the first, which is kept, revoked
    assert CliRunner().invoke(main, ["invite", "13800000001"]).exit_code == 0
    reasons = sorted(r for (r,) in _rows(db, "SELECT revoke_reason FROM invite"))
    assert reasons == ["", "reissued"]


def test_account_commands_refuse_bad_phones_and_change_nothing(db):
    before = _rows(db, "SELECT count(*) FROM auditevent")
    for command in ("invite", "accounts", "unbind"):
        result = CliRunner().invoke(main, ["--lang", "en", command, "12345"])
        assert result.exit_code == 1
        assert "not a valid 11-digit mobile number" in result.output
        result = CliRunner().invoke(main, [command, "13912345678"])
        assert result.exit_code == 1 and "花名册中没有手机号" in result.output
    assert _rows(db, "SELECT count(*) FROM auditevent") == before


def test_invite_ttl_days_must_be_positive(monkeypatch):
    monkeypatch.setenv("INVITE_TTL_DAYS", "0")
    with pytest.raises(SettingsError, match="INVITE_TTL_DAYS"):
        load_settings()
