"""S3 in chat: the review cards' buttons, the reason for a return, peers' opinions, /review."""

from __future__ import annotations

import uuid

from campaign import cards, outbox, review
from campaign.cards import ConfirmCb, CriterionCb, FullTextCb, PeerCb, ReasonCb, ReviewCb
from handlers import pledge as pledge_dialog
from handlers.context import Ctx
from handlers.events import ButtonPressed, TextReceived
from models.callbacks import CallbackData
from models.dialog import Priority
from models.errors import DomainError
from models.pledge import Pledge, Verdict
from models.reply import Reply

REASON_DIALOG = "review_reason"
PEER_DIALOG = "peer_comment"


def _typed(ctx: Ctx) -> str:
    """Return the text typed, or "" for anything else (a photo); the domain checks its length."""
    return ctx.event.text.strip() if isinstance(ctx.event, TextReceived) else ""


def _message_id(ctx: Ctx) -> str | None:
    return ctx.event.message_id if isinstance(ctx.event, ButtonPressed) else None


async def on_decision(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Approve once the five criteria are ticked, else ask once; ask a return's reason once.

    The question (五项标准都符合吗？, or the reason) is asked on the card itself.
    """
    assert isinstance(cb, ReviewCb)
    if cb.verdict not in (Verdict.APPROVE, Verdict.RETURN):
        raise DomainError("error.bad_button")
    pledge = await review.check_may_decide(ctx.session, ctx.actor, cb.pledge_id, cb.version)
    if cb.verdict is Verdict.APPROVE:
        ticks = await cards.ticked(ctx.session, cb.pledge_id, cb.version, ctx.actor.member_id)
        if set(ticks) == set(review.ALL_CRITERIA):
            return await _approve(ctx, cb.pledge_id, cb.version, confirmed=False)
        ctx.state.clear()
        card = await cards.review_card(
            ctx.session,
            ctx.codec,
            pledge,
            ctx.actor.member_id,
            edit_message_id=_message_id(ctx),
            confirming=True,
        )
        return [card]
    ctx.state.enter(REASON_DIALOG, "reason", pledge_id=cb.pledge_id, version=cb.version)
    card = await cards.review_card(
        ctx.session,
        ctx.codec,
        pledge,
        ctx.actor.member_id,
        edit_message_id=_message_id(ctx),
        choosing_reason=True,
    )
    return [card]


async def on_confirm(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """符合，通过: the five criteria are met; approve."""
    assert isinstance(cb, ConfirmCb)
    return await _approve(ctx, cb.pledge_id, cb.version, confirmed=True)


async def _approve(ctx: Ctx, pledge_id: int, version: int, *, confirmed: bool) -> list[Reply]:
    await review.decide(
        ctx.session,
        ctx.actor,
        pledge_id,
        version,
        Verdict.APPROVE,
        codec=ctx.codec,
        confirmed=confirmed,
    )
    ctx.state.clear()
    return [Reply("review.approved_toast", toast=True)]


async def on_full_text(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Send the whole application form of the card's version, as ordinary messages."""
    assert isinstance(cb, FullTextCb)
    pledge = await ctx.session.get(Pledge, cb.pledge_id)
    if pledge is None or not await review.may_read(ctx.session, ctx.actor, pledge, cb.version):
        raise DomainError("review.not_yours")
    snap = await cards.snapshot_of(ctx.session, pledge.id, cb.version)
    if snap is None:
        raise DomainError("error.stale_card")
    form = await pledge_dialog.application_form(ctx, pledge, snapshot=True)
    form["version"] = cb.version
    form["items"] = [{**it, "n": k + 1, "todo": []} for k, it in enumerate(snap.items)]
    return [
        ctx.reply(
            "review.full",
            form=form,
            findings=cards.findings_context(snap.findings, reviewer=True),
            peers=await cards.peer_opinions(ctx.session, pledge.id, cb.version),
            decision=await cards.decision_of(ctx.session, pledge.id, cb.version),
            tz=form["tz"],
        )
    ]


async def on_reason(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Return for the picked reason, or go back to the card."""
    assert isinstance(cb, ReasonCb)
    if cb.reason is None:
        pledge = await review.check_may_decide(ctx.session, ctx.actor, cb.pledge_id, cb.version)
        ctx.state.clear()
        card = await cards.review_card(
            ctx.session, ctx.codec, pledge, ctx.actor.member_id, edit_message_id=_message_id(ctx)
        )
        return [card]
    await review.decide(
        ctx.session,
        ctx.actor,
        cb.pledge_id,
        cb.version,
        Verdict.RETURN,
        codec=ctx.codec,
        reasons=[cb.reason],
    )
    ctx.state.clear()
    return [Reply("review.returned_toast", toast=True)]


async def on_reason_text(ctx: Ctx) -> list[Reply]:
    """Return with the reason the reviewer typed (four characters at least)."""
    text = _typed(ctx)
    if len(text) < review.REASON_MIN_CHARS:
        return [ctx.reply("review.reason_short", min=review.REASON_MIN_CHARS)]
    data = ctx.state.data
    await review.decide(
        ctx.session,
        ctx.actor,
        int(data["pledge_id"]),
        int(data["version"]),
        Verdict.RETURN,
        codec=ctx.codec,
        opinion=text,
    )
    ctx.state.clear()
    return [ctx.reply("review.returned_done")]


async def on_criterion(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Tick or untick a criterion; the card is edited in place."""
    assert isinstance(cb, CriterionCb)
    pledge = await review.toggle_criterion(
        ctx.session, ctx.actor, cb.pledge_id, cb.version, cb.criterion
    )
    card = await cards.review_card(
        ctx.session, ctx.codec, pledge, ctx.actor.member_id, edit_message_id=_message_id(ctx)
    )
    return [card]


async def on_peer(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """A peer agrees at once, or is asked for the change they suggest."""
    assert isinstance(cb, PeerCb)
    if cb.verdict is Verdict.AGREE:
        await review.peer_opinion(
            ctx.session, ctx.actor, cb.pledge_id, cb.version, Verdict.AGREE, codec=ctx.codec
        )
        return [Reply("peer.thanks", toast=True)]
    if cb.verdict is not Verdict.SUGGEST:
        raise DomainError("error.bad_button")
    ctx.state.enter(PEER_DIALOG, "comment", pledge_id=cb.pledge_id, version=cb.version)
    return [ctx.reply("peer.ask_comment")]


async def on_peer_text(ctx: Ctx) -> list[Reply]:
    """Record the peer's suggested change."""
    text = _typed(ctx)
    if not text:
        return [ctx.reply("peer.ask_comment")]
    data = ctx.state.data
    await review.peer_opinion(
        ctx.session,
        ctx.actor,
        int(data["pledge_id"]),
        int(data["version"]),
        Verdict.SUGGEST,
        codec=ctx.codec,
        opinion=text,
    )
    ctx.state.clear()
    return [ctx.reply("peer.thanks")]


async def on_review(ctx: Ctx) -> list[Reply]:
    """Send a fresh card for every pledge awaiting the sender's decision or opinion."""
    pending = await review.pending_for(ctx.session, ctx.actor)
    asked = await review.peer_pending_for(ctx.session, ctx.actor)
    if not pending and not asked:
        return [ctx.reply("review.none")]
    tag = uuid.uuid4().hex[:8]
    header = ctx.reply("review.pending", count=len(pending), peers=len(asked))
    await _queue_card(ctx, header, f"hdr:{tag}")
    for pledge in pending:
        card = await cards.review_card(ctx.session, ctx.codec, pledge, ctx.actor.member_id)
        await _queue_card(ctx, card, f"{cards.card_key(pledge.id, pledge.version)}r:{tag}")
    for pledge in asked:
        card = await cards.peer_card(ctx.session, ctx.codec, pledge, ctx.actor.member_id)
        await _queue_card(ctx, card, f"{cards.peer_key(pledge.id, pledge.version)}r:{tag}")
    return []


async def _queue_card(ctx: Ctx, card: Reply, key: str) -> None:
    # Cards go out under their own key so that a later decision can find and edit them; the
    # header goes the same way so that it is delivered before the cards.
    row = await outbox.enqueue(
        ctx.session,
        platform=ctx.sender.platform,
        chat_id=ctx.sender.chat_id,
        reply=card,
        locale=ctx.locale,
        key=f"{key}:{ctx.sender.chat_id}",
        priority=Priority.REPLY,
    )
    if row is not None:
        ctx.extra_outbox.append(row)
