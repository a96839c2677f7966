"""S4 公开亮承诺: publish an approved pledge — the pledge letter, the display post, the listing.

Display posts carry no member's phone number: nothing in their context holds one. The basic
pledge's public office and supervision numbers are the exception it exists for, and they sit
in the items' own text, which the secretary wrote for posting.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, cards, outbox, people
from models.base import utcnow
from models.dialog import Priority
from models.org import GroupLink, Org
from models.pledge import Pledge, PledgeEvent, PledgeStatus, apply
from models.reply import Reply

GROUP_LOCALE = "zh_CN"


async def publish(session: AsyncSession, pledge: Pledge, *, actor_id: int) -> None:
    """Publish an approved pledge: letter to its drafters, post to the org's groups."""
    pledge.status = apply(pledge.status, PledgeEvent.PUBLISH)
    pledge.published_at = utcnow()
    session.add(pledge)
    await session.flush()
    ctx = await cards.pledge_context(session, pledge, snapshot=True)
    ctx["published_at"] = pledge.published_at.isoformat()
    v = pledge.version
    letter = Reply("publish.letter", ctx)
    for member_id in await people.owners(session, pledge):
        await outbox.notify_member(
            session, member_id, letter, key=f"letter:{pledge.id}:{v}:{member_id}"
        )
    groups = (await session.exec(select(GroupLink).where(GroupLink.org_id == pledge.org_id))).all()
    for group in groups:
        await outbox.enqueue(
            session,
            platform=group.platform,
            chat_id=group.chat_id,
            reply=Reply("publish.post", ctx),
            locale=GROUP_LOCALE,
            key=f"post:{pledge.id}:{v}:{group.platform}:{group.chat_id}",
            priority=Priority.NOTICE,
        )
    if not groups:
        org = await session.get(Org, pledge.org_id)
        for member_id in await people.secretaries(session, pledge.org_id):
            await outbox.notify_member(
                session,
                member_id,
                Reply("publish.no_group", {"org": org.name}),
                key=f"nogroup:{pledge.org_id}:{pledge.id}:{v}:{member_id}",
            )
    await audit.record(
        session,
        "pledge.published",
        actor=actor_id,
        subject=f"pledge:{pledge.id}",
        payload={"version": v, "groups": [f"{g.platform}:{g.chat_id}" for g in groups]},
    )


async def listing(session: AsyncSession, org_id: int, limit: int = 30) -> list[dict]:
    """Return the published pledges of one organization: its own first, then its members'."""
    rows = (
        await session.exec(
            select(Pledge)
            .where(Pledge.org_id == org_id, Pledge.status == PledgeStatus.PUBLISHED)
            .order_by(col(Pledge.owner_kind).desc(), col(Pledge.published_at))
            .limit(limit)
        )
    ).all()
    return [await cards.pledge_context(session, p, snapshot=True) for p in rows]
