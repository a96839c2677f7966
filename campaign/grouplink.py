"""Link a group chat to an organization as its display group, move it, unlink it.

Who may do it is ``access``'s to say; here the link is changed by a conditional update (of two
simultaneous changes one wins, the other is refused and changes nothing), audited, and the
organization that loses the group is told: its secretaries and whoever linked it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, outbox
from campaign.access import (
    Actor,
    linkable_orgs,
    may_administer_chat,
    may_link_group,
    may_unlink_group,
)
from models.base import utcnow
from models.errors import DomainError
from models.org import GroupLink, Org, Role, RoleGrant
from models.reply import Reply
from models.robot import ROBOT_KINDS, RobotHook


async def current(session: AsyncSession, platform: str, chat_id: str) -> GroupLink | None:
    """Return the link of a group chat, if it has one."""
    return (
        await session.exec(
            select(GroupLink)
            .where(GroupLink.platform == platform, GroupLink.chat_id == chat_id)
            .execution_options(populate_existing=True)
        )
    ).first()


async def choices(
    session: AsyncSession, actor: Actor, platform: str, chat_id: str, is_chat_admin: bool | None
) -> list[Org]:
    """Return the organizations the actor may link this group to now.

    Raises:
        DomainError: ``grouplink.not_admin``, ``group.not_allowed`` or ``group.linked_elsewhere``.
    """
    if not may_administer_chat(is_chat_admin):
        raise DomainError("grouplink.not_admin")
    ids = linkable_orgs(actor)
    if not ids:
        raise DomainError("group.not_allowed")
    orgs = (
        await session.exec(select(Org).where(col(Org.id).in_(ids)).order_by(col(Org.depth)))
    ).all()
    link = await current(session, platform, chat_id)
    linked = await session.get(Org, link.org_id) if link is not None else None
    allowed = [o for o in orgs if may_link_group(actor, o.id, o.path, linked)]
    if not allowed:
        raise DomainError("grouplink.linked_elsewhere", org=linked.name if linked else "")
    return allowed


async def link(
    session: AsyncSession,
    actor: Actor,
    org_id: int,
    *,
    platform: str,
    chat_id: str,
    title: str,
    is_chat_admin: bool | None,
    now: datetime | None = None,
) -> Org:
    """Make the group the display group of ``org_id``; tell the organization that loses it.

    Raises:
        DomainError: as ``choices``, or ``grouplink.changed`` when someone changed the link at the
            same moment.
    """
    now = now or utcnow()
    allowed = await choices(session, actor, platform, chat_id, is_chat_admin)
    org = next((o for o in allowed if o.id == org_id), None)
    if org is None:
        raise DomainError("group.not_allowed")
    link = await current(session, platform, chat_id)
    title = title[:256]
    if link is None:
        try:
            async with session.begin_nested():
                session.add(
                    GroupLink(
                        platform=platform,
                        chat_id=chat_id,
                        org_id=org.id,
                        title=title,
                        linked_by=actor.member_id,
                        linked_at=now,
                    )
                )
                await session.flush()
        except IntegrityError as exc:
            raise DomainError("grouplink.changed") from exc
        await audit.record(
            session,
            "group.linked",
            actor=actor.member_id,
            subject=f"org:{org.id}",
            payload={"platform": platform, "chat_id": chat_id},
            at=now,
        )
        return org
    if link.org_id == org.id:
        if title and link.title != title:
            link.title = title
            session.add(link)
        return org
    previous = await session.get(Org, link.org_id)
    previous_linker = link.linked_by
    moved = await session.exec(
        update(GroupLink)
        .where(col(GroupLink.id) == link.id, col(GroupLink.org_id) == link.org_id)
        .values(org_id=org.id, linked_by=actor.member_id, linked_at=now, title=title or link.title)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise DomainError("grouplink.changed")
    await audit.record(
        session,
        "group.relinked",
        actor=actor.member_id,
        subject=f"org:{org.id}",
        payload={"platform": platform, "chat_id": chat_id, "from_org": previous.id},
        at=now,
    )
    await _tell_loser(
        session,
        previous,
        previous_linker,
        actor,
        Reply(
            "grouplink.moved_away",
            {"group": title or link.title, "org": previous.name, "to": org.name, "by": actor.name},
        ),
    )
    return org


async def unlink(
    session: AsyncSession,
    actor: Actor,
    *,
    platform: str,
    chat_id: str,
    is_chat_admin: bool | None,
    now: datetime | None = None,
) -> Org:
    """Unlink the group from its organization (its secretary, or an office above).

    Raises:
        DomainError: ``grouplink.not_admin``, ``group.not_linked``, ``group.unlink_not_allowed``
            or ``grouplink.changed``.
    """
    now = now or utcnow()
    if not may_administer_chat(is_chat_admin):
        raise DomainError("grouplink.not_admin")
    link = await current(session, platform, chat_id)
    if link is None:
        raise DomainError("grouplink.not_linked")
    org = await session.get(Org, link.org_id)
    if not may_unlink_group(actor, org):
        raise DomainError("grouplink.unlink_not_allowed", org=org.name)
    gone = await session.exec(
        delete(GroupLink)
        .where(col(GroupLink.id) == link.id, col(GroupLink.org_id) == org.id)
        .execution_options(synchronize_session=False)
    )
    if gone.rowcount != 1:
        raise DomainError("grouplink.changed")
    await audit.record(
        session,
        "group.unlinked",
        actor=actor.member_id,
        subject=f"org:{org.id}",
        payload={"platform": platform, "chat_id": chat_id},
        at=now,
    )
    await _tell_loser(
        session,
        org,
        link.linked_by,
        actor,
        Reply(
            "grouplink.unlinked_notice",
            {"group": link.title, "org": org.name, "by": actor.name},
        ),
    )
    return org


async def _tell_loser(
    session: AsyncSession, org: Org, linker: int | None, actor: Actor, reply: Reply
) -> None:
    """Tell the organization's secretaries and the one who had linked the group (not the actor)."""
    secretaries = (
        await session.exec(
            select(RoleGrant.member_id).where(
                RoleGrant.org_id == org.id, RoleGrant.role == Role.SECRETARY
            )
        )
    ).all()
    for member_id in dict.fromkeys([*secretaries, linker]):
        if member_id is not None and member_id != actor.member_id:
            await outbox.notify_member(session, member_id, reply)


