"""Public notices (公告): who may send one, to whom, the preview, the queue and the figures.

An office (创先办), a reviewer or a secretary writes a notice to an audience inside their own
subtree: every member, the secretaries only, the linked groups, or every member of one
organization below. The channels of each member are ``outbox.member_routes``' to decide (the one
routing function); the preview counts them, the queue follows them (``outbox.notify_member``).

Every recipient row carries the dedup key ``notice:<id>:…``: a double tap of 确认, a second
process or a re-run of the command line queues nothing twice, and the figures (送达 / 待发 /
无法送达 / 短信) are read back from those rows. Rows go at broadcast priority, so a reply to
someone talking to the bot takes the next token (``bot.ratelimit``'s priority gate). The
sender's message is edited in place by ``advance`` (a short loop of the running bot calls it):
an edit is queued only when the figures changed, under a key per step, and the summary once all
rows are delivered or given up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import channels, fit, outbox
from campaign.access import Actor
from models.base import utcnow
from models.dialog import Outbox, OutboxStatus, Priority
from models.errors import DomainError
from models.notice import Audience, Notice
from models.org import GroupLink, Member, Org, Role, RoleGrant
from models.reply import Attachment, Reply
from models.sms import SmsSent, SmsStatus

#: the roles that may send a notice, each to its own subtree
SENDER_ROLES = (Role.OFFICE, Role.REVIEWER, Role.SECRETARY)
#: what a member receives (an SMS recipient gets ``sms.notice.text``, the SMS wording)
TEMPLATE = "notice.text"
#: channels the preview and the figures name; any other platform counts as ``other``
CHANNELS = ("telegram", "sms", "group", "other")
#: notices whose progress one ``advance`` looks at
ADVANCE_BATCH = 50
#: outbox rows per insert statement when a notice is queued
QUEUE_CHUNK = 1000
#: a photo or a document attached from the command line
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024


def key_prefix(notice_id: int) -> str:
    """Return the dedup-key prefix of a notice's recipient rows."""
    return f"notice:{notice_id}:"


# -- who may send, and where ----------------


def may_send(actor: Actor | None) -> bool:
    """Tell whether the person may send notices at all (office, reviewer or secretary)."""
    return actor is not None and any(actor.has(r) for r in SENDER_ROLES)


def scope_ids(actor: Actor) -> list[int]:
    """Return the organizations whose subtree the actor may address, broadest grant first."""
    grants = sorted(
        (g for g in actor.grants if g.role in SENDER_ROLES), key=lambda g: len(g.org_path)
    )
    kept: list[tuple[int, str]] = []
    for g in grants:
        if not any(g.org_path.startswith(path) for _, path in kept):
            kept.append((g.org_id, g.org_path))
    return [org_id for org_id, _ in kept]


def within(actor: Actor | None, org: Org) -> bool:
    """Tell whether an organization lies in the subtree of one of the actor's sending grants."""
    if actor is None:
        return False
    return any(g.role in SENDER_ROLES and org.path.startswith(g.org_path) for g in actor.grants)


# -- the audience and the preview ----------------


@dataclass
class Plan:
    """Who a notice would reach, and on which channels.

    Attributes:
        members: member ids of the audience (empty for ``groups``).
        routes: each member's routes (``outbox.member_routes``).
        groups: linked group chats ``(platform, chat_id)`` of the audience's organizations.
        channels: messages per channel (``telegram``, ``sms``, ``group``, ``other``).
        unreachable: members with no channel at all.
    """

    scope: Org
    target: Org
    audience: Audience
    members: list[int] = field(default_factory=list)
    routes: dict[int, list[outbox.Route]] = field(default_factory=dict)
    groups: list[tuple[str, str]] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    unreachable: int = 0

    @property
    def messages(self) -> int:
        """Return the messages the notice would queue."""
        return sum(self.channels.values())

    def context(self) -> dict[str, Any]:
        """Return the preview's figures, JSON-friendly."""
        return {
            "org": self.target.name,
            "scope": self.scope.name,
            "audience": self.audience.value,
            "members": len(self.members),
            "unreachable": self.unreachable,
            "messages": self.messages,
            **{c: self.channels.get(c, 0) for c in CHANNELS},
        }


def channel_of(platform: str) -> str:
    """Return the channel a member route's platform counts under."""
    return platform if platform in ("telegram", "sms") else "other"


