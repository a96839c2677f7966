"""S6 全程督承诺: the ledger, the branch's monthly report, roll-ups up the tree, rectification.

"分级管理，逐级上报": figures come only from the members' reports (nobody types a number), a
secretary confirms the branch's report in one tap, and each level sees its own subtree with
the units that have not submitted named. 限期整改 is opened by a secretary (on a member's
pledge) or by an upper level, has a deadline, and is closed only by whoever opened it.
"""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import access, audit, outbox, people
from campaign.access import Actor
from campaign.cards import RectCb, owner_name
from campaign.dates import within_campaign
from campaign.fulfil import month_of
from models.base import utcnow
from models.callbacks import CallbackCodec
from models.campaign import Campaign
from models.errors import DomainError
from models.lookback import LookBack
from models.org import Member, Org, Role, RoleGrant
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.progress import (
    OrgReport,
    Pause,
    Progress,
    ProgressReport,
    Rectification,
    RectificationStatus,
)
from models.reply import Button, Reply

REASON_MAX = 1000


def month_bounds(month: str) -> tuple[date, date]:
    """Return the first and last day of a month key."""
    y, m = (int(x) for x in month.split("-"))
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def item_figures(month: str, today: date):
    """Return the aggregate columns of the item figures of a month (items joined to reports)."""
    first, last = month_bounds(month)
    rep = ProgressReport.__table__.c
    item = PledgeItem.__table__.c
    return [
        func.count(item.id).label("items"),
        func.sum(case((item.done_on.is_not(None), 1), else_=0)).label("done"),
        func.sum(case((and_(item.done_on >= first, item.done_on <= last), 1), else_=0)).label(
            "done_month"
        ),
        func.sum(case((rep.status == Progress.ON_TRACK.value, 1), else_=0)).label("on_track"),
        func.sum(
            case((and_(rep.status == Progress.BLOCKED.value, item.done_on.is_(None)), 1), else_=0)
        ).label("blocked"),
        func.sum(case((and_(item.done_on.is_(None), item.deadline < today), 1), else_=0)).label(
            "overdue"
        ),
        func.sum(case((and_(item.done_on.is_(None), rep.id.is_(None)), 1), else_=0)).label(
            "unreported"
        ),
    ]


FIGURES = ("items", "done", "done_month", "on_track", "blocked", "overdue", "unreported")


def row_figures(row) -> dict:
    """Return the item figures of one result row."""
    return {k: int(getattr(row, k) or 0) for k in FIGURES}


def figures_select(campaign_id: int, month: str, today: date, org_path: str, *columns):
    """Return the item figures of a subtree's published pledges, with ``columns`` in front."""
    rep = ProgressReport.__table__.c
    return (
        select(*columns, *item_figures(month, today))
        .select_from(PledgeItem)
        .join(Pledge, col(Pledge.id) == PledgeItem.pledge_id)
        .join(Org, col(Org.id) == Pledge.org_id)
        .outerjoin(
            ProgressReport.__table__,
            and_(rep.item_id == PledgeItem.id, rep.month == month),
        )
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status == PledgeStatus.PUBLISHED,
            col(Org.path).startswith(org_path),
        )
    )


async def _figures_for(
    session: AsyncSession, campaign_id: int, month: str, today: date, *, org_path: str
) -> dict:
    query = figures_select(campaign_id, month, today, org_path)
    return row_figures((await session.exec(query)).one())


def previous_month(month: str) -> str:
    """Return the month key before a month key."""
    first, _ = month_bounds(month)
    return month_of(first - timedelta(days=1))


def asked_months(campaign: Campaign, today: date) -> tuple[str, str]:
    """Return the two latest months whose prompt has gone out, the latest first.

    A month counts once its report day has come, so "two months without a report" never
    counts a month nobody was asked yet.
    """
    month = month_of(today)
    if today.day < clamp_day(today.year, today.month, campaign.report_day):
        month = previous_month(month)
    return month, previous_month(month)


def clamp_day(year: int, month: int, day: int) -> int:
    """Return ``day``, or the month's last day when the month is shorter."""
    return min(max(1, day), calendar.monthrange(year, month)[1])


