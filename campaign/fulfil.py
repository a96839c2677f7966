"""S5/S6 扎实履承诺 and 每月一报: monthly progress, crossing items off, pauses, overdue items.

Each person with a published pledge reports once a month, item by item: on track, done
(crossed off — 登记销号 — with the date) or blocked (with a short reason). They are asked only
for items still open and only if they have not reported this month ("最多报一次"); paused
people are not asked at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import access, audit, outbox, people, propose
from campaign.access import Actor
from campaign.cards import owner_name
from campaign.dates import within_campaign
from models.base import utcnow
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Member, Org, Role, RoleGrant
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.progress import Pause, PauseReason, Progress, ProgressReport
from models.reply import Attachment, Reply

NOTE_MAX = 1000
PHOTOS_MAX = 9
PAUSE_MAX_DAYS = 366


def month_of(day: date) -> str:
    """Return the month key of a date (``2026-05``)."""
    return f"{day.year:04d}-{day.month:02d}"


def month_code(month: str) -> int:
    """Return a month key as a number for buttons (``2026-05`` → 202605)."""
    return int(month.replace("-", ""))


def month_from_code(code: int) -> str:
    """Return the month key of a button's number (202605 → ``2026-05``)."""
    return f"{code // 100:04d}-{code % 100:02d}"


def local_now(campaign: Campaign, now: datetime) -> datetime:
    """Return ``now`` in the campaign's time zone (days and hours are local)."""
    return now.astimezone(ZoneInfo(campaign.timezone))


async def campaign_of(session: AsyncSession, pledge: Pledge) -> Campaign:
    """Return the campaign a pledge belongs to."""
    return await session.get(Campaign, pledge.campaign_id)


async def open_items(session: AsyncSession, pledge_id: int) -> list[PledgeItem]:
    """Return the items not yet crossed off, in order."""
    return [i for i in await propose.items_of(session, pledge_id) if i.done_on is None]


async def reports_of(
    session: AsyncSession, pledge_id: int, month: str
) -> dict[int, ProgressReport]:
    """Return this month's report of each item of a pledge, by item id."""
    rows = await session.exec(
        select(ProgressReport).where(
            ProgressReport.pledge_id == pledge_id, ProgressReport.month == month
        )
    )
    return {r.item_id: r for r in rows.all()}


async def reportable(session: AsyncSession, actor: Actor) -> list[Pledge]:
    """Return the published pledges the actor reports on: their own, and their branch's."""
    orgs = actor.orgs_with(Role.SECRETARY)
    rows = await session.exec(
        select(Pledge)
        .join(Campaign, col(Campaign.id) == Pledge.campaign_id)
        .where(
            Pledge.status == PledgeStatus.PUBLISHED,
            Campaign.active == True,  # noqa: E712
            or_(
                (col(Pledge.owner_kind) == OwnerKind.MEMBER)
                & (col(Pledge.owner_member_id) == actor.member_id),
                (col(Pledge.owner_kind) == OwnerKind.ORG) & col(Pledge.org_id).in_(orgs),
            ),
        )
        .order_by(col(Pledge.owner_kind), col(Pledge.id))
    )
    return list(rows.all())


async def _reportable_item(
    session: AsyncSession, actor: Actor, item_id: int, month: str, today: date
) -> tuple[Pledge, PledgeItem]:
    item = await session.get(PledgeItem, item_id)
    pledge = await session.get(Pledge, item.pledge_id) if item else None
    if pledge is None or not access.may_draft(actor, pledge):
        raise DomainError("error.forbidden")
    if pledge.status is not PledgeStatus.PUBLISHED:
        raise DomainError("error.stale_card")
    if month != month_of(today):
        raise DomainError("report.month_closed", month=month)
    if item.done_on is not None and month_of(item.done_on) != month:
        raise DomainError("report.item_done", done_on=item.done_on.isoformat())
    return pledge, item