async def subtree_members(session: AsyncSession, org: Org) -> list[int]:
    """Return the active members of an organization and everything below it."""
    rows = await session.exec(
        select(Member.id)
        .join(Org, col(Org.id) == Member.org_id)
        .where(col(Org.path).startswith(org.path), Member.active == True)  # noqa: E712
        .order_by(col(Member.id))
    )
    return list(rows.all())


async def subtree_secretaries(session: AsyncSession, org: Org) -> list[int]:
    """Return the active secretaries of the organizations in a subtree."""
    rows = await session.exec(
        select(RoleGrant.member_id)
        .join(Org, col(Org.id) == RoleGrant.org_id)
        .join(Member, col(Member.id) == RoleGrant.member_id)
        .where(
            RoleGrant.role == Role.SECRETARY,
            col(Org.path).startswith(org.path),
            Member.active == True,  # noqa: E712
        )
        .order_by(col(RoleGrant.member_id))
    )
    return list(dict.fromkeys(rows.all()))


async def subtree_groups(session: AsyncSession, org: Org) -> list[tuple[str, str]]:
    """Return every group linked to an organization of the subtree (any platform)."""
    rows = await session.exec(
        select(GroupLink.platform, GroupLink.chat_id)
        .join(Org, col(Org.id) == GroupLink.org_id)
        .where(col(Org.path).startswith(org.path))
        .order_by(col(GroupLink.id))
    )
    return list(dict.fromkeys((p, c) for p, c in rows.all()))


async def resolve(
    session: AsyncSession,
    actor: Actor | None,
    scope_org_id: int,
    audience: Audience,
    org_id: int | None = None,
) -> Plan:
    """Return the plan of a notice: its audience inside the sender's subtree, per channel.

    ``actor`` None is the office at the command line, trusted with any subtree.

    Raises:
        DomainError: ``notice.forbidden`` outside the sender's subtree, ``notice.no_org``.
    """
    scope = await session.get(Org, scope_org_id)
    if scope is None:
        raise DomainError("notice.no_org")
    if actor is not None and not within(actor, scope):
        raise DomainError("notice.forbidden")
    target = scope
    if audience is Audience.ORG:
        target = await session.get(Org, org_id) if org_id is not None else None
        if target is None:
            raise DomainError("notice.no_org")
        if not target.path.startswith(scope.path):
            raise DomainError("notice.forbidden")
    plan = Plan(scope=scope, target=target, audience=audience)
    if audience is Audience.GROUPS:
        plan.groups = await subtree_groups(session, target)
    elif audience is Audience.SECRETARIES:
        plan.members = await subtree_secretaries(session, target)
    else:
        plan.members = await subtree_members(session, target)
    plan.routes = await outbox.member_routes(session, plan.members)
    channels = dict.fromkeys(CHANNELS, 0)
    for member_id in plan.members:
        routes = plan.routes.get(member_id, [])
        if not routes:
            plan.unreachable += 1
        for route in routes:
            channels[channel_of(route.platform)] += 1
    channels["group"] = len(plan.groups)
    plan.channels = channels
    return plan


# -- the text ----------------


def max_text(org: str = "") -> int:
    """Return the longest notice text that still fits one message in every language."""
    return fit.TEXT_LIMIT - fit.longest(TEMPLATE, {"org": org, "text": ""})


def check_text(text: str | None, *, org: str = "") -> str:
    """Return the notice's text, stripped, or refuse it with a clear answer.

    Raises:
        DomainError: ``notice.empty``, or ``notice.too_long`` with the limit.
    """
    text = (text or "").strip()
    if not text:
        raise DomainError("notice.empty")
    limit = max_text(org)
    if fit.length(text) > limit:
        raise DomainError("notice.too_long", limit=limit, length=fit.length(text))
    return text