async def pauses_on(session: AsyncSession, member_ids: list[int], first: date, last: date):
    """Return the latest pause of each member overlapping the days, by member id."""
    rows = await session.exec(
        select(Pause)
        .where(
            col(Pause.member_id).in_(member_ids), Pause.starts_on <= last, Pause.ends_on >= first
        )
        .order_by(col(Pause.ends_on))
    )
    return {p.member_id: p for p in rows.all()}


def pause_context(pause: Pause | None) -> dict | None:
    """Return what the messages show of a pause: its reason and last day."""
    if pause is None:
        return None
    return {"reason": pause.reason.value, "until": pause.ends_on.isoformat()}


async def branch_people(
    session: AsyncSession, campaign: Campaign, org_id: int, month: str, today: date
) -> dict:
    """Return a branch's people this month: reported, missing, paused, without a pledge.

    Each missing member says whether they have not reported for the two latest months asked
    (``silent``), for which 限期整改 may be opened. Also this month's difficulties and notes.
    """
    pledges = (
        await session.exec(
            select(Pledge)
            .where(
                Pledge.campaign_id == campaign.id,
                Pledge.org_id == org_id,
                Pledge.status == PledgeStatus.PUBLISHED,
            )
            .order_by(col(Pledge.owner_kind).desc(), col(Pledge.id))
        )
    ).all()
    ids = [p.id for p in pledges]
    items = (
        await session.exec(
            select(PledgeItem)
            .where(col(PledgeItem.pledge_id).in_(ids))
            .order_by(col(PledgeItem.pledge_id), col(PledgeItem.seq))
        )
    ).all()
    latest, before = asked_months(campaign, today)
    reports = (
        await session.exec(
            select(ProgressReport).where(
                col(ProgressReport.pledge_id).in_(ids),
                col(ProgressReport.month).in_([month, latest, before]),
            )
        )
    ).all()
    this_month = {r.item_id: r for r in reports if r.month == month}
    months_reported = {(r.pledge_id, r.month) for r in reports}
    first, last = month_bounds(month)
    member_ids = [p.owner_member_id for p in pledges if p.owner_member_id is not None]
    pauses = await pauses_on(session, member_ids, first, last)
    start, _ = month_bounds(before)
    # Published after the earlier month's prompt: not asked twice yet, so never "silent".
    report_day = start.replace(day=clamp_day(start.year, start.month, campaign.report_day))
    out: dict = {"reported": [], "missing": [], "paused": [], "difficulties": [], "notes": []}
    for pledge in pledges:
        name = await owner_name(session, pledge)
        mine = [i for i in items if i.pledge_id == pledge.id]
        owing = [i for i in mine if i.done_on is None and i.id not in this_month]
        pause = pauses.get(pledge.owner_member_id)
        entry = {"name": name, "pledge_id": pledge.id, "owing": len(owing)}
        if not owing:
            out["reported"].append(entry)
        elif pause is not None:
            out["paused"].append({**entry, **pause_context(pause)})
        else:
            published = pledge.published_at.date() if pledge.published_at else today
            entry["silent"] = (
                pledge.owner_kind is OwnerKind.MEMBER
                and published < report_day
                and (pledge.id, latest) not in months_reported
                and (pledge.id, before) not in months_reported
            )
            out["missing"].append(entry)
        photos, notes = 0, []
        for item in mine:
            report = this_month.get(item.id)
            if report is None:
                continue
            if report.status is Progress.BLOCKED and item.done_on is None:
                out["difficulties"].append(
                    {
                        "owner": name,
                        "content": item.content,
                        "note": report.note.replace("\n", " "),
                    }
                )
            elif report.note and report.note not in notes:
                notes.append(report.note)
            photos = max(photos, len(report.photos))
        if notes or photos:
            out["notes"].append({"owner": name, "note": "\n".join(notes), "photos": photos})
    out["months"] = [before, latest]
    return out


async def without_pledge(session: AsyncSession, campaign_id: int, org_id: int) -> list[str]:
    """Return the names of a branch's members with no published pledge in the campaign."""
    published = select(Pledge.owner_member_id).where(
        Pledge.campaign_id == campaign_id,
        Pledge.owner_kind == OwnerKind.MEMBER,
        Pledge.status == PledgeStatus.PUBLISHED,
        col(Pledge.owner_member_id).is_not(None),
    )
    rows = await session.exec(
        select(Member.id, Member.name)  # in roster order
        .join(RoleGrant, col(RoleGrant.member_id) == Member.id)
        .where(
            Member.org_id == org_id,
            Member.active == True,  # noqa: E712
            RoleGrant.role == Role.MEMBER,
            col(Member.id).not_in(published),
        )
        .order_by(col(Member.id))
    )
    return list(dict(rows.all()).values())


