"""/bindgroup and /unbindgroup: link a group chat to an organization as its display group."""

from __future__ import annotations

from dataclasses import dataclass

from campaign import grouplink
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from models.errors import DomainError
from models.reply import Reply


@dataclass(frozen=True)
class BindGroupCb(CallbackData):
    """Link this group to one of the organizations the one who asked may link.

    It carries who asked: the platform vouched for that person's rights in the group when they
    sent /bindgroup, so nobody else may press it.
    """

    prefix = "bg"
    org_id: int
    member_id: int


async def on_bindgroup(ctx: Ctx) -> list[Reply]:
    """Link the group to the sender's organization, or ask which one if several."""
    if not ctx.in_group:
        return [ctx.reply("group.only_in_group")]
    if ctx.actor is None:
        return [ctx.reply("group.not_bound")]
    orgs = await grouplink.choices(
        ctx.session, ctx.actor, ctx.sender.platform, ctx.sender.chat_id, ctx.sender.is_chat_admin
    )
    if len(orgs) == 1:
        return await _link(ctx, orgs[0].id)
    rows = tuple(
        (ctx.button("group.org_button", BindGroupCb(o.id, ctx.actor.member_id), name=o.name),)
        for o in orgs[:10]
    )
    return [Reply("group.choose_org", buttons=rows)]


async def on_bindgroup_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Link the group to the organization picked on the chooser (by the one who asked)."""
    assert isinstance(cb, BindGroupCb)
    if ctx.actor is None or cb.member_id != ctx.actor.member_id:
        raise DomainError("grouplink.not_your_chooser")
    return await _link(ctx, cb.org_id)


async def _link(ctx: Ctx, org_id: int) -> list[Reply]:
    org = await grouplink.link(
        ctx.session,
        ctx.actor,
        org_id,
        platform=ctx.sender.platform,
        chat_id=ctx.sender.chat_id,
        title=ctx.sender.chat_title,
        is_chat_admin=ctx.sender.is_chat_admin,
        now=ctx.now,
    )
    return [ctx.reply("group.linked", org=org.name)]


async def on_unbindgroup(ctx: Ctx) -> list[Reply]:
    """Unlink the group from its organization."""
    if not ctx.in_group:
        return [ctx.reply("grouplink.unbind_only_in_group")]
    if ctx.actor is None:
        return [ctx.reply("group.not_bound")]
    org = await grouplink.unlink(
        ctx.session,
        ctx.actor,
        platform=ctx.sender.platform,
        chat_id=ctx.sender.chat_id,
        is_chat_admin=ctx.sender.is_chat_admin,
        now=ctx.now,
    )
    return [ctx.reply("grouplink.unlinked", org=org.name)]