async def record(
    session: AsyncSession,
    actor: Actor,
    item_id: int,
    month: str,
    status: Progress,
    *,
    today: date,
    note: str = "",
    tell: bool = True,
) -> ProgressReport:
    """Record this month's state of one item; done crosses it off with today's date.

    A second answer in the same month replaces the first (a correction, not a second report).
    A difficulty with a reason is told to the overseers unless ``tell`` is False (the caller
    tells them once for several items: ``tell_blocked``).

    Raises:
        DomainError: ``report.month_closed`` for another month's card, ``report.item_done``
            for an item crossed off in an earlier month, ``error.forbidden``.
    """
    pledge, item = await _reportable_item(session, actor, item_id, month, today)
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise DomainError("error.too_long", limit=NOTE_MAX)
    row = (
        await session.exec(
            select(ProgressReport).where(
                ProgressReport.item_id == item_id, ProgressReport.month == month
            )
        )
    ).first()
    if row is None:
        row = ProgressReport(
            item_id=item_id,
            pledge_id=pledge.id,
            month=month,
            status=status,
            reported_by=actor.member_id,
        )
    row.status = status
    row.reported_at = utcnow()
    row.reported_by = actor.member_id
    if note:
        row.note = note
    item.done_on = today if status is Progress.DONE else None
    session.add(item)
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        "progress.reported",
        actor=actor.member_id,
        subject=f"item:{item_id}",
        payload={"month": month, "status": status.value, "note": note},
    )
    if status is Progress.BLOCKED and note and tell:
        context = {"content": item.content, "note": note}
        digest = _digest(note)
        await _tell_overseers(
            session,
            actor,
            pledge,
            "supervise.notice.blocked",
            context,
            f"blocked:{row.id}:{digest}",
        )
    return row


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def overseers(session: AsyncSession, pledge: Pledge) -> list[int]:
    """Return who is told what a pledge's owner says: the branch's secretaries, or upward.

    A member's difficulty, notes and photos go to the secretaries of the member's branch; an
    organization's (reported by its secretary) to the reviewers of the level above.
    """
    if pledge.owner_kind is OwnerKind.MEMBER:
        return await people.secretaries(session, pledge.org_id)
    org = await session.get(Org, pledge.org_id)
    if org is None or org.parent_id is None:
        return []
    return await people.holders(session, Role.REVIEWER, org.parent_id)


async def _tell_overseers(
    session: AsyncSession,
    actor: Actor,
    pledge: Pledge,
    template: str,
    context: dict,
    key: str,
    attachment: Attachment | None = None,
) -> None:
    org = await session.get(Org, pledge.org_id)
    context = {
        **context,
        "owner": await owner_name(session, pledge),
        "org": org.name if org else "",
    }
    reply = Reply(template, context, attachment=attachment)
    for member_id in await overseers(session, pledge):
        if member_id != actor.member_id:
            await outbox.notify_member(session, member_id, reply, key=f"{key}:{member_id}")


async def tell_blocked(
    session: AsyncSession, actor: Actor, pledge: Pledge, contents: list[str], note: str, month: str
) -> None:
    """Tell the overseers once that several items of a pledge are in difficulty, for one reason.

    For an answer that covers every open item at once (an SMS "2 原因"): one notice naming the
    items, not one per item.
    """
    if not contents or not note:
        return
    context = {"content": "」「".join(contents), "note": note}
    key = f"blocked-all:{pledge.id}:{month}:{_digest(note)}"
    await _tell_overseers(session, actor, pledge, "supervise.notice.blocked", context, key)


async def record_rest_on_track(
    session: AsyncSession, actor: Actor, pledge_id: int, month: str, *, today: date
) -> int:
    """Report every open item not yet answered this month as on track; return how many."""
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None or not access.may_draft(actor, pledge):
        raise DomainError("error.forbidden")
    if month != month_of(today):
        raise DomainError("report.month_closed", month=month)
    done = await reports_of(session, pledge_id, month)
    count = 0
    for item in await open_items(session, pledge_id):
        if item.id not in done:
            await record(session, actor, item.id, month, Progress.ON_TRACK, today=today)
            count += 1
    return count


async def add_evidence(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    month: str,
    *,
    today: date,
    note: str = "",
    photo: str | None = None,
) -> int:
    """Attach a note or a photo to this month's reports of a pledge; return the rows touched.

    Raises:
        DomainError: ``report.nothing_yet`` before any item is reported this month.
    """
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None or not access.may_draft(actor, pledge):
        raise DomainError("error.forbidden")
    if month != month_of(today):
        raise DomainError("report.month_closed", month=month)
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise DomainError("error.too_long", limit=NOTE_MAX)
    rows = list((await reports_of(session, pledge_id, month)).values())
    if not rows:
        raise DomainError("report.nothing_yet")
    for row in rows:
        if note:
            row.note = f"{row.note}\n{note}".strip()[:NOTE_MAX]
        if photo and photo not in row.photos and len(row.photos) < PHOTOS_MAX:
            row.photos = [*row.photos, photo]
        session.add(row)
    await audit.record(
        session,
        "progress.evidence",
        actor=actor.member_id,
        subject=f"pledge:{pledge_id}",
        payload={"month": month, "note": note, "photo": photo},
    )
    context = {"month": month, "note": note}
    if photo:
        await _tell_overseers(
            session,
            actor,
            pledge,
            "supervise.notice.photo",
            context,
            f"evidence:{pledge_id}:{month}:{_digest(photo)}",
            Attachment(kind="photo", file_id=photo),
        )
    elif note:
        await _tell_overseers(
            session,
            actor,
            pledge,
            "supervise.notice.note",
            context,
            f"evidence:{pledge_id}:{month}:{_digest(note)}",
        )
    return len(rows)


