"""S6/S7 in chat: 每月一报 (/report, its card, pauses), the branch's 月报, the 台账, 限期整改.

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
        [*] --> summary_fix : 补充更正 on the summary card
        summary_fix --> [*] : the remark, typed (confirms the report)
        [*] --> rect_open : 限期整改 on /ledger
        rect_open --> rect_open : the reason (then the deadline is asked)
        rect_open --> [*] : the deadline, typed
        [*] --> rect_claim : 整改完成 on a rectification notice
        rect_claim --> [*] : a short note on what was done, typed
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select

from campaign import access, fulfil, monthly, propose, supervise
from campaign.cards import RectCb, owner_name
from campaign.monthly import ProgressCb, RestCb, SummaryCb
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from handlers.events import ButtonPressed, PhotoReceived, TextReceived
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Org, Role
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
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
#: ledger items per message (each message carries the buttons of its own items)
LEDGER_ROWS = 15
#: characters of an item's content shown in the ledger
LEDGER_CHARS = 24
#: rectify buttons per row
BUTTONS_PER_ROW = 3
#: the longest typed date looked at
DATE_MAX = 40
SECRETARY_RECTIFIES = ("overdue", "blocked")


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
    today = _today(ctx, await _actor_campaign(ctx))
    until = _parse_date(text, today)
    if until is None:
        return [ctx.reply("report.pause_bad_date", text=text[:DATE_MAX])]
    reason = PauseReason(ctx.state.data["reason"])
    pause = await fulfil.pause(ctx.session, ctx.actor, reason, today=today, until=until)
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


# --------------------------------------------------------------------------- 月报 (summary)


async def _summary_card(
    ctx: Ctx, campaign_id: int, org_id: int, month: str, today: date, *, edit: str | None = None
) -> Reply:
    card = await monthly.summary_card(
        ctx.session, ctx.codec, campaign_id, org_id, month, today=today, edit_message_id=edit
    )
    if not card.context["confirmed"]:
        return card
    # Confirming again updates the figures; the label says so.
    buttons = tuple(
        tuple(dataclasses.replace(b, context={**b.context, "again": True}) for b in row)
        for row in card.buttons
    )
    return dataclasses.replace(card, buttons=buttons)


async def on_summary_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Confirm the branch's month in one tap, or ask for the remark first."""
    assert isinstance(cb, SummaryCb)
    if not ctx.actor.is_secretary_of(cb.org_id):
        raise DomainError("error.forbidden")
    org, campaign = await _org_campaign(ctx, cb.org_id)
    today = _today(ctx, campaign)
    month = fulfil.month_from_code(cb.month)
    if cb.action == "ok":
        await supervise.confirm_branch(
            ctx.session, ctx.actor, campaign.id, org.id, month, today=today
        )
        card = await _summary_card(ctx, campaign.id, org.id, month, today, edit=_message_id(ctx))
        return [card, Reply("summary.confirmed_toast", toast=True)]
    if cb.action == "fix":
        ctx.state.enter(
            SUMMARY_DIALOG,
            "remarks",
            org_id=org.id,
            month=month,
            campaign_id=campaign.id,
            message_id=_message_id(ctx),
        )
        return [ctx.reply("summary.ask_remarks", org=org.name, month=month)]
    raise DomainError("error.bad_button")


async def on_summary_remarks(ctx: Ctx) -> list[Reply]:
    """Confirm the branch's month with the remark typed."""
    text = _text(ctx)
    if not text:
        return [ctx.reply("summary.remarks_required")]
    data = ctx.state.data
    org_id, campaign_id, month = int(data["org_id"]), int(data["campaign_id"]), data["month"]
    org, campaign = await _org_campaign(ctx, org_id)
    today = _today(ctx, campaign)
    await supervise.confirm_branch(
        ctx.session, ctx.actor, campaign_id, org_id, month, today=today, remarks=text
    )
    ctx.state.clear()
    card = await _summary_card(ctx, campaign_id, org_id, month, today, edit=data.get("message_id"))
    return [card, ctx.reply("summary.confirmed_remarks", org=org.name, month=month)]