async def branch_report(
    session: AsyncSession, campaign_id: int, org_id: int, month: str, today: date
) -> dict:
    """Return a branch's month: who reported, who not, who is paused, and the item figures."""
    org = await session.get(Org, org_id)
    campaign = await session.get(Campaign, campaign_id)
    who = await branch_people(session, campaign, org_id, month, today)
    confirmed = (
        await session.exec(
            select(OrgReport).where(OrgReport.org_id == org_id, OrgReport.month == month)
        )
    ).first()
    return {
        "org_id": org_id,
        "org": org.name if org else "",
        "month": month,
        "pledges": sum(len(who[k]) for k in ("reported", "missing", "paused")),
        "reported": [e["name"] for e in who["reported"]],
        "missing": [e["name"] for e in who["missing"]],
        "paused": [e["name"] for e in who["paused"]],
        "owing_items": sum(e["owing"] for e in who["missing"]),
        "difficulties": who["difficulties"],
        "notes": who["notes"],
        "figures": await _figures_for(session, campaign_id, month, today, org_path=org.path),
        "confirmed": confirmed is not None,
        "remarks": confirmed.remarks if confirmed else "",
    }


async def confirm_branch(
    session: AsyncSession,
    actor: Actor,
    campaign_id: int,
    org_id: int,
    month: str,
    *,
    today: date,
    remarks: str = "",
) -> OrgReport:
    """Confirm the branch's monthly report (and so submit it upward); re-confirming updates it.

    Raises:
        DomainError: ``error.forbidden`` unless the actor is the branch's secretary.
    """
    if not actor.is_secretary_of(org_id):
        raise DomainError("error.forbidden")
    remarks = remarks.strip()
    if len(remarks) > REASON_MAX:
        raise DomainError("error.too_long", limit=REASON_MAX)
    report = await branch_report(session, campaign_id, org_id, month, today)
    figures = {
        **report["figures"],
        "reported": len(report["reported"]),
        "missing": len(report["missing"]),
        "paused": len(report["paused"]),
    }
    row = (
        await session.exec(
            select(OrgReport).where(OrgReport.org_id == org_id, OrgReport.month == month)
        )
    ).first()
    if row is None:
        row = OrgReport(
            campaign_id=campaign_id, org_id=org_id, month=month, confirmed_by=actor.member_id
        )
    row.figures = figures
    row.remarks = remarks or row.remarks
    row.confirmed_by = actor.member_id
    row.confirmed_at = utcnow()
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        "report.confirmed",
        actor=actor.member_id,
        subject=f"org:{org_id}",
        payload={"month": month, "figures": figures, "remarks": row.remarks},
    )
    return row


async def reporting_branches(session: AsyncSession, campaign_id: int, org_path: str) -> list:
    """Return (id, name, path) of every organization in a subtree with a published pledge."""
    rows = await session.exec(
        select(Org.id, Org.name, Org.path)
        .join(Pledge, col(Pledge.org_id) == Org.id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status == PledgeStatus.PUBLISHED,
            col(Org.path).startswith(org_path),
        )
        .distinct()
        .order_by(col(Org.id))
    )
    return list(rows.all())


async def open_rectification(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    *,
    reason: str,
    deadline: date,
    today: date,
    codec: CallbackCodec,
    item_id: int | None = None,
) -> Rectification:
    """Open 限期整改 on a pledge or one item and tell its owner.

    Raises:
        DomainError: ``error.forbidden``, ``rect.bad_deadline``, ``rect.reason_required``.
    """
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None or pledge.status is not PledgeStatus.PUBLISHED:
        raise DomainError("error.forbidden")
    if not await access.may_supervise(session, actor, pledge):
        raise DomainError("error.forbidden")
    if item_id is not None:
        item = await session.get(PledgeItem, item_id)
        if item is None or item.pledge_id != pledge_id:
            raise DomainError("error.forbidden")
    reason = reason.strip()
    if not reason:
        raise DomainError("rect.reason_required")
    if len(reason) > REASON_MAX:
        raise DomainError("error.too_long", limit=REASON_MAX)
    if deadline <= today:
        raise DomainError("rect.bad_deadline")
    campaign = await session.get(Campaign, pledge.campaign_id)
    within_campaign(deadline, campaign, earliest=today + timedelta(days=1))
    rect = Rectification(
        pledge_id=pledge_id,
        item_id=item_id,
        opened_by=actor.member_id,
        reason=reason,
        deadline=deadline,
    )
    session.add(rect)
    await session.flush()
    await audit.record(
        session,
        "rectification.opened",
        actor=actor.member_id,
        subject=f"pledge:{pledge_id}",
        payload={"id": rect.id, "item_id": item_id, "reason": reason, "deadline": str(deadline)},
    )
    ctx = await rect_context(session, rect)
    button = Button("rect.claim_button", codec.encode(RectCb(rect.id, "claim")))
    for owner in await people.owners(session, pledge):
        await outbox.notify_member(
            session,
            owner,
            Reply("rect.opened_notice", ctx, buttons=((button,),)),
            key=f"rect:{rect.id}:open:{owner}",
        )
    return rect


