"""An update the store could not record is not handled, not apologised for, and comes again."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import func, select

import campaign.db
from campaign.db import Store, StoreUnavailable, is_unavailable
from handlers.app import build_core
from handlers.events import ButtonPressed, CommandReceived, Sender, TextReceived
from handlers.start import LangCb
from models import Outbox, ProcessedUpdate
from tests.conftest import PG_HOST, PG_PORT, PG_USER

SECRET = b"test-secret-test-secret-test-sec"


def sender(uid: str = "100") -> Sender:
    return Sender(platform="test", user_id=uid, chat_id=uid)


async def count(store: Store, model) -> int:
    async with store.read() as s:
        return (await s.exec(select(func.count()).select_from(model))).one()


async def test_locked_sqlite_raises_and_records_nothing_then_handles_once(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign.db, "SQLITE_BUSY_MS", 200)  # a short busy timeout for the test
    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}")
    await store.migrate()
    core = build_core(store, secret=SECRET)
    events = [
        CommandReceived(sender=sender(), command="help", update_id="1"),
        TextReceived(sender=sender(), text="你好", update_id="2"),
        ButtonPressed(sender=sender(), data=core.codec.encode(LangCb("en")), update_id="3"),
    ]
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        for event in events:
            with pytest.raises(StoreUnavailable):
                await core.handle(event)
        holder.execute("ROLLBACK")
        assert await count(store, ProcessedUpdate) == 0
        assert await count(store, Outbox) == 0  # no apology queued for an update still to come
        results = [await core.handle(event) for event in events]
        assert all(not r.duplicate for r in results)
        assert all(r.outbox_ids for r in results)  # each answered once it is recorded
        again = [await core.handle(event) for event in events]  # redelivered: no second effect
        assert all(r.duplicate and not r.outbox_ids for r in again)
        assert await count(store, ProcessedUpdate) == 3
        async with store.read() as s:
            templates = [str(o.payload) for o in (await s.exec(select(Outbox))).all()]
        assert not any("error.unexpected" in t for t in templates)
    finally:
        holder.close()
        await store.dispose()


async def test_unreachable_postgresql_raises_store_unavailable():
    store = Store("postgresql://postgres@127.0.0.1:9/nowhere")  # nothing listens on port 9
    core = build_core(store, secret=SECRET)
    try:
        with pytest.raises(StoreUnavailable):
            await core.handle(CommandReceived(sender=sender(), command="help", update_id="1"))
    finally:
        await store.dispose()


async def test_postgresql_connections_dropped_while_idle_cost_nothing(store):
    if store.is_sqlite:
        pytest.skip("PostgreSQL only")
    core = build_core(store, secret=SECRET)
    await core.handle(CommandReceived(sender=sender(), command="help", update_id="1"))
    async with store.read() as s:
        name = (await s.exec(text("SELECT current_database()"))).one()[0]
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="test")
    try:  # what the bot's pooled connections see when PostgreSQL restarts
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()
    handled = await core.handle(CommandReceived(sender=sender(), command="help", update_id="2"))
    assert handled.outbox_ids and not handled.duplicate
    assert await count(store, ProcessedUpdate) == 2


def test_what_counts_as_unavailable():
    locked = OperationalError(
        "BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")
    )
    assert is_unavailable(locked)
    assert is_unavailable(ConnectionResetError())
    assert is_unavailable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert is_unavailable(asyncpg.exceptions.CannotConnectNowError("the database is starting"))
    assert is_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert not is_unavailable(asyncpg.exceptions.UndefinedTableError("no such table"))
    no_table = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))
    assert not is_unavailable(no_table)  # a bug, not an outage
    assert not is_unavailable(IntegrityError("INSERT", {}, Exception("UNIQUE")))
    assert not is_unavailable(ValueError("bad"))
    assert not is_unavailable(FileNotFoundError("template"))