async def groups_of(
    session: AsyncSession,
    org_id: int | Iterable[int] | None = None,
    *,
    under: str | None = None,
    polls: bool = False,
) -> list[GroupLink]:
    """Return the groups an organization publishes to, in the order they were linked.

    The one place that says where a post to "the organization's groups" goes: Telegram groups
    and group robots (WeCom, DingTalk, Feishu), except a robot whose link is broken.

    Args:
        session: the open transaction.
        org_id: one organization, or several.
        under: instead, every organization whose path starts with this one (a subtree).
        polls: only groups that can hold a native poll and send its votes back (no robots:
            they are outbound only).
    """
    query = (
        select(GroupLink)
        .outerjoin(
            RobotHook,
            and_(
                col(RobotHook.chat_id) == GroupLink.chat_id,
                col(RobotHook.platform) == GroupLink.platform,
            ),
        )
        .where(col(RobotHook.broken_at).is_(None))
        .order_by(col(GroupLink.id))
    )
    if isinstance(org_id, int):
        query = query.where(GroupLink.org_id == org_id)
    elif org_id is not None:
        query = query.where(col(GroupLink.org_id).in_(list(org_id)))
    if under is not None:
        query = query.join(Org, col(Org.id) == GroupLink.org_id).where(
            col(Org.path).startswith(under)
        )
    if polls:
        query = query.where(col(GroupLink.platform).not_in(ROBOT_KINDS))
    return list((await session.exec(query)).all())