async def on_summary(ctx: Ctx) -> list[Reply]:
    """A secretary gets the branch's card; a reviewer or office the roll-up of their level."""
    _leave_mine(ctx)
    actor = ctx.actor
    secretary_of = actor.orgs_with(Role.SECRETARY)
    levels = list(dict.fromkeys([*actor.orgs_with(Role.REVIEWER), *actor.orgs_with(Role.OFFICE)]))
    if not secretary_of and not levels:
        return [ctx.reply("summary.not_allowed")]
    replies = []
    for org_id in secretary_of:
        org, campaign = await _org_campaign(ctx, org_id)
        today = _today(ctx, campaign)
        replies.append(
            await _summary_card(ctx, campaign.id, org.id, fulfil.month_of(today), today)
        )
    for org_id in levels:
        org = await ctx.session.get(Org, org_id)
        campaign = await propose.campaign_for(ctx.session, org) if org else None
        if campaign is None:
            continue
        today = _today(ctx, campaign)
        summary = await supervise.subtree_summary(
            ctx.session, campaign.id, org.id, fulfil.month_of(today), today
        )
        replies.append(Reply("summary.subtree", summary))
    return replies or [ctx.reply("summary.none")]


# --------------------------------------------------------------------------- 台账 (ledger)


def _short(text: str) -> str:
    return text if len(text) <= LEDGER_CHARS else text[: LEDGER_CHARS - 1] + "…"


async def _in_rectification(ctx: Ctx, item_ids: list[int]) -> set[int]:
    rows = await ctx.session.exec(
        select(Rectification.item_id).where(
            col(Rectification.item_id).in_(item_ids),
            Rectification.status != RectificationStatus.CLOSED,
        )
    )
    return {i for i in rows.all() if i is not None}


async def _ledger_replies(ctx: Ctx, org: Org, campaign: Campaign) -> list[Reply]:
    today = _today(ctx, campaign)
    rows = await supervise.ledger(ctx.session, campaign.id, org.id, today)
    if not rows:
        return [ctx.reply("ledger.empty", org=org.name)]
    busy = await _in_rectification(ctx, [r.item_id for r in rows if r.item_id is not None])
    entries = []
    for n, row in enumerate(rows, 1):
        entries.append(
            {
                "n": n,
                "item_id": row.item_id,
                "owner": row.owner,
                "kind": row.kind,
                "content": _short(row.content),
                "registered": row.registered.isoformat() if row.registered else None,
                "deadline": row.deadline.isoformat() if row.deadline else None,
                "state": row.state,
                "done_on": row.done_on.isoformat() if row.done_on else None,
                "rect": row.item_id in busy,
                # a secretary supervises members' pledges; the branch's own goes up a level
                "rectify": row.kind == OwnerKind.MEMBER.value
                and row.state in SECRETARY_RECTIFIES
                and row.item_id not in busy,
            }
        )
    chunks = [entries[i : i + LEDGER_ROWS] for i in range(0, len(entries), LEDGER_ROWS)]
    replies = []
    for part, chunk in enumerate(chunks, 1):
        buttons = [
            ctx.button("ledger.rectify_button", RectifyCb(e["item_id"]), n=e["n"])
            for e in chunk
            if e["rectify"]
        ]
        rows_of_buttons = tuple(
            tuple(buttons[i : i + BUTTONS_PER_ROW])
            for i in range(0, len(buttons), BUTTONS_PER_ROW)
        )
        replies.append(
            Reply(
                "ledger.text",
                {
                    "org": org.name,
                    "today": today.isoformat(),
                    "entries": chunk,
                    "part": part,
                    "parts": len(chunks),
                    "rectifiable": bool(buttons),
                },
                buttons=rows_of_buttons,
            )
        )
    return replies


async def on_ledger(ctx: Ctx) -> list[Reply]:
    """Show the branch's 台账 to its secretary, with 限期整改 on items overdue or blocked."""
    _leave_mine(ctx)
    orgs = ctx.actor.orgs_with(Role.SECRETARY)
    if not orgs:
        return [ctx.reply("ledger.not_allowed")]
    replies = []
    for org_id in orgs:
        org, campaign = await _org_campaign(ctx, org_id)
        replies += await _ledger_replies(ctx, org, campaign)
    return replies


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
    return [ctx.reply("rect.ask_reason", owner=owner, item=item.content)]


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
        item_id=int(data["item_id"]) if data.get("item_id") else None,
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