def token_for(*parts: Any) -> str:
    """Return a notice token from what identifies it (the command line: org, audience, text)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"h:{digest[:64]}"


# -- queueing ----------------


async def find(session: AsyncSession, token: str) -> Notice | None:
    """Return the notice already made under ``token``, if any."""
    return (await session.exec(select(Notice).where(Notice.token == token))).first()


def member_reply(notice: Notice, org_name: str) -> Reply:
    """Return what every recipient gets: the notice, signed by the sending organization."""
    att = Attachment(**notice.attachment) if notice.attachment else None
    return Reply(TEMPLATE, {"org": org_name, "text": notice.text}, attachment=att)


async def send(
    session: AsyncSession,
    actor: Actor | None,
    *,
    token: str,
    scope_org_id: int,
    audience: Audience,
    text: str,
    org_id: int | None = None,
    attachment: Attachment | None = None,
    chat: tuple[str, str, str | None, str] | None = None,
    now: datetime | None = None,
) -> tuple[Notice, bool]:
    """Make the notice and queue one message per recipient and route; idempotent by token.

    ``chat`` is the sender's ``(platform, chat_id, message_id, locale)``: the message edited in
    place as delivery goes. Returns the notice and whether it was made now (False: it already
    existed under that token and nothing more was queued).
    """
    existing = await find(session, token)
    if existing is not None:
        return existing, False
    plan = await resolve(session, actor, scope_org_id, audience, org_id)
    text = check_text(text, org=plan.scope.name)
    platform, chat_id, message_id, locale = chat or (None, None, None, "zh_CN")
    notice = Notice(
        token=token,
        sender_member_id=actor.member_id if actor is not None else None,
        scope_org_id=plan.scope.id,
        org_id=plan.target.id,
        audience=audience,
        text=text,
        attachment=(
            {k: v for k, v in vars(attachment).items() if v is not None} if attachment else None
        ),
        members=len(plan.members),
        unreachable=plan.unreachable,
        planned=plan.context(),
        platform=platform,
        chat_id=chat_id,
        message_id=message_id,
        locale=locale,
        confirmed_at=now or utcnow(),
    )
    session.add(notice)
    await session.flush()
    reply = member_reply(notice, plan.scope.name)
    ids = await _queue(session, notice, plan, reply, locale)
    notice.first_outbox_id = min(ids) if ids else None
    notice.last_outbox_id = max(ids) if ids else None
    session.add(notice)
    await session.flush()
    return notice, True


async def _queue(
    session: AsyncSession, notice: Notice, plan: Plan, reply: Reply, locale: str
) -> list[int]:
    """Queue one row per member route and per linked group, many rows per statement.

    The rows are what ``outbox.notify_member`` writes for each member (the routes of
    ``member_routes``, the key ``<key>:<platform>:<chat>``, each route's language), with the SMS
    wording (``sms.notice.text``) on SMS routes as the SMS contract asks. They are written in
    chunks rather than one statement each, so confirming a city-wide notice holds the writer
    for a moment, and they stay off the reply path: the worker's loop sends them at broadcast
    priority under the platforms' limits.
    """
    prefix = key_prefix(notice.id)
    now = utcnow()
    sms_reply = channels.sms_reply(reply)  # the one swap notify_member makes too
    rows: list[dict[str, Any]] = []

    def row(platform: str, chat_id: str, message: Reply, lang: str, key: str) -> dict[str, Any]:
        return {
            "dedup_key": key,
            "platform": platform,
            "chat_id": chat_id,
            "kind": "message",
            "payload": {"locale": lang, **message.to_payload()},
            "priority": Priority.BROADCAST,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "not_before": now,
            "created_at": now,
        }

    for member_id in plan.members:
        for route in plan.routes.get(member_id, []):
            message = sms_reply if route.platform == "sms" else reply
            if message is None:
                continue
            key = f"{prefix}m:{member_id}:{route.platform}:{route.chat_id}"
            rows.append(row(route.platform, route.chat_id, message, route.locale, key))
    for platform, chat_id in plan.groups:
        rows.append(row(platform, chat_id, reply, locale, f"{prefix}g:{platform}:{chat_id}"))
    if not rows:
        return []
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    # ids come from a sequence: every row queued now lies above the largest id seen now
    before = (await session.exec(select(func.max(Outbox.id)))).one() or 0
    conn = await session.connection()
    for start in range(0, len(rows), QUEUE_CHUNK):
        stmt = insert(Outbox.__table__).on_conflict_do_nothing(index_elements=["dedup_key"])
        await conn.execute(stmt, rows[start : start + QUEUE_CHUNK])
    span = await session.exec(
        select(func.min(Outbox.id), func.max(Outbox.id)).where(
            col(Outbox.id) > before, col(Outbox.dedup_key).startswith(prefix)
        )
    )
    first, last = span.one()
    return [first, last] if first is not None else []


# -- figures and progress ----------------


async def figures(session: AsyncSession, notice: Notice) -> dict[str, Any]:
    """Return the notice's figures, read from its outbox rows.

    ``sent + pending + dead == messages``; ``telegram + sms + group + other == messages``;
    ``sms_sent`` of ``sms`` went out by SMS, ``sms_segments`` is what they cost (the parts the
    gateway bills) and ``sms_delivered`` how many the phones confirmed (delivery receipts);
    ``unreachable`` members had no channel.
    """
    out: dict[str, Any] = {
        "id": notice.id,
        "members": notice.members,
        "unreachable": notice.unreachable,
        "audience": notice.audience.value,
        "org": (notice.planned or {}).get("org", ""),
        "sent": 0,
        "pending": 0,
        "dead": 0,
        "messages": 0,
        "sms_sent": 0,
        "sms_segments": 0,
        "sms_delivered": 0,
        **dict.fromkeys(CHANNELS, 0),
    }
    if notice.first_outbox_id is not None:
        prefix = key_prefix(notice.id)
        is_group = case((col(Outbox.dedup_key).startswith(f"{prefix}g:"), 1), else_=0)
        rows = await session.exec(
            select(Outbox.platform, Outbox.status, is_group, func.count())
            .where(
                # from the first row on: a Telegram row refused with 403 is followed, later, by
                # its SMS (campaign.outbox.after_blocked, same key prefix), counted here too
                col(Outbox.id) >= notice.first_outbox_id,
                col(Outbox.dedup_key).startswith(prefix),
            )
            .group_by(Outbox.platform, Outbox.status, is_group)
        )
        for platform, status, group, count in rows.all():
            status = OutboxStatus(status)
            out[status.value] += count
            out["messages"] += count
            channel = "group" if group else channel_of(platform)
            out[channel] += count
            if channel == "sms" and status is OutboxStatus.SENT:
                out["sms_sent"] += count
        if out["sms_sent"]:
            cost = await session.exec(
                select(
                    func.coalesce(func.sum(SmsSent.segments), 0),
                    func.count(
                        func.distinct(
                            case((SmsSent.status == SmsStatus.DELIVERED, SmsSent.outbox_id))
                        )
                    ),
                )
                .join(Outbox, col(Outbox.id) == SmsSent.outbox_id)
                .where(
                    col(Outbox.id) >= notice.first_outbox_id,
                    Outbox.platform == "sms",
                    col(Outbox.dedup_key).startswith(prefix),
                )
            )
            out["sms_segments"], out["sms_delivered"] = cost.one()
    out["done"] = out["pending"] == 0
    return out


def progress_reply(notice: Notice, figs: dict[str, Any]) -> Reply:
    """Return the sender's message as it stands: progress, or the summary once done."""
    template = "notice.summary" if figs["done"] else "notice.progress"
    return Reply(template, figs, edit_message_id=notice.message_id)


def _step(figs: dict[str, Any]) -> str:
    return f"{figs['sent']}.{figs['pending']}.{figs['dead']}.{figs['sms_sent']}"


async def advance(session: AsyncSession, *, now: datetime | None = None) -> list[int]:
    """Edit the senders' messages of notices under way where the figures changed.

    Each edit is queued under a key per notice and step, so two processes or a restart queue
    no edit twice; a notice all of whose rows are delivered or given up gets its summary and
    is finished. Returns the outbox ids queued.
    """
    now = now or utcnow()
    notices = (
        await session.exec(
            select(Notice)
            .where(col(Notice.finished_at).is_(None), col(Notice.confirmed_at).is_not(None))
            .order_by(col(Notice.id))
            .limit(ADVANCE_BATCH)
        )
    ).all()
    ids: list[int] = []
    for notice in notices:
        figs = await figures(session, notice)
        step = _step(figs)
        if step == notice.step and not figs["done"]:
            continue
        notice.step = step
        if figs["done"]:
            notice.finished_at = now
        session.add(notice)
        if notice.platform and notice.chat_id and notice.message_id:
            row_id = await outbox.enqueue(
                session,
                platform=notice.platform,
                chat_id=notice.chat_id,
                reply=progress_reply(notice, figs),
                locale=notice.locale,
                key=f"notice-edit:{notice.id}:{'done' if figs['done'] else step}",
                priority=Priority.NOTICE,
            )
            if row_id is not None:
                ids.append(row_id)
    await session.flush()
    return ids


async def sent_by(session: AsyncSession, member_id: int, limit: int = 10) -> list[Notice]:
    """Return the notices a person sent, newest first."""
    rows = await session.exec(
        select(Notice)
        .where(Notice.sender_member_id == member_id)
        .order_by(col(Notice.id).desc())
        .limit(limit)
    )
    return list(rows.all())


def excerpt(text: str, chars: int = 40) -> str:
    """Return the start of a notice's text on one line, for lists."""
    return fit.clip(" ".join(text.split()), chars)
