"""T1 自查 and 抽查: which procedure records each grassroots organization is missing.

"Everything the steps produce is a record that the spot check can read" (T2): the check reads
those records and names what is not there, organization by organization — the pledge not
drafted, not reviewed by peers, not decided, not published, no ledger entries, monthly reports
missing, rectifications past their deadline, look-backs (回头看) left undecided a month after the
item fell due (the ledger's look-back column, counted in one grouped query). Figures only: no
one is scored or ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import supervise
from campaign.fulfil import month_of
from models.campaign import Campaign
from models.org import Member, Org, OrgType, Role, RoleGrant
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus, Review
from models.progress import OrgReport, Rectification, RectificationStatus

#: the gaps, in the order of the steps
GAPS = (
    "not_drafted",
    "no_peer_review",
    "not_decided",
    "not_published",
    "no_ledger",
    "reports_missing",
    "rect_lapsed",
    "lookback_lapsed",
)


@dataclass
class OrgGaps:
    """One grassroots organization's missing records; ``counts`` holds how many of each."""

    org_id: int
    name: str
    full_name: str
    path: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def gaps(self) -> list[str]:
        """Return the kinds of record missing, in the order of the steps."""
        return [g for g in GAPS if self.counts.get(g)]


def _months_between(first: str, last: str) -> list[str]:
    out = []
    y, m = int(first[:4]), int(first[5:7])
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _previous_month(day: date) -> str:
    y, m = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
    return f"{y:04d}-{m:02d}"


async def check(
    session: AsyncSession, campaign: Campaign, level: Org, today: date
) -> list[OrgGaps]:
    """Return every grassroots organization of a subtree with its missing records, tree order.

    Monthly reports are due for each month after the organization first published a pledge,
    up to the month before this one (this month's report is not due yet).
    """
    tree = (await session.exec(select(Org).where(col(Org.path).startswith(level.path)))).all()
    parents = {o.parent_id for o in tree}
    # grassroots organizations: the branches at the leaves of the tree
    orgs = [o for o in tree if o.id not in parents and o.type is not OrgType.LEVEL]
    out = {o.id: OrgGaps(o.id, o.name, o.full_name, o.path) for o in orgs}
    if not out:
        return []
    in_tree = col(Org.path).startswith(level.path)
    pledges = (
        await session.exec(
            select(Pledge.id, Pledge.org_id, Pledge.owner_kind, Pledge.status, Pledge.published_at)
            .join(Org, col(Org.id) == Pledge.org_id)
            .where(Pledge.campaign_id == campaign.id, in_tree)
        )
    ).all()
    peered = set(
        (
            await session.exec(
                select(Review.pledge_id)
                .join(Pledge, col(Pledge.id) == Review.pledge_id)
                .join(Org, col(Org.id) == Pledge.org_id)
                .where(Pledge.campaign_id == campaign.id, in_tree, Review.kind == "peer")
                .distinct()
            )
        ).all()
    )
    with_items = dict(
        (
            await session.exec(
                select(Pledge.org_id, func.count(PledgeItem.id))
                .join(Pledge, col(Pledge.id) == PledgeItem.pledge_id)
                .join(Org, col(Org.id) == Pledge.org_id)
                .where(
                    Pledge.campaign_id == campaign.id,
                    in_tree,
                    Pledge.status == PledgeStatus.PUBLISHED,
                )
                .group_by(Pledge.org_id)
            )
        ).all()
    )
    reported: dict[int, set[str]] = {}
    for org_id, month in (
        await session.exec(
            select(OrgReport.org_id, OrgReport.month)
            .join(Org, col(Org.id) == OrgReport.org_id)
            .where(OrgReport.campaign_id == campaign.id, in_tree)
        )
    ).all():
        reported.setdefault(org_id, set()).add(month)
    lapsed = dict(
        (
            await session.exec(
                select(Pledge.org_id, func.count(Rectification.id))
                .join(Pledge, col(Pledge.id) == Rectification.pledge_id)
                .join(Org, col(Org.id) == Pledge.org_id)
                .where(
                    Pledge.campaign_id == campaign.id,
                    in_tree,
                    Rectification.status != RectificationStatus.CLOSED,
                    Rectification.deadline < today,
                )
                .group_by(Pledge.org_id)
            )
        ).all()
    )
    own: dict[int, PledgeStatus] = {}
    first_published: dict[int, str] = {}
    for pledge_id, org_id, kind, status, published_at in pledges:
        gaps = out.get(org_id)
        if gaps is None:
            continue
        c = gaps.counts
        if kind == OwnerKind.ORG:
            own[org_id] = status
        elif status is not PledgeStatus.DRAFT and pledge_id not in peered:
            c["no_peer_review"] = c.get("no_peer_review", 0) + 1
        if status in (PledgeStatus.SUBMITTED, PledgeStatus.RETURNED):
            c["not_decided"] = c.get("not_decided", 0) + 1
        if status is PledgeStatus.APPROVED:
            c["not_published"] = c.get("not_published", 0) + 1
        if published_at is not None:
            month = month_of(published_at.date())
            first_published[org_id] = min(first_published.get(org_id, month), month)
    # the counts of the ledger's look-back column (``supervise.lookback_figures``)
    looks = await supervise.lookback_figures(session, campaign.id, level.path, today)
    lapsed_looks = {o.id: looks[o.path]["lb_lapsed"] for o in orgs if o.path in looks}
    last_due = _previous_month(today)
    for org_id, gaps in out.items():
        c = gaps.counts
        status = own.get(org_id)
        if status is None or status is PledgeStatus.DRAFT:
            c["not_drafted"] = 1
        if not with_items.get(org_id):
            c["no_ledger"] = 1
        first = first_published.get(org_id)
        if first is not None and first <= last_due:
            due = _months_between(first, last_due)
            c["reports_missing"] = len([m for m in due if m not in reported.get(org_id, set())])
        c["rect_lapsed"] = lapsed.get(org_id, 0)
        c["lookback_lapsed"] = lapsed_looks.get(org_id, 0)
    return sorted(out.values(), key=lambda g: [int(x) for x in g.path.strip("/").split("/")])


