"""/mine (my pledges, their versions and decisions) and /public (an organization's listing)."""

from __future__ import annotations

from sqlmodel import col, or_, select

from campaign import cards, publish
from handlers.context import Ctx
from models.org import GroupLink, Org, Role
from models.pledge import OwnerKind, Pledge, PledgeSnapshot
from models.reply import Reply


async def _history(ctx: Ctx, pledge: Pledge) -> list[dict]:
    snaps = (
        await ctx.session.exec(
            select(PledgeSnapshot)
            .where(PledgeSnapshot.pledge_id == pledge.id)
            .order_by(col(PledgeSnapshot.version))
        )
    ).all()
    out = []
    for snap in snaps:
        out.append(
            {
                "version": snap.version,
                "submitted_at": snap.submitted_at.isoformat(),
                "decision": await cards.decision_of(ctx.session, pledge.id, snap.version),
                "peers": await cards.peer_opinions(ctx.session, pledge.id, snap.version),
            }
        )
    return out


async def on_mine(ctx: Ctx) -> list[Reply]:
    """List the sender's pledges, and their organizations' as secretary, with their history."""
    actor = ctx.actor
    orgs = actor.orgs_with(Role.SECRETARY)
    rows = (
        await ctx.session.exec(
            select(Pledge)
            .where(
                or_(
                    (col(Pledge.owner_kind) == OwnerKind.MEMBER)
                    & (col(Pledge.owner_member_id) == actor.member_id),
                    (col(Pledge.owner_kind) == OwnerKind.ORG) & col(Pledge.org_id).in_(orgs),
                )
            )
            .order_by(col(Pledge.campaign_id).desc(), col(Pledge.id))
        )
    ).all()
    if not rows:
        return [ctx.reply("mine.none")]
    replies = []
    for pledge in rows:
        snapshot = pledge.status.value != "draft"
        pctx = await cards.pledge_context(ctx.session, pledge, snapshot=snapshot)
        pctx["history"] = await _history(ctx, pledge)
        replies.append(Reply("mine.pledge", pctx))
    return replies


async def on_public(ctx: Ctx) -> list[Reply]:
    """Show the published pledges of the sender's organization (in a group: the group's)."""
    if ctx.in_group:
        link = (
            await ctx.session.exec(
                select(GroupLink).where(
                    GroupLink.platform == ctx.sender.platform,
                    GroupLink.chat_id == ctx.sender.chat_id,
                )
            )
        ).first()
        if link is None:
            return [ctx.reply("publish.group_not_linked")]
        org_id = link.org_id
    elif ctx.actor is not None:
        org_id = ctx.actor.org_id
    else:
        return []
    org = await ctx.session.get(Org, org_id)
    pledges = await publish.listing(ctx.session, org_id, today=ctx.today())
    return [ctx.reply("publish.listing", org=org.name, pledges=pledges)]
