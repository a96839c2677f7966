"""Answers by SMS: a member without Telegram reports the month by texting a code back.

The sender is the roster member with that number (the core looks them up; nobody binds by
SMS). The codes are words in ``templates/lexicon/<locale>/sms.toml``:

- ``1`` 全部按计划: every open item of this month's pledges is on track;
- ``2`` + reason 有困难: every open item is in difficulty, with the reason (the secretary is told,
  as from the Telegram card);
- ``3`` + date: no more prompts until that date (a pause, dates checked by the campaign);
- ``TD`` 退订: no more notices by any channel (channel ``none``, audited); one confirmation;
  ``恢复`` afterwards: notices again (channel ``auto``).

Anything else gets one short help SMS, never twice in a row for the same month (no loops with
auto-replies, no cost). A number not on the roster changes nothing and gets no answer; the log
shows its last four digits only. After ``TD`` answers are still recorded, but nothing is sent.
The same campaign services as the Telegram monthly card record the answers, so the ledger
shows them.
"""

from __future__ import annotations

import logging
from datetime import date

from campaign import channels, fulfil, propose
from campaign.access import Actor
from handlers.context import Ctx
from handlers.events import TextReceived
from handlers.report import _parse_date as parse_date
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Channel, ChannelBy, Member, Org
from models.pledge import Pledge
from models.progress import PauseReason, Progress
from models.reply import Reply

log = logging.getLogger(__name__)

#: dialog-state key: the month whose help SMS went out last (cleared by an answer)
HELP_SENT = "_sms_help"


class _Help(Exception):
    """The text is no answer we can act on: send the help (once)."""


async def on_sms(ctx: Ctx) -> list[Reply]:
    """Act on a texted answer; return the SMS replies (none to strangers or the opted out)."""
    if not isinstance(ctx.event, TextReceived):
        return []
    if ctx.actor is None:
        log.info(
            "SMS from %s, a number not on the roster: nothing done",
            channels.tail(ctx.sender.user_id),
        )
        return []
    member = await ctx.session.get(Member, ctx.actor.member_id)
    opted_out = member.channel is Channel.NONE
    code, rest = channels.parse_sms(ctx.event.text)
    if code == "opt_out":
        ctx.state.data.pop(HELP_SENT, None)
        changed = await channels.set_channel(
            ctx.session, member, Channel.NONE, by=ChannelBy.PERSON, via=channels.SMS, now=ctx.now
        )
        return [ctx.reply("sms.reply.opted_out")] if changed else []
    if code == "opt_in" and opted_out:
        ctx.state.data.pop(HELP_SENT, None)
        await channels.set_channel(
            ctx.session, member, Channel.AUTO, by=ChannelBy.PERSON, via=channels.SMS, now=ctx.now
        )
        return [ctx.reply("sms.reply.opted_in")]
    try:
        async with ctx.session.begin_nested():
            replies = await _answer(ctx, code, rest)
    except (_Help, DomainError):
        replies = _help(ctx)
    else:
        ctx.state.data.pop(HELP_SENT, None)
    return [] if opted_out else replies


def _help(ctx: Ctx) -> list[Reply]:
    month = fulfil.month_of(ctx.today())
    if ctx.state.data.get(HELP_SENT) == month:
        return []  # said once already: no loop with an auto-reply, no cost
    ctx.state.data[HELP_SENT] = month
    return [ctx.reply("sms.reply.help")]


async def _answer(ctx: Ctx, code: str | None, rest: str) -> list[Reply]:
    actor = ctx.actor
    assert actor is not None
    if code == "on_track" and not rest:
        return await _on_track(ctx, actor)
    if code == "blocked" and rest:
        return await _blocked(ctx, actor, rest[: fulfil.NOTE_MAX])
    if code == "pause" and rest:
        return await _pause(ctx, actor, rest)
    raise _Help


async def _months(ctx: Ctx, actor: Actor) -> list[tuple[Pledge, date, str]]:
    """Return the pledges the person reports on, each with today and this month."""
    out = []
    for pledge in await fulfil.reportable(ctx.session, actor):
        today = fulfil.local_now(await fulfil.campaign_of(ctx.session, pledge), ctx.now).date()
        out.append((pledge, today, fulfil.month_of(today)))
    return out


async def _set_open_items(
    ctx: Ctx, actor: Actor, status: Progress, note: str = ""
) -> tuple[int, int, str | None]:
    """Record every open item of this month's pledges as ``status``.

    Returns:
        How many items are open, how many changed, and the month (None without pledges).
    """
    open_count = changed = 0
    month = None
    for pledge, today, this_month in await _months(ctx, actor):
        month = month or this_month
        answered = await fulfil.reports_of(ctx.session, pledge.id, this_month)
        told: list[str] = []
        for item in await fulfil.open_items(ctx.session, pledge.id):
            open_count += 1
            before = answered.get(item.id)
            same = before is not None and before.status is status
            if same and (not note or before.note == note):
                continue  # said so already
            await fulfil.record(
                ctx.session, actor, item.id, this_month, status, today=today, note=note, tell=False
            )
            told.append(item.content)
            changed += 1
        if status is Progress.BLOCKED:
            # one notice to the secretary for the whole answer, naming the items
            await fulfil.tell_blocked(ctx.session, actor, pledge, told, note, this_month)
    return open_count, changed, month


async def _on_track(ctx: Ctx, actor: Actor) -> list[Reply]:
    open_count, changed, month = await _set_open_items(ctx, actor, Progress.ON_TRACK)
    if not open_count:
        return [ctx.reply("sms.reply.nothing_to_report")]
    key = "sms.reply.on_track" if changed else "sms.reply.already"
    return [ctx.reply(key, month=month, count=open_count)]


async def _blocked(ctx: Ctx, actor: Actor, reason: str) -> list[Reply]:
    open_count, _, month = await _set_open_items(ctx, actor, Progress.BLOCKED, reason)
    if not open_count:
        return [ctx.reply("sms.reply.nothing_to_report")]
    return [ctx.reply("sms.reply.blocked", month=month, count=open_count)]


async def _campaign(ctx: Ctx, actor: Actor) -> Campaign:
    org = await ctx.session.get(Org, actor.org_id)
    campaign = await propose.campaign_for(ctx.session, org) if org else None
    if campaign is None:
        pledges = await fulfil.reportable(ctx.session, actor)
        if pledges:
            campaign = await fulfil.campaign_of(ctx.session, pledges[0])
    if campaign is None:
        raise _Help
    return campaign


async def _pause(ctx: Ctx, actor: Actor, text: str) -> list[Reply]:
    campaign = await _campaign(ctx, actor)
    today = fulfil.local_now(campaign, ctx.now).date()
    until = parse_date(text, today)
    if until is None:
        raise _Help
    pause = await fulfil.pause(
        ctx.session, actor, PauseReason.OTHER, today=today, until=until, campaign=campaign
    )
    return [ctx.reply("sms.reply.paused", until=pause.ends_on.isoformat())]
