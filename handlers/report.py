"""S6/S7 in chat: 每月一报 (/report, its card, pauses) and 限期整改 (/summary, /ledger: oversee).

Every card is rebuilt from the records (``campaign.monthly``), so a pressed button edits the
card it sits on to the same truth the jobs would show. An all-on-track month is one tap on
「全部按计划推进」. The domain refuses stale and forged cards (another month, someone else's
item, a closed rectification) with a ``DomainError``, which the core turns into a toast.

Dialogs of this module, as a table of states (the text handlers below are the transitions);
/cancel leaves any of them, and /report, /summary, /ledger leave this module's ones::

    stateDiagram-v2
        [*] --> report_blocked : 有困难 on a card (recorded at once)
        report_blocked --> [*] : the reason, typed
        [*] --> report_note : the card answered in full (全部按计划推进, or the last item)
        report_note --> report_note : a note or a photo (optional, for NOTE_WINDOW)
        report_note --> [*] : NOTE_WINDOW over, /cancel
        [*] --> report_pause : 暂停提醒, then a reason
        report_pause --> [*] : the last day, typed
        [*] --> rect_open : 限期整改 on /ledger (an item, or a member silent for two months)
        rect_open --> rect_open : the reason (then the deadline is asked)
        rect_open --> [*] : the deadline, typed
        [*] --> rect_claim : 整改完成 on a rectification notice
        rect_claim --> [*] : a short note on what was done, typed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select

from campaign import access, fulfil, monthly, propose, supervise
from campaign.cards import RectCb, owner_name
from campaign.monthly import ProgressCb, RestCb
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from handlers.events import ButtonPressed, PhotoReceived, TextReceived
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Org
from models.pledge import Pledge, PledgeItem, PledgeStatus
from models.progress import Pause, PauseReason, Progress, Rectification, RectificationStatus
from models.reply import Reply

BLOCKED_DIALOG = "report_blocked"
NOTE_DIALOG = "report_note"
PAUSE_DIALOG = "report_pause"
SUMMARY_DIALOG = "summary_fix"
RECT_OPEN_DIALOG = "rect_open"
RECT_CLAIM_DIALOG = "rect_claim"
DIALOGS = (
    BLOCKED_DIALOG,
    NOTE_DIALOG,
    PAUSE_DIALOG,
    SUMMARY_DIALOG,
    RECT_OPEN_DIALOG,
    RECT_CLAIM_DIALOG,
)
#: how long after a complete card a note or a photo is still taken as its evidence
NOTE_WINDOW = timedelta(hours=1)
#: the longest typed date looked at
DATE_MAX = 40


@dataclass(frozen=True)
class PauseCb(CallbackData):
    """Pause my reminders: without a reason, offer the reasons; with one, ask until when."""

    prefix = "hp"
    reason: PauseReason | None = None


@dataclass(frozen=True)
class ResumeCb(CallbackData):
    """End my pause from today."""

    prefix = "hr"


@dataclass(frozen=True)
class RectifyCb(CallbackData):
    """Open 限期整改 on one item of the ledger."""

    prefix = "lz"
    item_id: int


REPORT_TYPES: tuple[type[CallbackData], ...] = (PauseCb, ResumeCb, RectifyCb)


# --------------------------------------------------------------------------- helpers


def _message_id(ctx: Ctx) -> str | None:
    return ctx.event.message_id if isinstance(ctx.event, ButtonPressed) else None


def _today(ctx: Ctx, campaign: Campaign) -> date:
    return fulfil.local_now(campaign, ctx.now).date()


def _leave_mine(ctx: Ctx) -> None:
    # A command of this module ends a pending question of this module, not other dialogs.
    if ctx.state.dialog in DIALOGS:
        ctx.state.clear()


def _text(ctx: Ctx) -> str | None:
    """Return the typed text, or None for a photo where text was asked."""
    return ctx.event.text.strip() if isinstance(ctx.event, TextReceived) else None


def _parse_date(text: str, today: date) -> date | None:
    """Return the date typed, reading a day without a year as the next such day."""
    if len(text) > DATE_MAX:
        return None
    day = propose.parse_deadline(text, today.year)
    if day is not None and day < today:
        later = propose.parse_deadline(text, today.year + 1)
        if later is not None and later > day:
            day = later
    return day


async def _org_campaign(ctx: Ctx, org_id: int) -> tuple[Org, Campaign]:
    org = await ctx.session.get(Org, org_id)
    campaign = await propose.campaign_for(ctx.session, org) if org else None
    if org is None or campaign is None:
        raise DomainError("report.no_campaign")
    return org, campaign


async def _actor_campaign(ctx: Ctx) -> Campaign:
    org = await ctx.session.get(Org, ctx.actor.org_id)
    campaign = await propose.campaign_for(ctx.session, org) if org else None
    if campaign is None:
        pledges = await fulfil.reportable(ctx.session, ctx.actor)
        if pledges:
            campaign = await fulfil.campaign_of(ctx.session, pledges[0])
    if campaign is None:
        raise DomainError("report.no_campaign")
    return campaign


async def _pledge(ctx: Ctx, pledge_id: int) -> tuple[Pledge, Campaign]:
    pledge = await ctx.session.get(Pledge, pledge_id)
    if pledge is None:
        raise DomainError("error.forbidden")
    return pledge, await fulfil.campaign_of(ctx.session, pledge)


async def _owing(ctx: Ctx, pledge_id: int, month: str) -> int:
    answered = await fulfil.reports_of(ctx.session, pledge_id, month)
    return len(
        [i for i in await fulfil.open_items(ctx.session, pledge_id) if i.id not in answered]
    )


async def _card(
    ctx: Ctx, pledge: Pledge, month: str, today: date, *, edit: str | None = None
) -> Reply:
    return await monthly.report_card(
        ctx.session, ctx.codec, pledge, month, today=today, edit_message_id=edit
    )


def _thanks(ctx: Ctx, pledge_id: int, month: str) -> Reply:
    until = (ctx.now + NOTE_WINDOW).isoformat()
    ctx.state.enter(NOTE_DIALOG, "note", pledge_id=pledge_id, month=month, until=until)
    return ctx.reply("report.thanks", month=month)


async def _current_pause(ctx: Ctx, today: date) -> Pause | None:
    return (
        await ctx.session.exec(
            select(Pause)
            .where(
                Pause.member_id == ctx.actor.member_id,
                Pause.starts_on <= today,
                Pause.ends_on >= today,
            )
            .order_by(col(Pause.ends_on).desc())
        )
    ).first()


def _paused_reply(ctx: Ctx, pause: Pause, template: str) -> Reply:
    return Reply(
        template,
        {"until": pause.ends_on.isoformat(), "reason": pause.reason.value},
        buttons=((ctx.button("report.resume_button", ResumeCb()),),),
    )


async def _pause_line(ctx: Ctx, today: date) -> Reply:
    pause = await _current_pause(ctx, today)
    if pause is not None:
        return _paused_reply(ctx, pause, "report.paused")
    return Reply("report.pause_offer", buttons=((ctx.button("report.pause_button", PauseCb()),),))


async def _open_rectifications(ctx: Ctx, pledge_ids: list[int]) -> list[Reply]:
    rows = (
        await ctx.session.exec(
            select(Rectification)
            .where(
                col(Rectification.pledge_id).in_(pledge_ids),
                Rectification.status == RectificationStatus.OPEN,
            )
            .order_by(col(Rectification.id))
        )
    ).all()
    out = []
    for rect in rows:
        claim = ctx.button("rect.claim_button", RectCb(rect.id, "claim"))
        context = await supervise.rect_context(ctx.session, rect)
        out.append(Reply("rect.opened_notice", context, buttons=((claim,),)))
    return out


# --------------------------------------------------------------------------- /report


async def on_report(ctx: Ctx) -> list[Reply]:
    """Send this month's card of every pledge the sender reports on, and the pause choice."""
    _leave_mine(ctx)
    pledges = await fulfil.reportable(ctx.session, ctx.actor)
    if not pledges:
        return [ctx.reply("report.none")]
    replies = []
    today = None
    for pledge in pledges:
        today = _today(ctx, await fulfil.campaign_of(ctx.session, pledge))
        replies.append(await _card(ctx, pledge, fulfil.month_of(today), today))
    replies += await _open_rectifications(ctx, [p.id for p in pledges])
    replies.append(await _pause_line(ctx, today))
    return replies


