"""S6 in chat, seen from above: /summary (the branch's 月报, a level's roll-up) and /ledger.

A secretary confirms the branch's month; a correction is typed, shown as it will go up, and
sent only by a separate 确认上报. Confirming while people still owe their report says how many
and offers 提醒未报的人 — the calendar's own reminder, so nobody is reminded twice in a month.
A reviewer or office sees the roll-up of its level over the whole subtree and opens any
branch's 台账 below it, level by level, down to who has not reported this month.

Dialog of this module (its text handler is the transition); /cancel, /summary, /ledger leave
it::

    stateDiagram-v2
        [*] --> summary_fix : 补充更正 on the summary card
        summary_fix --> summary_fix : the remark, typed (shown as it will go up)
        summary_fix --> [*] : 确认上报 on the preview
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select

from campaign import access, fulfil, monthly, propose, rollup, supervise
from campaign.cards import owner_name
from campaign.monthly import SummaryCb
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from handlers.report import (
    RECT_OPEN_DIALOG,
    SUMMARY_DIALOG,
    RectifyCb,
    _leave_mine,
    _message_id,
    _org_campaign,
    _text,
    _today,
)
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Org, Role
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.progress import ProgressReport
from models.reply import Attachment, Button, Reply

#: ledger items per message (each message carries the buttons of its own items)
LEDGER_ROWS = 15
#: items /ledger shows in the chat at most (the first of the same stream as the file)
LEDGER_LIMIT = 300
#: characters of an item's content shown in the ledger
LEDGER_CHARS = 24
#: characters of a note shown in the ledger
NOTE_CHARS = 60
#: rectify buttons per row
BUTTONS_PER_ROW = 3
#: organizations per page when drilling down, two a row
CHILDREN_PER_PAGE = 40
SECRETARY_RECTIFIES = ("overdue", "blocked")


@dataclass(frozen=True)
class LedgerCb(CallbackData):
    """Open an organization's 台账 from above: its children to choose, or its own ledger."""

    prefix = "lo"
    org_id: int
    page: int = 0
    own: bool = False


@dataclass(frozen=True)
class RectMemberCb(CallbackData):
    """Open 限期整改 on a member's pledge for two months without a report."""

    prefix = "lm"
    pledge_id: int


@dataclass(frozen=True)
class RemindCb(CallbackData):
    """Remind the branch's members who still owe this month's report (once a month)."""

    prefix = "rn"
    org_id: int
    month: int


@dataclass(frozen=True)
class PhotosCb(CallbackData):
    """Show the evidence photos of one ledger item this month."""

    prefix = "lph"
    item_id: int


OVERSEE_TYPES: tuple[type[CallbackData], ...] = (LedgerCb, RectMemberCb, RemindCb, PhotosCb)


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


async def _confirmed(
    ctx: Ctx, campaign: Campaign, org: Org, month: str, today: date, *, remarks: str = ""
) -> list[Reply]:
    """Confirm the month; when people still owe their report, say so and offer a reminder."""
    row = await supervise.confirm_branch(
        ctx.session, ctx.actor, campaign.id, org.id, month, today=today, remarks=remarks
    )
    figures = row.figures
    if not figures.get("missing"):
        return []
    report = await supervise.branch_report(ctx.session, campaign.id, org.id, month, today)
    button = ctx.button(
        "supervise.summary.remind_button", RemindCb(org.id, fulfil.month_code(month))
    )
    return [
        Reply(
            "supervise.summary.unreported",
            {
                "people": figures["missing"],
                "items": report["owing_items"],
                "paused": figures.get("paused", 0),
            },
            buttons=((button,),),
        )
    ]