async def rect_context(session: AsyncSession, rect: Rectification) -> dict:
    """Return what the rectification messages show."""
    pledge = await session.get(Pledge, rect.pledge_id)
    item = await session.get(PledgeItem, rect.item_id) if rect.item_id else None
    opener = await session.get(Member, rect.opened_by)
    org = await session.get(Org, pledge.org_id)
    return {
        "id": rect.id,
        "owner": await owner_name(session, pledge),
        "org": org.name if org else "",
        "item": item.content if item else None,
        "reason": rect.reason,
        "deadline": rect.deadline.isoformat(),
        "opener": opener.name if opener else "",
        "status": rect.status.value,
        "claim_note": rect.claim_note,
    }


async def claimable(session: AsyncSession, actor: Actor, rect_id: int) -> Rectification:
    """Return a rectification the actor may now claim done (its owner, while it is open).

    Raises:
        DomainError: ``error.forbidden`` for someone else's, ``error.stale_card`` unless open.
    """
    rect = await session.get(Rectification, rect_id)
    if rect is None:
        raise DomainError("error.forbidden")
    pledge = await session.get(Pledge, rect.pledge_id)
    if actor.member_id not in await people.owners(session, pledge):
        raise DomainError("error.forbidden")
    if rect.status is not RectificationStatus.OPEN:
        raise DomainError("error.stale_card")
    return rect


async def claim_rectified(
    session: AsyncSession,
    actor: Actor,
    rect_id: int,
    *,
    codec: CallbackCodec,
    note: str = "",
) -> Rectification:
    """The owner says the rectification is done; the opener is asked to confirm."""
    rect = await claimable(session, actor, rect_id)
    rect.status = RectificationStatus.CLAIMED
    rect.claimed_at = utcnow()
    rect.claim_note = note.strip()[:REASON_MAX]
    session.add(rect)
    await audit.record(
        session,
        "rectification.claimed",
        actor=actor.member_id,
        subject=f"pledge:{rect.pledge_id}",
        payload={"id": rect.id, "note": rect.claim_note},
    )
    ctx = await rect_context(session, rect)
    buttons = (
        (
            Button("rect.close_button", codec.encode(RectCb(rect.id, "close"))),
            Button("rect.reopen_button", codec.encode(RectCb(rect.id, "reopen"))),
        ),
    )
    stamp = rect.claimed_at.strftime("%Y%m%d%H%M%S")
    await outbox.notify_member(
        session,
        rect.opened_by,
        Reply("rect.claimed_notice", ctx, buttons=buttons),
        key=f"rect:{rect.id}:claim:{stamp}",
    )
    return rect