async def pause(
    session: AsyncSession,
    actor: Actor,
    reason: PauseReason,
    *,
    today: date,
    until: date,
    campaign: Campaign | None = None,
) -> Pause:
    """Stop asking the actor for progress until a date (请假, 生病, 外出务工).

    Raises:
        DomainError: ``report.bad_pause`` for a date in the past or over a year ahead;
            ``date.outside_campaign`` for one after the campaign's end.
    """
    if until < today or until > today + timedelta(days=PAUSE_MAX_DAYS):
        raise DomainError("report.bad_pause")
    if campaign is not None:
        within_campaign(until, campaign, earliest=today)
    row = Pause(
        member_id=actor.member_id,
        starts_on=today,
        ends_on=until,
        reason=reason,
        created_by=actor.member_id,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        "progress.paused",
        actor=actor.member_id,
        subject=f"member:{actor.member_id}",
        payload={"reason": reason.value, "until": until.isoformat()},
    )
    return row


async def resume(session: AsyncSession, actor: Actor, *, today: date) -> int:
    """End the actor's pauses from today; return how many were ended."""
    rows = (
        await session.exec(
            select(Pause).where(Pause.member_id == actor.member_id, Pause.ends_on >= today)
        )
    ).all()
    for row in rows:
        row.ends_on = today - timedelta(days=1)
        session.add(row)
    return len(rows)


async def paused_members(session: AsyncSession, day: date) -> set[int]:
    """Return the members paused on a day."""
    rows = await session.exec(
        select(Pause.member_id).where(Pause.starts_on <= day, Pause.ends_on >= day)
    )
    return set(rows.all())


@dataclass(frozen=True)
class Due:
    """One person to ask about one pledge this month."""

    pledge_id: int
    member_id: int


async def due_reporters(
    session: AsyncSession, campaign: Campaign, month: str, day: date
) -> list[Due]:
    """Return who still owes this month's report, pledge by pledge (not paused, items open).

    A pledge is owed when one of its open items has no report this month. A member's pledge
    is reported by the member; an organization's by its secretaries.
    """
    reported = (
        select(ProgressReport.item_id).where(ProgressReport.month == month).scalar_subquery()
    )
    owing = (
        select(Pledge.id, Pledge.owner_kind, Pledge.owner_member_id, Pledge.org_id)
        .join(PledgeItem, col(PledgeItem.pledge_id) == Pledge.id)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.status == PledgeStatus.PUBLISHED,
            col(PledgeItem.done_on).is_(None),
            col(PledgeItem.id).not_in(reported),
        )
        .distinct()
    )
    rows = (await session.exec(owing)).all()
    paused = await paused_members(session, day)
    org_ids = {org for _, kind, _, org in rows if kind == OwnerKind.ORG}
    secretaries: dict[int, list[int]] = {}
    if org_ids:
        grants = await session.exec(
            select(RoleGrant.org_id, RoleGrant.member_id)
            .join(Member, col(Member.id) == RoleGrant.member_id)
            .where(
                RoleGrant.role == Role.SECRETARY,
                col(RoleGrant.org_id).in_(org_ids),
                Member.active == True,  # noqa: E712
            )
        )
        for org_id, member_id in grants.all():
            secretaries.setdefault(org_id, []).append(member_id)
    out: list[Due] = []
    for pledge_id, kind, owner, org_id in rows:
        people = [owner] if kind == OwnerKind.MEMBER else secretaries.get(org_id, [])
        out += [Due(pledge_id, m) for m in people if m not in paused]
    return sorted(out, key=lambda d: (d.member_id, d.pledge_id))


async def overdue_items(session: AsyncSession, campaign: Campaign, day: date) -> list[tuple]:
    """Return (item, pledge) pairs past their deadline and not crossed off; never standing ones."""
    rows = await session.exec(
        select(PledgeItem, Pledge)
        .join(Pledge, col(Pledge.id) == PledgeItem.pledge_id)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.status == PledgeStatus.PUBLISHED,
            col(PledgeItem.done_on).is_(None),
            col(PledgeItem.deadline) < day,
            col(PledgeItem.standing) == False,  # noqa: E712 — a standing duty is never overdue
        )
    )
    return list(rows.all())
