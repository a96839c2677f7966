"""Group robots of WeCom, DingTalk and Feishu: link one to an organization, list, remove, break.

A robot link is a ``GroupLink`` whose platform is a robot kind; its webhook URL and signing
secret live sealed in ``RobotHook`` (Fernet, with a key the composition root derives, never a
constant of the code). Lists show only a masked hint of the URL. When a robot answers that it
is revoked or that our signature is refused, ``mark_broken`` marks the link broken (it then
receives nothing: ``grouplink.groups_of`` skips it) and tells the organization's office once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, outbox, people
from models.base import utcnow
from models.errors import DomainError
from models.org import GroupLink, Org, Role
from models.reply import Reply
from models.robot import ROBOT_KINDS, RobotHook

#: the longest webhook URL and secret accepted
MAX_URL = 1024
MAX_SECRET = 256


def is_robot(platform: str) -> bool:
    """Tell whether a platform is a group robot (outbound only)."""
    return platform in ROBOT_KINDS


def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key[:32].ljust(32, b"\0")))


def seal(key: bytes, value: str) -> str:
    """Return ``value`` encrypted and authenticated with ``key`` (32 bytes)."""
    return _fernet(key).encrypt(value.encode()).decode() if value else ""


def unseal(key: bytes, sealed: str) -> str:
    """Return what ``seal`` sealed.

    Raises:
        DomainError: ``robot.unreadable`` when the key is not the one that sealed it.
    """
    if not sealed:
        return ""
    try:
        return _fernet(key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise DomainError("robot.unreadable") from exc


def fingerprint(key: bytes, url: str) -> str:
    """Return a keyed hash of a webhook URL: equal for the same robot, telling nothing of it."""
    return hmac.new(key, b"robot-url\0" + url.encode(), hashlib.sha256).hexdigest()[:64]


def mask(url: str) -> str:
    """Return a URL with its secret parts hidden: scheme, host and the last four characters."""
    parts = urlsplit(url)
    tail = url[-4:] if len(url) > 16 else ""
    return f"{parts.scheme}://{parts.netloc}/…{tail}"


@dataclass(frozen=True)
class RobotLink:
    """A robot link as the office sees it (never the URL in full)."""

    chat_id: str
    kind: str
    org: str
    title: str
    hint: str
    signed: bool
    linked_at: datetime | None
    broken_at: datetime | None
    broken_reason: str


@dataclass(frozen=True)
class Hook:
    """What a robot messenger needs to post: the webhook URL and the secret, in clear."""

    platform: str
    chat_id: str
    url: str
    secret: str
    broken: bool


async def _org_by_path(session: AsyncSession, path: str) -> Org:
    org = (await session.exec(select(Org).where(Org.full_name == path.strip().strip("/")))).first()
    if org is None:
        raise DomainError("robot.no_org", org=path)
    return org


def check(kind: str, webhook: str, secret: str) -> None:
    """Refuse a robot that cannot work, before anything is written.

    Raises:
        DomainError: ``robot.bad_kind``, ``robot.bad_url`` or ``robot.bad_secret``.
    """
    if kind not in ROBOT_KINDS:
        raise DomainError("robot.bad_kind", kind=kind, kinds=", ".join(ROBOT_KINDS))
    parts = urlsplit(webhook.strip())
    if (
        parts.scheme not in ("https", "http")
        or not parts.netloc
        or len(webhook) > MAX_URL
        or any(c.isspace() for c in webhook.strip())
    ):
        raise DomainError("robot.bad_url")
    if len(secret) > MAX_SECRET or any(c.isspace() or not c.isprintable() for c in secret):
        raise DomainError("robot.bad_secret")


async def add(
    session: AsyncSession,
    *,
    org_path: str,
    kind: str,
    webhook: str,
    secret: str,
    key: bytes,
    title: str = "",
    now: datetime | None = None,
) -> RobotLink:
    """Link a robot to an organization (the office, from the command line); audited.

    Raises:
        DomainError: as ``check``, ``robot.no_org`` or ``robot.duplicate`` (this webhook is
            linked already).
    """
    now = now or utcnow()
    webhook, secret = webhook.strip(), secret.strip()
    check(kind, webhook, secret)
    org = await _org_by_path(session, org_path)
    print_ = fingerprint(key, webhook)
    twin = (
        await session.exec(
            select(GroupLink, Org)
            .join(RobotHook, col(RobotHook.chat_id) == GroupLink.chat_id)
            .join(Org, col(Org.id) == GroupLink.org_id)
            .where(RobotHook.fingerprint == print_)
        )
    ).first()
    if twin is not None:
        raise DomainError("robot.duplicate", id=twin[0].chat_id, org=twin[1].full_name)
    chat_id = f"r{secrets.token_hex(6)}"
    link = GroupLink(
        platform=kind,
        chat_id=chat_id,
        org_id=org.id,
        title=(title or f"{org.name} {kind}")[:256],
        linked_by=None,
        linked_at=now,
    )
    hook = RobotHook(
        platform=kind,
        chat_id=chat_id,
        webhook=seal(key, webhook),
        secret=seal(key, secret),
        hint=mask(webhook),
        fingerprint=print_,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(link)
            session.add(hook)
            await session.flush()
    except IntegrityError as exc:  # the same robot added at the same moment elsewhere
        raise DomainError("robot.duplicate", id="", org=org.full_name) from exc
    await audit.record(
        session,
        "robot.linked",
        actor=None,
        subject=f"org:{org.id}",
        payload={"platform": kind, "chat_id": chat_id, "hint": hook.hint, "signed": bool(secret)},
        at=now,
    )
    return _view(link, hook, org)


def _view(link: GroupLink, hook: RobotHook, org: Org) -> RobotLink:
    return RobotLink(
        chat_id=link.chat_id,
        kind=link.platform,
        org=org.full_name,
        title=link.title,
        hint=hook.hint,
        signed=bool(hook.secret),
        linked_at=link.linked_at,
        broken_at=hook.broken_at,
        broken_reason=hook.broken_reason,
    )


async def links(session: AsyncSession, org_path: str | None = None) -> list[RobotLink]:
    """Return the robot links, of one organization or of all, in the order they were made."""
    query = (
        select(GroupLink, RobotHook, Org)
        .join(RobotHook, col(RobotHook.chat_id) == GroupLink.chat_id)
        .join(Org, col(Org.id) == GroupLink.org_id)
        .where(col(GroupLink.platform).in_(ROBOT_KINDS))
        .order_by(col(GroupLink.id))
    )
    if org_path:
        org = await _org_by_path(session, org_path)
        query = query.where(GroupLink.org_id == org.id)
    return [_view(link, hook, org) for link, hook, org in (await session.exec(query)).all()]


async def remove(session: AsyncSession, chat_id: str, *, now: datetime | None = None) -> RobotLink:
    """Remove a robot link and its sealed webhook; audited.

    Raises:
        DomainError: ``robot.unknown``.
    """
    now = now or utcnow()
    found = (
        await session.exec(
            select(GroupLink, RobotHook, Org)
            .join(RobotHook, col(RobotHook.chat_id) == GroupLink.chat_id)
            .join(Org, col(Org.id) == GroupLink.org_id)
            .where(GroupLink.chat_id == chat_id, col(GroupLink.platform).in_(ROBOT_KINDS))
        )
    ).first()
    if found is None:
        raise DomainError("robot.unknown", id=chat_id)
    link, hook, org = found
    view = _view(link, hook, org)
    await session.exec(delete(GroupLink).where(col(GroupLink.id) == link.id))
    await session.exec(delete(RobotHook).where(col(RobotHook.id) == hook.id))
    await audit.record(
        session,
        "robot.removed",
        actor=None,
        subject=f"org:{org.id}",
        payload={"platform": link.platform, "chat_id": chat_id},
        at=now,
    )
    return view


async def hook(session: AsyncSession, chat_id: str, key: bytes) -> Hook | None:
    """Return a robot link's webhook in clear, for sending (None: no such link).

    Raises:
        DomainError: ``robot.unreadable`` when the key is not the one that sealed it.
    """
    row = (await session.exec(select(RobotHook).where(RobotHook.chat_id == chat_id))).first()
    if row is None:
        return None
    return Hook(
        platform=row.platform,
        chat_id=row.chat_id,
        url=unseal(key, row.webhook),
        secret=unseal(key, row.secret),
        broken=row.broken_at is not None,
    )


async def offices_of(session: AsyncSession, org: Org) -> list[int]:
    """Return the office holders nearest above (or at) an organization."""
    current: Org | None = org
    while current is not None:
        found = await people.holders(session, Role.OFFICE, current.id)
        if found:
            return found
        current = await session.get(Org, current.parent_id) if current.parent_id else None
    return []


async def mark_broken(
    session: AsyncSession, chat_id: str, reason: str, *, now: datetime | None = None
) -> bool:
    """Mark a robot link broken and tell the office once; return whether this call marked it.

    Of simultaneous failures one marks the link (a conditional update) and queues the notice;
    the notice's dedup key is the link's, so the office hears of one broken robot once.
    """
    now = now or utcnow()
    marked = await session.exec(
        update(RobotHook)
        .where(col(RobotHook.chat_id) == chat_id, col(RobotHook.broken_at).is_(None))
        .values(broken_at=now, broken_reason=reason[:256])
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:
        return False
    link = (await session.exec(select(GroupLink).where(GroupLink.chat_id == chat_id))).first()
    if link is None:
        return True
    org = await session.get(Org, link.org_id)
    await audit.record(
        session,
        "robot.broken",
        actor=None,
        subject=f"org:{org.id}",
        payload={"platform": link.platform, "chat_id": chat_id, "reason": reason[:256]},
        at=now,
    )
    notice = Reply(
        "robot.broken_notice",
        {"org": org.name, "kind": f"robot.kind.{link.platform}", "id": chat_id, "reason": reason},
    )
    for member_id in await offices_of(session, org):
        await outbox.notify_member(
            session, member_id, notice, key=f"robot-broken:{chat_id}:{member_id}"
        )
    return True