async def close_rectification(
    session: AsyncSession,
    actor: Actor,
    rect_id: int,
    *,
    accept: bool,
    codec: CallbackCodec | None = None,
) -> Rectification:
    """The opener confirms the rectification (closed) or sends it back (open again).

    With ``codec``, a rectification sent back reaches its owner with the claim button again.
    """
    rect = await session.get(Rectification, rect_id)
    if rect is None or rect.opened_by != actor.member_id:
        raise DomainError("error.forbidden")
    if rect.status is not RectificationStatus.CLAIMED:
        raise DomainError("error.stale_card")
    now = utcnow()
    rect.status = RectificationStatus.CLOSED if accept else RectificationStatus.OPEN
    rect.closed_at = now if accept else None
    session.add(rect)
    await audit.record(
        session,
        "rectification.closed" if accept else "rectification.reopened",
        actor=actor.member_id,
        subject=f"pledge:{rect.pledge_id}",
        payload={"id": rect.id},
    )
    pledge = await session.get(Pledge, rect.pledge_id)
    ctx = await rect_context(session, rect)
    key = "rect.closed_notice" if accept else "rect.reopened_notice"
    buttons: tuple = ()
    if not accept and codec is not None:
        buttons = ((Button("rect.claim_button", codec.encode(RectCb(rect.id, "claim"))),),)
    stamp = now.strftime("%Y%m%d%H%M%S")
    for owner in await people.owners(session, pledge):
        await outbox.notify_member(
            session,
            owner,
            Reply(key, ctx, buttons=buttons),
            key=f"rect:{rect.id}:{key}:{stamp}:{owner}",
        )
    return rect


@dataclass(slots=True)
class LedgerRow:
    """One item of a ledger (台账): registered, month by month, crossed off, looked back on.

    Attributes:
        months: month key → the state reported that month (``Progress`` values).
        note: the newest note reported on the item (a blocked reason, what was done).
        photos: the photos reported on the item this month (read only when asked for).
        rect_deadline: the deadline of a rectification still open on the item or its pledge.
        lookback: the item's look-back (``LOOKBACK_STATES``), or "" while it is not due.
    """

    owner: str
    kind: str
    content: str
    registered: date | None
    deadline: date | None
    months: dict[str, str]
    done_on: date | None
    state: str
    item_id: int | None = None
    pledge_id: int | None = None
    member_id: int | None = None
    note: str = ""
    photos: int = 0
    org_id: int | None = None
    org: str = ""
    org_full: str = ""
    org_path: str = ""
    post: str = ""
    rect_deadline: date | None = None
    lookback: str = ""


#: the states an item can have in the ledger
LEDGER_STATES = ("done", "overdue", "blocked", "on_track", "unreported")
#: an item's look-back as the ledger shows it: decided (consolidated, sent to rectification),
#: under way, due but not started, or still undecided LOOKBACK_DAYS after the item fell due
LOOKBACK_STATES = ("consolidated", "rectify", "open", "awaiting", "lapsed")
#: days after an item fell due (crossed off, or its deadline came) to decide its look-back
LOOKBACK_DAYS = 30
#: pledges whose items are read at once (bounds memory on a city-wide ledger)
LEDGER_CHUNK = 1000


def ledger_state(done_on: date | None, deadline: date | None, months: dict, today: date) -> str:
    """Return an item's state in the ledger: done, overdue, blocked, on track or unreported."""
    return _state(done_on, deadline, months, today, month_of(today))


def _state(done_on, deadline, months: dict, today: date, this_month: str) -> str:
    if done_on is not None:
        return "done"
    if deadline and deadline < today:
        return "overdue"
    if months.get(this_month) == Progress.BLOCKED.value:
        return "blocked"
    if this_month in months:
        return "on_track"
    return "unreported"


def lookback_state(
    done_on: date | None, deadline: date | None, started: str | None, today: date
) -> str:
    """Return an item's look-back in the ledger ("" while it is not due).

    ``started`` is the state of the item's ``LookBack`` row, None before it starts. An item
    falls due when it is crossed off or its deadline comes (as ``look_back.start_due``).
    """
    if started in ("consolidated", "rectify"):
        return started
    due = (
        done_on if done_on is not None else (deadline if deadline and deadline <= today else None)
    )
    if due is not None and (today - due).days > LOOKBACK_DAYS:
        return "lapsed"
    if started is not None:
        return "open"
    return "awaiting" if due is not None else ""


#: the look-back figures of attachment 5: decided either way, and still to decide
LOOKBACK_FIGURES = ("lb_consolidated", "lb_rectify", "lb_pending")


