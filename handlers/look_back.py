"""S8 in chat: the owner's one tap and note, a branch-mate's opinion, the decision's one line."""

from __future__ import annotations

from campaign import fulfil, look_back
from campaign.look_back import LookCb, LookDecideCb, LookPeerCb
from handlers import report
from handlers.context import Ctx
from handlers.events import PhotoReceived, TextReceived
from models.callbacks import CallbackData
from models.campaign import Campaign
from models.errors import DomainError
from models.lookback import LookBack
from models.reply import Reply

NOTE_DIALOG = "lookback_note"
MECHANISM_DIALOG = "lookback_keep"
CAUSE_DIALOG = "lookback_cause"


def _lookback_id(ctx: Ctx) -> int | None:
    value = ctx.state.data.get("lookback_id")
    return value if isinstance(value, int) else None


def _text(ctx: Ctx) -> str:
    return ctx.event.text.strip() if isinstance(ctx.event, TextReceived) else ""


async def on_answer(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """做到了吗: one tap; a note or a photo may follow."""
    assert isinstance(cb, LookCb)
    lb = await look_back.answer(ctx.session, ctx.actor, cb.lookback_id, cb.answer)
    ctx.state.enter(NOTE_DIALOG, "note", lookback_id=lb.id)
    return [
        Reply("lookback.answer_toast", {"answer": cb.answer.value}, toast=True),
        ctx.reply("lookback.ask_note", limit=look_back.NOTE_MAX),
    ]


async def on_note(ctx: Ctx) -> list[Reply]:
    """Keep the owner's note or photo on what changed."""
    lookback_id = _lookback_id(ctx)
    if lookback_id is None:
        ctx.state.clear()
        return [ctx.reply("error.stale_card")]
    photo = ctx.event.file_id if isinstance(ctx.event, PhotoReceived) else None
    text = ctx.event.caption if isinstance(ctx.event, PhotoReceived) else _text(ctx)
    await look_back.add_note(ctx.session, ctx.actor, lookback_id, text=text or "", photo=photo)
    ctx.state.clear()
    return [ctx.reply("lookback.note_saved")]


async def on_peer(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """A branch-mate's opinion in one tap."""
    assert isinstance(cb, LookPeerCb)
    await look_back.peer_opinion(ctx.session, ctx.actor, cb.lookback_id, cb.vote)
    return [Reply("lookback.opinion_toast", {"vote": cb.vote.value}, toast=True)]


async def on_decide(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """巩固销号 asks for the one-line lasting mechanism; 限期整改 asks for the cause."""
    assert isinstance(cb, LookDecideCb)
    lb = await look_back.decidable(ctx.session, ctx.actor, cb.lookback_id)
    if cb.action == "keep":
        ctx.state.enter(MECHANISM_DIALOG, "mechanism", lookback_id=lb.id)
        return [ctx.reply("lookback.ask_mechanism", limit=look_back.MECHANISM_MAX)]
    if cb.action != "rectify":
        raise DomainError("error.bad_button")
    ctx.state.enter(CAUSE_DIALOG, "cause", lookback_id=lb.id)
    return [ctx.reply("lookback.ask_cause")]


async def on_mechanism(ctx: Ctx) -> list[Reply]:
    """Consolidate the item with the line typed."""
    lookback_id = _lookback_id(ctx)
    if lookback_id is None:
        ctx.state.clear()
        return [ctx.reply("error.stale_card")]
    lb = await ctx.session.get(LookBack, lookback_id)
    camp = await ctx.session.get(Campaign, lb.campaign_id) if lb else None
    if camp is None:
        ctx.state.clear()
        return [ctx.reply("error.stale_card")]
    today = fulfil.local_now(camp, ctx.now).date()
    await look_back.consolidate(ctx.session, ctx.actor, lookback_id, _text(ctx), today=today)
    ctx.state.clear()
    return [ctx.reply("lookback.consolidated_done")]


async def on_cause(ctx: Ctx) -> list[Reply]:
    """Record the cause, then ask the rectification's deadline (the existing flow opens it)."""
    lookback_id = _lookback_id(ctx)
    if lookback_id is None:
        ctx.state.clear()
        return [ctx.reply("error.stale_card")]
    lb = await look_back.send_to_rectify(ctx.session, ctx.actor, lookback_id, _text(ctx))
    ctx.state.enter(
        report.RECT_OPEN_DIALOG,
        "deadline",
        pledge_id=lb.pledge_id,
        item_id=lb.item_id,
        reason=lb.cause,
    )
    return [ctx.reply("rect.ask_deadline")]
