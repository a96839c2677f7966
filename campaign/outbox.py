"""Queue messages in the outbox, inside the transaction of the change that causes them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.base import utcnow
from models.dialog import Outbox, Priority
from models.org import Account
from models.reply import CommandMenu, Reply

#: ``session.info`` key of the ids queued in the session's transaction
QUEUED = "outbox_queued"


async def enqueue(
    session: AsyncSession,
    *,
    platform: str,
    chat_id: str,
    reply: Reply | CommandMenu,
    locale: str,
    key: str | None = None,
    priority: int = Priority.NOTICE,
    not_before: datetime | None = None,
) -> int | None:
    """Queue one message; with ``key``, a second message for the same cause is never queued.

    Returns:
        The outbox row id, or None when a row with the same key already exists.
    """
    if isinstance(reply, CommandMenu):
        kind = "commands"
    elif reply.edit_message_id:
        kind = "edit"
    else:
        kind = "message"
    payload = {"locale": locale, **reply.to_payload()}
    values = {
        "dedup_key": key,
        "platform": platform,
        "chat_id": chat_id,
        "kind": kind,
        "payload": payload,
        "priority": priority,
        "status": "pending",
        "attempts": 0,
        "not_before": not_before or utcnow(),
        "created_at": utcnow(),
    }
    dialect = session.bind.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Outbox).values(**values)
    if key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedup_key"])
    result = await session.exec(stmt.returning(Outbox.id))
    row_id = result.scalar_one_or_none()
    if row_id is not None:
        # The core delivers everything a handler queued as soon as the transaction commits.
        session.info.setdefault(QUEUED, []).append(row_id)
    return row_id


@dataclass(frozen=True)
class Route:
    """Where one message to a member goes: a platform, a chat there and the language."""

    platform: str
    chat_id: str
    locale: str


async def member_routes(
    session: AsyncSession, member_ids: Iterable[int]
) -> dict[int, list[Route]]:
    """Return, per member, the routes a message to that member takes (none: unreachable).

    The one place that decides a member's channels: notices count recipients per channel with it
    and ``notify_member`` sends along it.
    """
    ids = list(dict.fromkeys(member_ids))
    routes: dict[int, list[Route]] = {m: [] for m in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = (
            await session.exec(
                select(Account.member_id, Account.platform, Account.chat_id, Account.locale)
                .where(col(Account.member_id).in_(chunk), Account.active == True)  # noqa: E712
                .order_by(col(Account.id))
            )
        ).all()
        for member_id, platform, chat_id, locale in rows:
            routes[member_id].append(Route(platform, chat_id, locale))
    return routes


async def notify_member(
    session: AsyncSession,
    member_id: int,
    reply: Reply,
    *,
    key: str | None = None,
    priority: int = Priority.NOTICE,
) -> list[int]:
    """Queue a message to a member along each of their routes, in each route's language."""
    ids = []
    for route in (await member_routes(session, [member_id]))[member_id]:
        row_id = await enqueue(
            session,
            platform=route.platform,
            chat_id=route.chat_id,
            reply=reply,
            locale=route.locale,
            key=f"{key}:{route.platform}:{route.chat_id}" if key else None,
            priority=priority,
        )
        if row_id is not None:
            ids.append(row_id)
    return ids


async def queued_before(session: AsyncSession, member_id: int, key: str) -> tuple[int, bool]:
    """Return how many active accounts a member has, and whether ``key`` was queued to one."""
    accounts = (
        await session.exec(
            select(Account.platform, Account.chat_id).where(
                Account.member_id == member_id,
                Account.active == True,  # noqa: E712
            )
        )
    ).all()
    keys = [f"{key}:{platform}:{chat_id}" for platform, chat_id in accounts]
    if not keys:
        return 0, False
    found = await session.exec(select(Outbox.id).where(col(Outbox.dedup_key).in_(keys)).limit(1))
    return len(keys), found.first() is not None