async def lookback_figures(
    session: AsyncSession, campaign_id: int, org_path: str, today: date
) -> dict[str, dict[str, int]]:
    """Return the look-back figures of a subtree's published items, by organization's path.

    The counts of the ledger's ``lookback_state`` in one grouped query (the tests hold the two
    equal): consolidated, rectify, pending (open, awaiting or lapsed) and, of those pending,
    ``lb_lapsed`` (the spot check's gap).
    """
    lb = LookBack.__table__.c
    item = PledgeItem.__table__.c
    due = or_(item.done_on.is_not(None), item.deadline <= today)
    undecided = or_(lb.state == "open", lb.state.is_(None))
    pending = or_(lb.state == "open", and_(lb.state.is_(None), due))
    cutoff = today - timedelta(days=LOOKBACK_DAYS)  # fell due before it: lapsed
    late = or_(
        and_(item.done_on.is_not(None), item.done_on < cutoff),
        and_(item.done_on.is_(None), item.deadline < cutoff),
    )
    rows = await session.exec(
        select(
            Org.path,
            func.sum(case((lb.state == "consolidated", 1), else_=0)),
            func.sum(case((lb.state == "rectify", 1), else_=0)),
            func.sum(case((pending, 1), else_=0)),
            func.sum(case((and_(undecided, late), 1), else_=0)),
        )
        .select_from(PledgeItem)
        .join(Pledge, col(Pledge.id) == PledgeItem.pledge_id)
        .join(Org, col(Org.id) == Pledge.org_id)
        .outerjoin(LookBack.__table__, lb.item_id == PledgeItem.id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status == PledgeStatus.PUBLISHED,
            col(Org.path).startswith(org_path),
        )
        .group_by(Org.path)
    )
    keys = (*LOOKBACK_FIGURES, "lb_lapsed")
    return {
        path: dict(zip(keys, (int(v or 0) for v in counts), strict=True))
        for path, *counts in rows.all()
    }


def _tree_key(path: str) -> list[int]:
    return [int(x) for x in path.strip("/").split("/") if x]


async def ledger_orgs(
    session: AsyncSession, campaign_id: int, org_path: str, kind: OwnerKind | None = None
) -> list[Org]:
    """Return the organizations of a subtree with published pledges, in tree order."""
    query = (
        select(Org)
        .join(Pledge, col(Pledge.org_id) == Org.id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status == PledgeStatus.PUBLISHED,
            col(Org.path).startswith(org_path),
        )
        .distinct()
    )
    if kind is not None:
        query = query.where(Pledge.owner_kind == kind)
    rows = list((await session.exec(query)).all())
    return sorted(rows, key=lambda o: _tree_key(o.path))


