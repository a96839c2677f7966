"""The monthly cards: the progress prompt (每月一报) and the branch's summary to confirm.

Both are rebuilt from the records each time, so the prompt, the reminder, /report and a
pressed button all show the same truth. The prompt is designed for three taps at most: an
on-track month is one tap on "all on track".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import fit, fulfil, outbox, propose, supervise
from campaign.access import Actor
from campaign.cards import owner_name
from models.callbacks import CallbackCodec, CallbackData
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Org
from models.pledge import Pledge
from models.progress import Progress
from models.reply import Button, Reply


@dataclass(frozen=True)
class ProgressCb(CallbackData):
    """One item's answer this month: on track, done, blocked."""

    prefix = "pg"
    item_id: int
    month: int
    status: Progress


@dataclass(frozen=True)
class RestCb(CallbackData):
    """Report every item not yet answered this month as on track."""

    prefix = "pa"
    pledge_id: int
    month: int


@dataclass(frozen=True)
class SummaryCb(CallbackData):
    """The secretary confirms the branch's month, or adds a correction first."""

    prefix = "sm"
    org_id: int
    month: int
    action: str


MONTHLY_TYPES: tuple[type[CallbackData], ...] = (ProgressCb, RestCb, SummaryCb)


def prompt_key(campaign_id: int, month: str, pledge_id: int, member_id: int, kind: str) -> str:
    """Return the outbox key of a monthly prompt or reminder (one per person, pledge, month)."""
    return f"{kind}:{campaign_id}:{month}:{pledge_id}:{member_id}"


async def report_card(
    session: AsyncSession,
    codec: CallbackCodec,
    pledge: Pledge,
    month: str,
    *,
    today: date,
    template: str = "report.card",
    edit_message_id: str | None = None,
) -> Reply:
    """Return the progress card of one pledge for one month, as it stands now."""
    items = await propose.items_of(session, pledge.id)
    reports = await fulfil.reports_of(session, pledge.id, month)
    org = await session.get(Org, pledge.org_id)
    code = fulfil.month_code(month)
    rows: list[dict[str, Any]] = []
    buttons: list[tuple[Button, ...]] = []
    for n, item in enumerate(items, 1):
        report = reports.get(item.id)
        done_before = item.done_on is not None and fulfil.month_of(item.done_on) != month
        rows.append(
            {
                "n": n,
                "content": item.content,
                "deadline": item.deadline.isoformat() if item.deadline else None,
                "status": report.status.value if report else None,
                "done_before": item.done_on.isoformat() if done_before else None,
                "overdue": bool(
                    item.deadline
                    and item.deadline < today
                    and not item.done_on
                    and not item.standing
                ),
            }
        )
        if done_before:
            continue
        buttons.append(
            tuple(
                Button(
                    f"report.button.{s.value}",
                    codec.encode(ProgressCb(item.id, code, s)),
                    context={"n": n, "on": report is not None and report.status is s},
                )
                for s in Progress
            )
        )
    owing = [r for r in rows if r["status"] is None and r["done_before"] is None]
    if owing:
        buttons.append((Button("report.button.rest", codec.encode(RestCb(pledge.id, code))),))
    ctx = {
        "month": month,
        "owner": await owner_name(session, pledge),
        "org": org.name if org else "",
        "kind": pledge.owner_kind.value,
        "items": rows,
        "complete": not owing,
        "owing": len(owing),
    }
    ctx, _ = fit.fit(template, ctx, _shorten_items)  # one message: a card is never split
    return Reply(template, ctx, buttons=tuple(buttons), edit_message_id=edit_message_id)


def _shorten_items(ctx: dict[str, Any], cap: int) -> dict[str, Any]:
    """Return a copy of a progress card's context with each item's content cut to ``cap``."""
    items = [{**it, "content": fit.clip(it["content"], cap)} for it in ctx["items"]]
    return {**ctx, "items": items}


async def summary_card(
    session: AsyncSession,
    codec: CallbackCodec,
    campaign_id: int,
    org_id: int,
    month: str,
    *,
    today: date,
    edit_message_id: str | None = None,
) -> Reply:
    """Return a branch's monthly summary for its secretary, with confirm / correct buttons."""
    report = await supervise.branch_report(session, campaign_id, org_id, month, today)
    code = fulfil.month_code(month)
    buttons = (
        (
            Button("summary.confirm", codec.encode(SummaryCb(org_id, code, "ok"))),
            Button("summary.correct", codec.encode(SummaryCb(org_id, code, "fix"))),
        ),
    )
    return Reply("summary.card", report, buttons=buttons, edit_message_id=edit_message_id)


async def remind_owing(
    session: AsyncSession,
    codec: CallbackCodec,
    actor: Actor,
    campaign: Campaign,
    org_id: int,
    month: str,
    *,
    today: date,
) -> dict[str, int]:
    """Send the month's reminder to a branch's members still owing it, as the calendar would.

    The outbox key is the calendar's, so nobody gets a second reminder in a month, whichever
    sends it first. Returns how many were reminded now, had been before, and have no account.

    Raises:
        DomainError: ``error.forbidden`` unless the actor is the branch's secretary,
            ``report.month_closed`` for another month.
    """
    if not actor.is_secretary_of(org_id):
        raise DomainError("error.forbidden")
    if month != fulfil.month_of(today):
        raise DomainError("report.month_closed", month=month)
    counts = {"sent": 0, "before": 0, "unbound": 0}
    cards: dict[int, Reply] = {}
    for due in await fulfil.due_reporters(session, campaign, month, today):
        pledge = await session.get(Pledge, due.pledge_id)
        if pledge.org_id != org_id:
            continue
        key = prompt_key(campaign.id, month, due.pledge_id, due.member_id, "reminder")
        accounts, before = await outbox.queued_before(session, due.member_id, key)
        if not accounts:
            counts["unbound"] += 1
            continue
        if before:
            counts["before"] += 1
            continue
        if due.pledge_id not in cards:
            cards[due.pledge_id] = await report_card(
                session, codec, pledge, month, today=today, template="report.reminder"
            )
        await outbox.notify_member(session, due.member_id, cards[due.pledge_id], key=key)
        counts["sent"] += 1
    return counts