def worst(rows: list[OrgGaps], n: int = 5) -> list[OrgGaps]:
    """Return the organizations missing the most kinds of record (tree order among equals)."""
    with_gaps = [r for r in rows if r.gaps]
    return sorted(with_gaps, key=lambda r: -len(r.gaps))[:n]


@dataclass(frozen=True)
class UnitPledging:
    """How far the members of one unit are with their pledges."""

    org: str
    members: int
    published: int = 0
    approved: int = 0
    in_review: int = 0
    returned: int = 0
    drafting: int = 0
    not_drafted: int = 0


_PHASE = {
    PledgeStatus.PUBLISHED: "published",
    PledgeStatus.APPROVED: "approved",
    PledgeStatus.SUBMITTED: "in_review",
    PledgeStatus.RETURNED: "returned",
    PledgeStatus.DRAFT: "drafting",
}


async def pledging_by_unit(
    session: AsyncSession, campaign_id: int, level: Org
) -> list[UnitPledging]:
    """Return, per unit directly below a level (or the level itself), its members' pledging."""
    children = (
        await session.exec(select(Org).where(Org.parent_id == level.id).order_by(col(Org.id)))
    ).all()
    units = list(children) or [level]
    members = (
        await session.exec(
            select(Org.path, func.count(func.distinct(RoleGrant.member_id)))
            .join(RoleGrant, col(RoleGrant.org_id) == Org.id)
            .join(Member, col(Member.id) == RoleGrant.member_id)
            .where(
                col(Org.path).startswith(level.path),
                RoleGrant.role == Role.MEMBER,
                Member.active == True,  # noqa: E712
            )
            .group_by(Org.path)
        )
    ).all()
    phases = (
        await session.exec(
            select(Org.path, Pledge.status, func.count(Pledge.id))
            .join(Pledge, col(Pledge.org_id) == Org.id)
            .where(
                col(Org.path).startswith(level.path),
                Pledge.campaign_id == campaign_id,
                Pledge.owner_kind == OwnerKind.MEMBER,
            )
            .group_by(Org.path, Pledge.status)
        )
    ).all()
    counts = {u.id: {"members": 0} for u in units}

    def unit_of(path: str) -> int | None:
        return next((u.id for u in units if path.startswith(u.path)), None)

    for path, n in members:
        unit = unit_of(path)
        if unit is not None:
            counts[unit]["members"] += n
    for path, status, n in phases:
        unit = unit_of(path)
        if unit is not None:
            key = _PHASE[PledgeStatus(status)]
            counts[unit][key] = counts[unit].get(key, 0) + n
    out = []
    for u in units:
        c = counts[u.id]
        pledged = sum(v for k, v in c.items() if k != "members")
        if not c["members"] and not pledged:
            continue
        out.append(
            UnitPledging(
                org=u.name,
                members=c["members"],
                not_drafted=max(c["members"] - pledged, 0),
                **{k: v for k, v in c.items() if k != "members"},
            )
        )
    return out
