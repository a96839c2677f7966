"""Shared fixtures: a real SQLite file, a real PostgreSQL database when one is running."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import date

import pytest

from bot.delivery import RenderedMenu, RenderedMessage
from campaign.db import Store
from models import Account, Campaign, Member, Org, OrgType, Role, RoleGrant

PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))
PG_USER = os.environ.get("PGUSER", "postgres")


def pg_available() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=0.5):
            return True
    except OSError:
        return False


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "pg"])
async def store(request, tmp_path):
    """A migrated store: a SQLite file, and (when running) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path}/test.db")
        await s.migrate()
        yield s
        await s.dispose()
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    name = f"pb_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f"CREATE DATABASE {name}")
    s = Store(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    try:
        await s.migrate()
        yield s
    finally:
        await s.dispose()
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def sqlite_store(tmp_path):
    """A migrated SQLite store only."""
    s = Store(f"sqlite:///{tmp_path}/test.db")
    await s.migrate()
    yield s
    await s.dispose()


@dataclass
class People:
    """A tiny tree: city → county → township → village branch, with one person per role."""

    ids: dict[str, int] = field(default_factory=dict)
    orgs: dict[str, int] = field(default_factory=dict)


async def seed_people(store: Store) -> People:
    """Create a small tree and its people directly (independent of the roster import)."""
    people = People()
    async with store.write() as s:
        parent = None
        path = "/"
        full = ""
        for depth, (key, name, typ) in enumerate(
            [
                ("city", "陇南市", OrgType.LEVEL),
                ("county", "武都区", OrgType.LEVEL),
                ("township", "城关镇", OrgType.ORGAN),
                ("village", "东江村党支部", OrgType.VILLAGE),
            ]
        ):
            full = f"{full}/{name}" if full else name
            org = Org(name=name, full_name=full, type=typ, parent_id=parent, depth=depth)
            s.add(org)
            await s.flush()
            path = f"{path}{org.id}/"
            org.path = path
            people.orgs[key] = org.id
            parent = org.id
        roles = {
            "member": ("张建国", "13800000001", "village", [Role.MEMBER]),
            "secretary": ("李书记", "13800000002", "village", [Role.MEMBER, Role.SECRETARY]),
            "peer": ("王党员", "13800000003", "village", [Role.MEMBER]),
            "reviewer": ("赵审核", "13800000004", "township", [Role.MEMBER, Role.REVIEWER]),
            "office": ("钱创先", "13800000005", "county", [Role.OFFICE]),
        }
        for key, (name, phone, org_key, grants) in roles.items():
            m = Member(name=name, phone=phone, org_id=people.orgs[org_key])
            s.add(m)
            await s.flush()
            people.ids[key] = m.id
            for role in grants:
                s.add(RoleGrant(member_id=m.id, role=role, org_id=people.orgs[org_key]))
    return people


@dataclass
class RecordingMessenger:
    """Stands in for a platform's outgoing side and keeps a transcript."""

    platform: str = "test"
    sent: list[tuple[str, RenderedMessage]] = field(default_factory=list)
    edits: list[tuple[str, RenderedMessage]] = field(default_factory=list)
    menus: list[tuple[str, RenderedMenu]] = field(default_factory=list)
    fail_with: list[Exception] = field(default_factory=list)

    async def send(self, chat_id: str, message: RenderedMessage) -> str:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append((chat_id, message))
        message_id = str(len(self.sent))  # before yielding: lanes send concurrently
        await asyncio.sleep(0)
        return message_id

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        self.edits.append((chat_id, message))

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        self.menus.append((chat_id, menu))

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for c, m in self.sent if chat_id is None or c == chat_id]


def a_campaign(people: People, year: int = 2026, starts_on: date | None = None) -> Campaign:
    """Return a campaign over the whole tree: pledging by April, items due by year end."""
    return Campaign(
        year=year,
        name=f"{year}年度公开承诺",
        root_org_id=people.orgs["city"],
        starts_on=starts_on or date(year, 3, 1),
        pledge_deadline=date(year, 4, 30),
        ends_on=date(year, 12, 31),
    )


def bind_everyone(session, people: People) -> None:
    """Give every seeded person an account on the ``t`` platform, chat id = their key."""
    for key, member_id in people.ids.items():
        session.add(Account(platform="t", external_id=key, chat_id=key, member_id=member_id))


async def sms_for(store: Store, member_ids: list[int]) -> None:
    """Turn SMS on and reach these members by SMS; others without an account get no channel.

    With SMS on, everyone unbound would be reached by SMS (channel ``auto``); tests that count
    channels pin the unbound people they do not mean as reachable to ``group`` (the office's
    own 微信群, no SMS).
    """
    from sqlmodel import col, select, update

    from models.org import Account, Channel, Member

    store.sms_enabled = True
    async with store.write() as s:
        bound = select(Account.member_id).where(Account.active == True)  # noqa: E712
        await s.exec(
            update(Member)
            .where(col(Member.id).not_in(bound), col(Member.id).not_in(member_ids))
            .values(channel=Channel.GROUP)
        )
        await s.exec(
            update(Member).where(col(Member.id).in_(member_ids)).values(channel=Channel.SMS)
        )


def another_writer_can_write(path: str) -> bool:
    """Return whether a second SQLite writer gets the lock now (``BEGIN IMMEDIATE``)."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # another writer: a member reporting meanwhile
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
