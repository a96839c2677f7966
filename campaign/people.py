"""Who holds a role where, and who answers for a pledge: the lookups every step shares."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.org import Member, Role, RoleGrant
from models.pledge import OwnerKind, Pledge


async def holders(
    session: AsyncSession, role: Role, org_id: int, exclude: Iterable[int | None] = ()
) -> list[int]:
    """Return the active members holding ``role`` at one organization, by id."""
    skip = set(exclude)
    rows = await session.exec(
        select(RoleGrant.member_id)
        .join(Member, col(Member.id) == RoleGrant.member_id)
        .where(
            RoleGrant.role == role,
            RoleGrant.org_id == org_id,
            Member.active == True,  # noqa: E712
        )
        .order_by(col(RoleGrant.member_id))
    )
    return [m for m in rows.all() if m not in skip]


async def secretaries(session: AsyncSession, org_id: int) -> list[int]:
    """Return the active secretaries of an organization."""
    return await holders(session, Role.SECRETARY, org_id)


async def owners(session: AsyncSession, pledge: Pledge) -> list[int]:
    """Return who answers for a pledge: its member, or its organization's secretaries.

    An organization without a secretary falls back to whoever drafted its pledge.
    """
    if pledge.owner_kind is OwnerKind.MEMBER:
        return [pledge.owner_member_id]
    return await secretaries(session, pledge.org_id) or [pledge.drafted_by]