def _month_states(packed: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if packed:
        for part in packed.split(","):
            month, _, state = part.partition(":")
            out[month] = state
    return out


async def ledger_rows(
    session: AsyncSession,
    campaign_id: int,
    org_path: str,
    today: date,
    *,
    kind: OwnerKind | None = None,
    orgs: list[Org] | None = None,
    photos: bool = False,
) -> AsyncIterator[LedgerRow]:
    """Yield the ledger of organizations (attachments 3–4, /ledger): the one ledger reader.

    ``orgs`` are the organizations to read, in the order wanted (default: every one of the
    subtree at ``org_path`` with published pledges, in tree order). Items come organization
    by organization, each one's own pledge first, then its members' by pledge, then by item.
    The pledges are listed once (ids only) and read a thousand at a time by primary key, so a
    city-wide ledger streams in bounded memory with a handful of indexed queries per chunk.
    ``photos`` also counts this month's photos of each item (the chat view's button).
    """
    camp = await session.get(Campaign, campaign_id)
    zone = ZoneInfo(camp.timezone) if camp else UTC
    if orgs is None:
        orgs = await ledger_orgs(session, campaign_id, org_path, kind)
    if not orgs:
        return
    order = {o.id: n for n, o in enumerate(orgs)}
    facts = {o.id: (o.name, o.full_name, o.path) for o in orgs}
    where = [Pledge.campaign_id == campaign_id, Pledge.status == PledgeStatus.PUBLISHED]
    if kind is not None:
        where.append(Pledge.owner_kind == kind)
    if len(orgs) == 1:
        where.append(Pledge.org_id == orgs[0].id)
    else:
        where.append(
            col(Pledge.org_id).in_(select(Org.id).where(col(Org.path).startswith(org_path)))
        )
    org_kind = OwnerKind.ORG
    listed = [
        (order[org_id], okind is not org_kind, pid)
        for pid, org_id, okind in (
            await session.exec(select(Pledge.id, Pledge.org_id, Pledge.owner_kind).where(*where))
        ).all()
        if org_id in order
    ]
    listed.sort()
    dialect = session.bind.dialect.name
    rep = ProgressReport.__table__.c
    packed = rep.month + ":" + rep.status
    noted = case((rep.note != "", rep.month + ":" + rep.note), else_=None)
    if dialect == "postgresql":
        agg = func.string_agg(packed, ",")
    else:
        agg = func.group_concat(packed, ",")
    this_month = month_of(today)
    lb = LookBack.__table__.c
    for start in range(0, len(listed), LEDGER_CHUNK):
        ids = [pid for _, _, pid in listed[start : start + LEDGER_CHUNK]]
        pledges = {
            pid: (org_id, okind, at, post or "", member, name or "")
            for pid, org_id, okind, at, post, member, name in (
                await session.exec(
                    select(
                        Pledge.id,
                        Pledge.org_id,
                        Pledge.owner_kind,
                        Pledge.published_at,
                        Pledge.post,
                        Pledge.owner_member_id,
                        Member.name,
                    )
                    .outerjoin(Member, col(Member.id) == Pledge.owner_member_id)
                    .where(col(Pledge.id).in_(ids))
                )
            ).all()
        }
        items: dict[int, list] = {}
        for row in (
            await session.exec(
                select(
                    PledgeItem.pledge_id,
                    PledgeItem.seq,
                    PledgeItem.id,
                    PledgeItem.content,
                    PledgeItem.deadline,
                    PledgeItem.done_on,
                ).where(col(PledgeItem.pledge_id).in_(ids))
            )
        ).all():
            items.setdefault(row[0], []).append(row)
        reports = {
            item_id: (months, note)
            for item_id, months, note in (
                await session.exec(
                    select(rep.item_id, agg, func.max(noted))
                    .where(rep.pledge_id.in_(ids))
                    .group_by(rep.item_id)
                )
            ).all()
        }
        shots: dict[int, int] = {}
        if photos:
            for item_id, shown in (
                await session.exec(
                    select(rep.item_id, rep.photos).where(
                        rep.pledge_id.in_(ids), rep.month == this_month
                    )
                )
            ).all():
                shots[item_id] = len(shown or [])
        rects: dict[tuple[int, int | None], date] = {}
        for pledge_id, item_id, deadline in (
            await session.exec(
                select(
                    Rectification.pledge_id, Rectification.item_id, Rectification.deadline
                ).where(
                    col(Rectification.pledge_id).in_(ids),
                    Rectification.status != RectificationStatus.CLOSED,
                )
            )
        ).all():
            rects[(pledge_id, item_id)] = deadline
        looked = dict(
            (await session.exec(select(lb.item_id, lb.state).where(lb.pledge_id.in_(ids)))).all()
        )
        for pledge_id in ids:
            org_id, okind, at, post, member_id, name = pledges[pledge_id]
            oname, ofull, opath = facts[org_id]
            registered = at.astimezone(zone).date() if at is not None else None
            owner = oname if okind is org_kind else name
            pledge_rect = rects.get((pledge_id, None)) if rects else None
            for _, _, item_id, content, deadline, done_on in sorted(items.get(pledge_id, ())):
                months, note = reports.get(item_id) or (None, None)
                states = _month_states(months)
                started = looked.get(item_id)
                started = str(started) if started is not None else None
                yield LedgerRow(
                    owner,
                    okind.value,
                    content,
                    registered,
                    deadline,
                    states,
                    done_on,
                    _state(done_on, deadline, states, today, this_month),
                    item_id,
                    pledge_id,
                    member_id,
                    note.partition(":")[2] if note else "",
                    shots.get(item_id, 0),
                    org_id,
                    oname,
                    ofull,
                    opath,
                    post,
                    (rects.get((pledge_id, item_id)) or pledge_rect) if rects else None,
                    lookback_state(done_on, deadline, started, today),
                )


async def ledger(
    session: AsyncSession,
    campaign_id: int,
    org_id: int,
    today: date,
    *,
    limit: int | None = None,
) -> list[LedgerRow]:
    """Return a branch's own ledger (its items and its members'), the rows /ledger shows.

    The same reader as the attachments (``ledger_rows``) on one organization, so the chat and
    the file never disagree; ``limit`` takes only the first rows.
    """
    org = await session.get(Org, org_id)
    if org is None:
        return []
    out = []
    async for row in ledger_rows(session, campaign_id, org.path, today, orgs=[org], photos=True):
        out.append(row)
        if limit is not None and len(out) >= limit:
            break
    return out