async def on_progress(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Record one item's answer and edit the card; 有困难 then asks for the reason."""
    assert isinstance(cb, ProgressCb)
    item = await ctx.session.get(PledgeItem, cb.item_id)
    if item is None:
        raise DomainError("error.forbidden")
    pledge, campaign = await _pledge(ctx, item.pledge_id)
    today = _today(ctx, campaign)
    month = fulfil.month_from_code(cb.month)
    owing_before = await _owing(ctx, pledge.id, month)
    await fulfil.record(ctx.session, ctx.actor, item.id, month, cb.status, today=today)
    card = await _card(ctx, pledge, month, today, edit=_message_id(ctx))
    replies = [card, Reply(f"report.toast_{cb.status.value}", toast=True)]
    if cb.status is Progress.BLOCKED:
        ctx.state.enter(
            BLOCKED_DIALOG, "reason", pledge_id=pledge.id, item_id=item.id, month=month
        )
        replies.append(ctx.reply("report.ask_blocked", content=item.content))
    elif owing_before and card.context["complete"]:
        replies.append(_thanks(ctx, pledge.id, month))
    return replies


async def on_rest(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Report every item not yet answered as on track, edit the card, and thank."""
    assert isinstance(cb, RestCb)
    pledge, campaign = await _pledge(ctx, cb.pledge_id)
    today = _today(ctx, campaign)
    month = fulfil.month_from_code(cb.month)
    count = await fulfil.record_rest_on_track(
        ctx.session, ctx.actor, pledge.id, month, today=today
    )
    card = await _card(ctx, pledge, month, today, edit=_message_id(ctx))
    return [
        card,
        Reply("report.rest_toast", {"count": count}, toast=True),
        _thanks(ctx, pledge.id, month),
    ]


async def on_blocked_reason(ctx: Ctx) -> list[Reply]:
    """Keep the reason typed for a blocked item as its note."""
    text = _text(ctx)
    if not text:
        return [ctx.reply("report.reason_required")]
    data = ctx.state.data
    pledge, campaign = await _pledge(ctx, int(data["pledge_id"]))
    month = data["month"]
    await fulfil.record(
        ctx.session,
        ctx.actor,
        int(data["item_id"]),
        month,
        Progress.BLOCKED,
        today=_today(ctx, campaign),
        note=text,
    )
    ctx.state.clear()
    complete = await _owing(ctx, pledge.id, month) == 0
    return [ctx.reply("report.blocked_saved", complete=complete)]


async def on_note(ctx: Ctx) -> list[Reply]:
    """Add a note or a photo to this month's reports while the window is open."""
    data = ctx.state.data
    if datetime.fromisoformat(data["until"]) < ctx.now:
        ctx.state.clear()
        return [ctx.reply("help.hint")]
    pledge, campaign = await _pledge(ctx, int(data["pledge_id"]))
    today = _today(ctx, campaign)
    event = ctx.event
    if isinstance(event, PhotoReceived):
        await fulfil.add_evidence(
            ctx.session,
            ctx.actor,
            pledge.id,
            data["month"],
            today=today,
            note=event.caption,
            photo=event.file_id,
        )
        return [ctx.reply("report.photo_saved")]
    text = _text(ctx)
    if not text:
        return [ctx.reply("report.ask_note")]
    await fulfil.add_evidence(
        ctx.session, ctx.actor, pledge.id, data["month"], today=today, note=text
    )
    return [ctx.reply("report.note_saved")]


# --------------------------------------------------------------------------- pauses


async def on_pause(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Offer the reasons for a pause, or ask until when for the one chosen."""
    assert isinstance(cb, PauseCb)
    if cb.reason is None:
        reasons = [ctx.button(f"report.pause_reason.{r.value}", PauseCb(r)) for r in PauseReason]
        rows = (tuple(reasons[:2]), tuple(reasons[2:]))
        return [Reply("report.pause_choose", buttons=rows, edit_message_id=_message_id(ctx))]
    ctx.state.enter(PAUSE_DIALOG, "until", reason=cb.reason.value)
    return [ctx.reply("report.pause_ask_until", reason=cb.reason.value)]


async def on_pause_until(ctx: Ctx) -> list[Reply]:
    """Pause the sender's reminders until the day typed."""
    text = _text(ctx) or ""
    campaign = await _actor_campaign(ctx)
    today = _today(ctx, campaign)
    until = _parse_date(text, today)
    if until is None:
        return [ctx.reply("report.pause_bad_date", text=text[:DATE_MAX])]
    reason = PauseReason(ctx.state.data["reason"])
    pause = await fulfil.pause(
        ctx.session, ctx.actor, reason, today=today, until=until, campaign=campaign
    )
    ctx.state.clear()
    return [_paused_reply(ctx, pause, "report.paused_done")]


async def on_resume(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """End the sender's pause from today."""
    assert isinstance(cb, ResumeCb)
    today = _today(ctx, await _actor_campaign(ctx))
    count = await fulfil.resume(ctx.session, ctx.actor, today=today)
    return [
        Reply("report.resumed", {"count": count}, edit_message_id=_message_id(ctx)),
        Reply("report.resumed_toast", toast=True),
    ]


# --------------------------------------------------------------------------- 限期整改


async def on_rectify(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Start 限期整改 on a ledger item: ask the reason first."""
    assert isinstance(cb, RectifyCb)
    item = await ctx.session.get(PledgeItem, cb.item_id)
    pledge = await ctx.session.get(Pledge, item.pledge_id) if item else None
    if pledge is None or not await access.may_supervise(ctx.session, ctx.actor, pledge):
        raise DomainError("error.forbidden")
    if pledge.status is not PledgeStatus.PUBLISHED:
        raise DomainError("error.stale_card")
    ctx.state.enter(RECT_OPEN_DIALOG, "reason", pledge_id=pledge.id, item_id=item.id)
    owner = await owner_name(ctx.session, pledge)
    replies = [ctx.reply("rect.ask_reason", owner=owner, item=item.content)]
    if pledge.owner_member_id is not None:
        today = _today(ctx, await fulfil.campaign_of(ctx.session, pledge))
        member = pledge.owner_member_id
        pause = (await supervise.pauses_on(ctx.session, [member], today, today)).get(member)
        if pause is not None:
            context = {"name": owner, **supervise.pause_context(pause)}
            replies.insert(0, Reply("supervise.rect.paused", context))
    return replies


async def on_rect_input(ctx: Ctx) -> list[Reply]:
    """Take the reason, then the deadline, and open the rectification."""
    text = _text(ctx)
    data = ctx.state.data
    if ctx.state.step == "reason":
        if not text:
            return [ctx.reply("rect.reason_required")]
        if len(text) > supervise.REASON_MAX:
            raise DomainError("error.too_long", limit=supervise.REASON_MAX)
        ctx.state.enter(RECT_OPEN_DIALOG, "deadline", **{**data, "reason": text})
        return [ctx.reply("rect.ask_deadline")]
    pledge, campaign = await _pledge(ctx, int(data["pledge_id"]))
    today = _today(ctx, campaign)
    deadline = _parse_date(text or "", today)
    if deadline is None:
        return [ctx.reply("rect.date_unreadable", text=(text or "")[:DATE_MAX])]
    rect = await supervise.open_rectification(
        ctx.session,
        ctx.actor,
        pledge.id,
        reason=data["reason"],
        deadline=deadline,
        today=today,
        codec=ctx.codec,
        item_id=int(data["item_id"]) if data.get("item_id") is not None else None,
    )
    ctx.state.clear()
    context = await supervise.rect_context(ctx.session, rect)
    return [Reply("rect.opened_done", context)]


async def on_rect(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """整改完成 asks the owner for a note; the opener confirms it or sends it back."""
    assert isinstance(cb, RectCb)
    if cb.action == "claim":
        rect = await supervise.claimable(ctx.session, ctx.actor, cb.rect_id)
        ctx.state.enter(RECT_CLAIM_DIALOG, "note", rect_id=rect.id, message_id=_message_id(ctx))
        context = await supervise.rect_context(ctx.session, rect)
        return [Reply("rect.ask_claim_note", context)]
    if cb.action not in ("close", "reopen"):
        raise DomainError("error.bad_button")
    accept = cb.action == "close"
    rect = await supervise.close_rectification(
        ctx.session, ctx.actor, cb.rect_id, accept=accept, codec=ctx.codec
    )
    context = await supervise.rect_context(ctx.session, rect)
    return [
        Reply("rect.claimed_notice", context, edit_message_id=_message_id(ctx)),
        Reply("rect.closed_toast" if accept else "rect.reopened_toast", toast=True),
    ]


async def on_rect_claim_note(ctx: Ctx) -> list[Reply]:
    """Report the rectification done with the note typed; the opener is asked to confirm."""
    text = _text(ctx)
    if not text:
        return [ctx.reply("rect.claim_note_required")]
    if len(text) > supervise.REASON_MAX:
        raise DomainError("error.too_long", limit=supervise.REASON_MAX)
    data = ctx.state.data
    rect = await supervise.claim_rectified(
        ctx.session, ctx.actor, int(data["rect_id"]), codec=ctx.codec, note=text
    )
    ctx.state.clear()
    context = await supervise.rect_context(ctx.session, rect)
    replies = []
    if data.get("message_id"):
        replies.append(Reply("rect.opened_notice", context, edit_message_id=data["message_id"]))
    replies.append(Reply("rect.claim_sent", context))
    return replies
