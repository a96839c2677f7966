"""/channel (通知方式): how notices reach me — automatic, Telegram, SMS, or not at all.

Like /lang: an argument sets it at once (``/channel 短信``), none offers the choice as buttons.
The choice is the person's own, so a re-import of the roster does not undo it
(``campaign.channels``).
"""

from __future__ import annotations

from dataclasses import dataclass

from campaign import channels
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from handlers.events import CommandReceived
from handlers.menu import with_menu
from models.errors import DomainError
from models.org import Channel, ChannelBy, Member
from models.reply import Button, Reply

#: what a person may choose (``group`` is the office's word for its own WeChat group)
CHOICES = (Channel.AUTO, Channel.TELEGRAM, Channel.SMS, Channel.NONE)
#: the longest argument quoted back
ARG_MAX = 16


@dataclass(frozen=True)
class ChannelCb(CallbackData):
    """Choose how notices reach me."""

    prefix = "nch"
    channel: Channel


def _context(ctx: Ctx, member: Member) -> dict:
    return {
        "current": member.channel.value,
        "sms": channels.sms_enabled(ctx.session),
        "tail": member.phone[-4:],
    }


async def on_channel(ctx: Ctx) -> list[Reply]:
    """Set the channel by argument, or show the current one and the choice as buttons."""
    assert isinstance(ctx.event, CommandReceived)
    member = await ctx.session.get(Member, ctx.actor.member_id)
    word = ctx.event.args.strip()
    if word:
        channel = channels.parse_channel(word)
        if channel not in CHOICES:
            return [ctx.reply("channel.unknown", value=word[:ARG_MAX])]
        return await _set(ctx, member, channel)
    buttons = [
        Button(f"channel.name.{c.value}", data=ctx.codec.encode(ChannelCb(c))) for c in CHOICES
    ]
    rows = (tuple(buttons[:2]), tuple(buttons[2:]))
    return [Reply("channel.choose", _context(ctx, member), buttons=rows)]


async def on_channel_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Set the channel chosen on a button."""
    assert isinstance(cb, ChannelCb)
    if cb.channel not in CHOICES:
        raise DomainError("error.bad_button")
    member = await ctx.session.get(Member, ctx.actor.member_id)
    return await _set(ctx, member, cb.channel)


async def _set(ctx: Ctx, member: Member, channel: Channel) -> list[Reply]:
    await channels.set_channel(
        ctx.session, member, channel, by=ChannelBy.PERSON, via=ctx.sender.platform, now=ctx.now
    )
    return [with_menu(ctx, Reply("channel.set", _context(ctx, member)))]
