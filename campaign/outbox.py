"""Queue messages in the outbox, inside the transaction of the change that causes them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, channels
from models.base import utcnow
from models.dialog import Outbox, Priority
from models.org import Account, Channel, Member
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
    and ``notify_member`` sends along it. Bound accounts are the routes, unless the member's
    channel (``campaign.channels``) says SMS, or says auto and nothing is bound: then their
    roster number by SMS, when this deployment sends SMS. Opted out: no route at all.
    """
    ids = list(dict.fromkeys(member_ids))
    routes: dict[int, list[Route]] = {m: [] for m in ids}
    sms_on = channels.sms_enabled(session)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = (
            await session.exec(
                select(
                    Member.id,
                    Member.phone,
                    Member.channel,
                    Member.active,
                    Account.platform,
                    Account.chat_id,
                    Account.locale,
                )
                .select_from(Member)
                .outerjoin(
                    Account,
                    and_(
                        col(Account.member_id) == Member.id,
                        col(Account.active) == True,  # noqa: E712
                        col(Account.platform) != channels.SMS,
                    ),
                )
                .where(col(Member.id).in_(chunk))
                .order_by(col(Member.id), col(Account.id))
            )
        ).all()
        people: dict[int, tuple[str, Channel, bool]] = {}
        bound: dict[int, list[Route]] = {m: [] for m in chunk}
        for member_id, phone, channel, active, platform, chat_id, locale in rows:
            people[member_id] = (phone, Channel(channel), active)
            if platform is not None:
                bound[member_id].append(Route(platform, chat_id, locale))
        # SMS is looked at only for those it may reach: chosen, or automatic and unbound
        wanted = {
            m: phone
            for m, (phone, channel, active) in people.items()
            if sms_on
            and active
            and phone
            and (channel is Channel.SMS or (channel is Channel.AUTO and not bound[m]))
        }
        locales = await channels.member_locales(session, wanted) if wanted else {}
        for member_id, (_, channel, _) in people.items():
            sms = None
            if member_id in wanted:
                sms = Route(channels.SMS, wanted[member_id], locales[member_id])
            routes[member_id] = channels.choose(channel, bound[member_id], sms)
    return routes


async def notify_member(
    session: AsyncSession,
    member_id: int,
    reply: Reply,
    *,
    key: str | None = None,
    priority: int = Priority.NOTICE,
) -> list[int]:
    """Queue a message to a member along each of their routes, in each route's language.

    By SMS the reply becomes its SMS wording (``channels.sms_reply``); a kind of message that
    has none is not sent by SMS.
    """
    ids = []
    for route in (await member_routes(session, [member_id]))[member_id]:
        message: Reply | None = reply
        if route.platform == channels.SMS:
            message = channels.sms_reply(reply)
            if message is None:
                continue
        row_id = await enqueue(
            session,
            platform=route.platform,
            chat_id=route.chat_id,
            reply=message,
            locale=route.locale,
            key=f"{key}:{route.platform}:{route.chat_id}" if key else None,
            priority=priority,
        )
        if row_id is not None:
            ids.append(row_id)
    return ids


async def queued_before(session: AsyncSession, member_id: int, key: str) -> tuple[int, bool]:
    """Return how many routes a member has, and whether ``key`` was queued along one."""
    routes = (await member_routes(session, [member_id]))[member_id]
    keys = [f"{key}:{r.platform}:{r.chat_id}" for r in routes]
    if not keys:
        return 0, False
    found = await session.exec(select(Outbox.id).where(col(Outbox.dedup_key).in_(keys)).limit(1))
    return len(keys), found.first() is not None


async def after_blocked(session: AsyncSession, row_id: int, *, now: datetime | None = None) -> int:
    """The platform says the person blocked the bot: end that binding, send the row by SMS once.

    Called by the delivery worker for a row that failed with ``blocked`` (Telegram's 403). The
    accounts of that chat are marked inactive (``end_reason`` blocked, audited); the member is
    then routed afresh, and when that gives an SMS route and the message has an SMS wording,
    the same message is queued by SMS — under the dedup key the SMS of the same cause would have
    had, so it is never queued twice, whichever path queues it first.

    Returns:
        How many rows were queued (0 or 1).
    """
    now = now or utcnow()
    row = await session.get(Outbox, row_id)
    if row is None:
        return 0
    accounts = (
        await session.exec(
            select(Account)
            .where(Account.platform == row.platform, Account.chat_id == row.chat_id)
            .order_by(col(Account.id).desc())
        )
    ).all()
    for account in accounts:
        if account.active:
            account.active = False
            account.ended_at = now
            account.end_reason = "blocked"
            session.add(account)
            await session.flush()
            await audit.record(
                session,
                "account.blocked",
                actor=None,
                subject=f"member:{account.member_id}",
                payload={"platform": account.platform, "external_id": account.external_id},
                at=now,
            )
    if not accounts or row.kind != "message":
        return 0
    latest = max(accounts, key=lambda a: a.bound_at)
    message = channels.sms_reply(Reply.from_payload(row.payload))
    if message is None:
        return 0
    suffix = f":{row.platform}:{row.chat_id}"
    base = row.dedup_key or ""
    base = base[: -len(suffix)] if base.endswith(suffix) else f"blocked:{row.id}"
    queued = 0
    for route in (await member_routes(session, [latest.member_id]))[latest.member_id]:
        if route.platform != channels.SMS:
            continue
        queued += (
            await enqueue(
                session,
                platform=route.platform,
                chat_id=route.chat_id,
                reply=message,
                locale=route.locale,
                key=f"{base}:{route.platform}:{route.chat_id}",
                priority=row.priority,
            )
            is not None
        )
    return queued
