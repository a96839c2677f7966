"""S7 in chat: the rater's card (one-tap grades, pages, a short comment), /evaluate, follow-ups."""

from __future__ import annotations

from campaign import evaluate, fulfil, polls
from campaign.evaluate import EvalNoteCb, EvalPageCb, FollowCb, GradeCb
from handlers import report
from handlers.context import Ctx
from handlers.events import ButtonPressed, PollUpdated, TextReceived
from models.callbacks import CallbackData
from models.campaign import Campaign
from models.errors import DomainError
from models.evaluation import Evaluation, FollowUp
from models.reply import Reply

NOTE_DIALOG = "eval_comment"


def _message_id(ctx: Ctx) -> str | None:
    return ctx.event.message_id if isinstance(ctx.event, ButtonPressed) else None


async def on_evaluate(ctx: Ctx) -> list[Reply]:
    """Show the cards of every quarter in which I still have ratings to give."""
    replies = []
    for camp, quarter in await evaluate.my_open_quarters(ctx.session, ctx.actor.member_id):
        card = await evaluate.rater_card(
            ctx.session,
            ctx.codec,
            camp,
            quarter,
            ctx.actor.member_id,
            today=fulfil.local_now(camp, ctx.now).date(),
        )
        if card is not None:
            replies.append(card)
    return replies or [ctx.reply("eval.nothing")]


async def _card(ctx: Ctx, camp: Campaign, quarter: str, page: int) -> Reply | None:
    return await evaluate.rater_card(
        ctx.session,
        ctx.codec,
        camp,
        quarter,
        ctx.actor.member_id,
        today=fulfil.local_now(camp, ctx.now).date(),
        page=page,
        edit_message_id=_message_id(ctx),
    )


async def on_grade(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """One tap: keep the grade and show the card again with it ticked."""
    assert isinstance(cb, GradeCb)
    _, ev = await evaluate.rate(
        ctx.session, ctx.actor, cb.rating_id, cb.grade, codec=ctx.codec, now=ctx.now
    )
    name = await evaluate.subject_name(ctx.session, ev)
    out = [Reply("eval.rated_toast", {"name": name, "grade": cb.grade.value}, toast=True)]
    camp = await ctx.session.get(Campaign, ev.campaign_id)
    card = await _card(ctx, camp, ev.quarter, cb.page)
    if card is not None and card.edit_message_id:
        out.append(card)
    return out


async def on_page(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Turn the card to another page."""
    assert isinstance(cb, EvalPageCb)
    camp = await ctx.session.get(Campaign, cb.campaign_id)
    if camp is None:
        raise DomainError("error.stale_card")
    card = await _card(ctx, camp, cb.quarter, cb.page)
    if card is None:
        raise DomainError("eval.closed")
    return [card]


async def on_note(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Ask for the optional short comment on one rating."""
    assert isinstance(cb, EvalNoteCb)
    name = await evaluate.rating_subject(ctx.session, ctx.actor, cb.rating_id)
    ctx.state.enter(NOTE_DIALOG, "comment", rating_id=cb.rating_id)
    return [ctx.reply("eval.ask_comment", name=name, limit=evaluate.COMMENT_MAX)]


async def on_note_text(ctx: Ctx) -> list[Reply]:
    """Keep the comment typed; anything else is asked again."""
    text = ctx.event.text if isinstance(ctx.event, TextReceived) else ""
    rating_id = ctx.state.data.get("rating_id")
    if not isinstance(rating_id, int):
        ctx.state.clear()
        return [ctx.reply("error.stale_card")]
    rating = await evaluate.comment(ctx.session, ctx.actor, rating_id, text or "")
    ctx.state.clear()
    return [ctx.reply("eval.comment_saved", comment=rating.comment)]


async def on_poll(ctx: Ctx) -> list[Reply]:
    """Keep a poll's latest totals (the public side is read from the closed poll)."""
    event = ctx.event
    assert isinstance(event, PollUpdated)
    await polls.record_update(
        ctx.session, event.sender.platform, event.poll_id, event.counts, event.closed
    )
    return []


async def on_follow(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Record the follow-up of a 一般 or 差; 限期整改 goes on to the rectification dialog."""
    assert isinstance(cb, FollowCb)
    ev = await evaluate.record_follow_up(ctx.session, ctx.actor, cb.evaluation_id, cb.action)
    name = await evaluate.subject_name(ctx.session, ev)
    done = Reply("eval.follow_recorded", {"name": name, "action": cb.action.value}, toast=True)
    if cb.action is not FollowUp.RECTIFY or ev.pledge_id is None:
        return [done]
    ctx.state.enter(report.RECT_OPEN_DIALOG, "reason", pledge_id=ev.pledge_id, item_id=None)
    return [done, ctx.reply("eval.rect_ask_reason", name=name, grade=_grade(ev))]


def _grade(ev: Evaluation) -> str | None:
    return ev.grade.value if ev.grade else None