async def on_summary_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Confirm the branch's month in one tap, ask for a correction, or confirm the one shown."""
    assert isinstance(cb, SummaryCb)
    if not ctx.actor.is_secretary_of(cb.org_id):
        raise DomainError("error.forbidden")
    org, campaign = await _org_campaign(ctx, cb.org_id)
    today = _today(ctx, campaign)
    month = fulfil.month_from_code(cb.month)
    if cb.action == "ok":
        if ctx.state.dialog == SUMMARY_DIALOG:
            ctx.state.clear()  # confirmed as it stands: a remark being written is dropped
        after = await _confirmed(ctx, campaign, org, month, today)
        card = await _summary_card(ctx, campaign.id, org.id, month, today, edit=_message_id(ctx))
        return [card, Reply("summary.confirmed_toast", toast=True), *after]
    if cb.action == "fix":
        message_id = _message_id(ctx)
        if ctx.state.dialog == SUMMARY_DIALOG and ctx.state.data.get("org_id") == org.id:
            message_id = ctx.state.data.get("message_id") or message_id  # 重新填写 on a preview
        ctx.state.enter(
            SUMMARY_DIALOG,
            "remarks",
            org_id=org.id,
            month=month,
            campaign_id=campaign.id,
            message_id=message_id,
        )
        return [ctx.reply("summary.ask_remarks", org=org.name, month=month)]
    if cb.action == "okr":
        data = ctx.state.data
        if not (
            ctx.state.dialog == SUMMARY_DIALOG
            and ctx.state.step == "confirm"
            and data.get("org_id") == org.id
            and data.get("month") == month
        ):
            raise DomainError("supervise.summary.remark_lost")
        after = await _confirmed(ctx, campaign, org, month, today, remarks=data["remarks"])
        ctx.state.clear()
        card = await _summary_card(
            ctx, campaign.id, org.id, month, today, edit=data.get("message_id")
        )
        done = ctx.reply("summary.confirmed_remarks", org=org.name, month=month)
        preview = Reply(
            "summary.confirmed_remarks",
            {"org": org.name, "month": month},
            edit_message_id=_message_id(ctx),
        )
        return [card, preview if _message_id(ctx) else done, *after]
    raise DomainError("error.bad_button")


async def on_summary_remarks(ctx: Ctx) -> list[Reply]:
    """Show the branch's month with the remark typed, to confirm with a separate tap."""
    text = _text(ctx)
    if not text:
        return [ctx.reply("summary.remarks_required")]
    if len(text) > supervise.REASON_MAX:
        raise DomainError("error.too_long", limit=supervise.REASON_MAX)
    data = ctx.state.data
    org_id, month = int(data["org_id"]), data["month"]
    _, campaign = await _org_campaign(ctx, org_id)
    today = _today(ctx, campaign)
    ctx.state.enter(SUMMARY_DIALOG, "confirm", **{**data, "remarks": text})
    report = await supervise.branch_report(ctx.session, campaign.id, org_id, month, today)
    code = fulfil.month_code(month)
    buttons = (
        (
            ctx.button("supervise.summary.confirm_button", SummaryCb(org_id, code, "okr")),
            ctx.button("supervise.summary.rewrite_button", SummaryCb(org_id, code, "fix")),
        ),
    )
    return [Reply("supervise.summary.preview", {**report, "remarks": text}, buttons=buttons)]


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
        summary = await rollup.rollup(ctx.session, campaign, org.id, fulfil.month_of(today), today)
        replies.append(Reply(f"supervise.rollup_{summary['phase']}", summary))
    return replies or [ctx.reply("summary.none")]


