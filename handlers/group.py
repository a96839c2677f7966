"""/bindgroup: link a group chat to an organization as its publication channel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from campaign import audit
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from models.errors import DomainError
from models.org import GroupLink, Org, Role
from models.reply import Reply


@dataclass(frozen=True)
class BindGroupCb(CallbackData):
    """Link this group to one of the organizations the presser may link."""

    prefix = "bg"
    org_id: int


def _linkable(ctx: Ctx) -> list[int]:
    if ctx.actor is None:
        return []
    ids = ctx.actor.orgs_with(Role.SECRETARY) + ctx.actor.orgs_with(Role.OFFICE)
    return list(dict.fromkeys(ids))


async def on_bindgroup(ctx: Ctx) -> list[Reply]:
    """Link the group to the sender's organization, or ask which one if several."""
    if not ctx.in_group:
        return [ctx.reply("group.only_in_group")]
    if ctx.actor is None:
        return [ctx.reply("group.not_bound")]
    org_ids = _linkable(ctx)
    if not org_ids:
        return [ctx.reply("group.not_allowed")]
    if len(org_ids) == 1:
        return await _link(ctx, org_ids[0])
    orgs = (await ctx.session.exec(select(Org).where(col(Org.id).in_(org_ids)))).all()
    rows = tuple(
        (ctx.button("group.org_button", BindGroupCb(o.id), name=o.name),) for o in orgs[:10]
    )
    return [Reply("group.choose_org", buttons=rows)]


async def on_bindgroup_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Link the group to the organization picked on the chooser."""
    assert isinstance(cb, BindGroupCb)
    if cb.org_id not in _linkable(ctx):
        raise DomainError("group.not_allowed")
    return await _link(ctx, cb.org_id)


async def _link(ctx: Ctx, org_id: int) -> list[Reply]:
    org = await ctx.session.get(Org, org_id)
    if org is None:
        raise DomainError("group.not_allowed")
    link = (
        await ctx.session.exec(
            select(GroupLink).where(
                GroupLink.platform == ctx.sender.platform,
                GroupLink.chat_id == ctx.sender.chat_id,
            )
        )
    ).first()
    if link is None:
        link = GroupLink(
            platform=ctx.sender.platform,
            chat_id=ctx.sender.chat_id,
            org_id=org_id,
            title=ctx.sender.chat_title[:256],
            linked_by=ctx.actor.member_id,
        )
    else:
        link.org_id = org_id
        link.linked_by = ctx.actor.member_id
    ctx.session.add(link)
    await audit.record(
        ctx.session,
        "group.linked",
        actor=ctx.actor.member_id,
        subject=f"org:{org_id}",
        payload={"platform": ctx.sender.platform, "chat_id": ctx.sender.chat_id},
    )
    return [ctx.reply("group.linked", org=org.name)]
