"""The console waits out a busy store instead of losing the typed line or apologising."""

from __future__ import annotations

import asyncio
import io
import sqlite3

import bot.console
import campaign.db
from bot.compose import build_services
from bot.console import ConsoleSession
from bot.settings import Settings
from templates import catalog


async def _console(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign.db, "SQLITE_BUSY_MS", 100)
    path = tmp_path / "console.db"
    services = await build_services(Settings(database_url=f"sqlite:///{path}", _env_file=None))
    out = io.StringIO()
    return services, ConsoleSession(services, out=out), out, path


async def test_a_line_typed_while_the_store_is_locked_is_handled_once_after(tmp_path, monkeypatch):
    services, console, out, path = await _console(tmp_path, monkeypatch)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        typing = asyncio.create_task(console.feed("/help"))
        await asyncio.sleep(0.8)
        assert not typing.done()
        holder.execute("ROLLBACK")
        await asyncio.wait_for(typing, 10)
    finally:
        holder.close()
        await services.close()
    text = out.getvalue()
    assert text.count(catalog().render("console.store_busy", "zh_CN")) == 1
    assert catalog().render("error.unexpected", "zh_CN") not in text
    assert "/help" in text.split("👤 /help", 1)[1]  # the help text came after all


async def test_the_console_gives_a_line_up_after_its_patience(tmp_path, monkeypatch):
    monkeypatch.setattr(bot.console, "STORE_PATIENCE", 0.4)
    services, console, out, path = await _console(tmp_path, monkeypatch)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        assert await asyncio.wait_for(console.feed("/help"), 10)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await services.close()
    assert catalog().render("console.store_gave_up", "zh_CN") in out.getvalue()