async def on_remind(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Remind whoever still owes this month's report, with the calendar's one reminder."""
    assert isinstance(cb, RemindCb)
    org, campaign = await _org_campaign(ctx, cb.org_id)
    counts = await monthly.remind_owing(
        ctx.session,
        ctx.codec,
        ctx.actor,
        campaign,
        org.id,
        fulfil.month_from_code(cb.month),
        today=_today(ctx, campaign),
    )
    return [Reply("supervise.summary.reminded", counts)]


# --------------------------------------------------------------------------- 台账 (ledger)


def _short(text: str, limit: int = LEDGER_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _ledger_replies(ctx: Ctx, org: Org, campaign: Campaign) -> list[Reply]:
    today = _today(ctx, campaign)
    rows = await supervise.ledger(ctx.session, campaign.id, org.id, today, limit=LEDGER_LIMIT + 1)
    more = len(rows) > LEDGER_LIMIT
    rows = rows[:LEDGER_LIMIT]
    if not rows:
        return [ctx.reply("ledger.empty", org=org.name)]
    # in rectification: a rectification still open on the item or its pledge (as the file says)
    busy = {r.item_id for r in rows if r.rect_deadline is not None}
    members = [r.member_id for r in rows if r.member_id is not None]
    pauses = await supervise.pauses_on(ctx.session, members, today, today)
    # A secretary supervises members' pledges; the branch's own goes up a level.
    kinds = (OwnerKind.MEMBER.value,)
    if access.oversees_from_above(ctx.actor, org):
        kinds = (OwnerKind.MEMBER.value, OwnerKind.ORG.value)
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
                "lookback": row.lookback,
                "note": _short(row.note.replace("\n", " "), NOTE_CHARS),
                "photos": row.photos,
                "pause": supervise.pause_context(pauses.get(row.member_id)),
                "rectify": row.kind in kinds
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
        photos = [
            ctx.button("supervise.ledger.photos_button", PhotosCb(e["item_id"]), n=e["n"])
            for e in chunk
            if e["photos"]
        ]
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
                buttons=_rows(buttons, BUTTONS_PER_ROW) + _rows(photos, BUTTONS_PER_ROW),
            )
        )
    if more:
        replies.append(ctx.reply("ledger.more", org=org.name, n=LEDGER_LIMIT))
    return replies


def _rows(buttons: list[Button], width: int) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + width]) for i in range(0, len(buttons), width))


async def _people_reply(ctx: Ctx, org: Org, campaign: Campaign) -> Reply:
    """Return who has not reported this month, who is paused, who has no pledge yet."""
    today = _today(ctx, campaign)
    month = fulfil.month_of(today)
    who = await supervise.branch_people(ctx.session, campaign, org.id, month, today)
    without = await supervise.without_pledge(ctx.session, campaign.id, org.id)
    silent = [e for e in who["missing"] if e.get("silent")]
    buttons = [
        ctx.button(
            "supervise.ledger.rectify_member_button",
            RectMemberCb(e["pledge_id"]),
            name=e["name"],
        )
        for e in silent
    ]
    return Reply(
        "supervise.ledger.people",
        {
            "org": org.name,
            "month": month,
            "missing": [{"name": e["name"], "silent": e.get("silent")} for e in who["missing"]],
            "paused": [
                {"name": e["name"], "reason": e["reason"], "until": e["until"]}
                for e in who["paused"]
            ],
            "without": without,
            "silent": bool(silent),
        },
        buttons=_rows(buttons, 2),
    )


async def _branch(ctx: Ctx, org: Org) -> list[Reply]:
    org, campaign = await _org_campaign(ctx, org.id)
    return [*await _ledger_replies(ctx, org, campaign), await _people_reply(ctx, org, campaign)]


async def _children(ctx: Ctx, org: Org) -> list[tuple[int, str]]:
    rows = await ctx.session.exec(
        select(Org.id, Org.name).where(Org.parent_id == org.id).order_by(col(Org.path))
    )
    return list(rows.all())


async def _has_pledges(ctx: Ctx, org: Org) -> bool:
    found = await ctx.session.exec(
        select(Pledge.id)
        .where(Pledge.org_id == org.id, Pledge.status == PledgeStatus.PUBLISHED)
        .limit(1)
    )
    return found.first() is not None


async def _level(ctx: Ctx, org: Org, page: int, *, edit: str | None = None) -> list[Reply]:
    """Return a level's children as buttons (paged), and its own ledger's when it has one."""
    children = await _children(ctx, org)
    own = access.may_see_org(ctx.actor, org) and await _has_pledges(ctx, org)
    if not children:
        if access.may_see_org(ctx.actor, org):
            return await _branch(ctx, org)  # a branch: its ledger, even empty, and its people
        return [ctx.reply("supervise.ledger.empty_level", org=org.name)]
    parts = max(1, -(-len(children) // CHILDREN_PER_PAGE))
    page = min(max(page, 0), parts - 1)
    shown = children[page * CHILDREN_PER_PAGE : (page + 1) * CHILDREN_PER_PAGE]
    buttons = []
    if own and page == 0:
        buttons.append(
            ctx.button("supervise.ledger.own_button", LedgerCb(org.id, 0, True), org=org.name)
        )
    buttons += [
        ctx.button("supervise.ledger.child_button", LedgerCb(child_id), org=name)
        for child_id, name in shown
    ]
    rows = _rows(buttons, 2)
    if page + 1 < parts:
        rows += ((ctx.button("supervise.ledger.more_button", LedgerCb(org.id, page + 1)),),)
    context = {"org": org.name, "count": len(children), "part": page + 1, "parts": parts}
    return [Reply("supervise.ledger.level", context, buttons=rows, edit_message_id=edit)]


async def on_ledger(ctx: Ctx) -> list[Reply]:
    """Show a secretary the branch's 台账; a reviewer or office the level to drill into."""
    _leave_mine(ctx)
    secretary_of = ctx.actor.orgs_with(Role.SECRETARY)
    levels = [*ctx.actor.orgs_with(Role.REVIEWER), *ctx.actor.orgs_with(Role.OFFICE)]
    if not secretary_of and not levels:
        return [ctx.reply("supervise.ledger.not_allowed")]
    replies = []
    for org_id in secretary_of:
        org = await ctx.session.get(Org, org_id)
        replies += await _branch(ctx, org)
    for org_id in dict.fromkeys(levels):
        if org_id in secretary_of and not await _children(ctx, await ctx.session.get(Org, org_id)):
            continue  # already shown as the branch
        org = await ctx.session.get(Org, org_id)
        replies += await _level(ctx, org, 0)
    return replies


async def on_ledger_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Open the organization chosen: a page of its children, or its own ledger."""
    assert isinstance(cb, LedgerCb)
    org = await ctx.session.get(Org, cb.org_id)
    if org is None:
        raise DomainError("error.forbidden")
    below = any(
        g.role in (Role.REVIEWER, Role.OFFICE) and org.path.startswith(g.org_path)
        for g in ctx.actor.grants
    )
    if not (access.may_see_org(ctx.actor, org) or below):
        raise DomainError("error.forbidden")
    if cb.own:
        if not access.may_see_org(ctx.actor, org):
            raise DomainError("error.forbidden")
        return await _branch(ctx, org)
    return await _level(ctx, org, cb.page, edit=_message_id(ctx) if cb.page else None)


# --------------------------------------------------------------------------- 限期整改 (silent)


async def on_rect_member(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Start 限期整改 on a member's pledge after two months without a report."""
    assert isinstance(cb, RectMemberCb)
    pledge = await ctx.session.get(Pledge, cb.pledge_id)
    if pledge is None or not await access.may_supervise(ctx.session, ctx.actor, pledge):
        raise DomainError("error.forbidden")
    if pledge.status is not PledgeStatus.PUBLISHED or pledge.owner_kind is not OwnerKind.MEMBER:
        raise DomainError("error.stale_card")
    campaign = await fulfil.campaign_of(ctx.session, pledge)
    today = _today(ctx, campaign)
    month = fulfil.month_of(today)
    who = await supervise.branch_people(ctx.session, campaign, pledge.org_id, month, today)
    if not any(e["pledge_id"] == pledge.id and e.get("silent") for e in who["missing"]):
        raise DomainError("error.stale_card")  # reported since the list was shown
    ctx.state.enter(RECT_OPEN_DIALOG, "reason", pledge_id=pledge.id, item_id=None)
    pauses = await supervise.pauses_on(ctx.session, [pledge.owner_member_id], today, today)
    owner = next(e["name"] for e in who["missing"] if e["pledge_id"] == pledge.id)
    return [
        ctx.reply(
            "supervise.rect.ask_reason",
            owner=owner,
            months=who["months"],
            pause=supervise.pause_context(pauses.get(pledge.owner_member_id)),
        )
    ]


async def on_photos(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Send the evidence photos of a ledger item this month to whoever may see the ledger."""
    assert isinstance(cb, PhotosCb)
    item = await ctx.session.get(PledgeItem, cb.item_id)
    pledge = await ctx.session.get(Pledge, item.pledge_id) if item else None
    org = await ctx.session.get(Org, pledge.org_id) if pledge else None
    if org is None or not access.may_see_org(ctx.actor, org):
        raise DomainError("error.forbidden")
    campaign = await fulfil.campaign_of(ctx.session, pledge)
    month = fulfil.month_of(_today(ctx, campaign))
    report = (
        await ctx.session.exec(
            select(ProgressReport).where(
                ProgressReport.item_id == item.id, ProgressReport.month == month
            )
        )
    ).first()
    if report is None or not report.photos:
        raise DomainError("error.stale_card")
    context = {
        "owner": await owner_name(ctx.session, pledge),
        "org": org.name,
        "month": month,
        "note": "",
    }
    return [
        Reply("supervise.notice.photo", context, attachment=Attachment(kind="photo", file_id=p))
        for p in report.photos
    ]
