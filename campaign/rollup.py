"""S6 全程督承诺: the roll-up of a level over its whole subtree, level by level.

"分级管理，逐级上报" only works when each level sees everyone below it: every organization that
has members or a secretary is a unit, every active member counts, and a unit that has not
started is named, never left out. Before the pledging deadline (T1) the roll-up shows where
each child stands in pledging; after it, the month's reports.

The counts come from a handful of grouped queries over the subtree (by path prefix), never one
query per unit; the tree then adds each unit's counts to the direct child it lies under. Units
are named in tree order, never ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy import and_, case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign.supervise import FIGURES, figures_select, month_bounds, row_figures
from models.campaign import Campaign
from models.org import Member, Org, Role, RoleGrant
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.progress import OrgReport, Pause, ProgressReport

#: how many units a roll-up names before saying "and N more"
NAMED = 20
#: the pledging phases, in order
PHASES = ("not_started", "drafting", "submitted", "returned", "published")
#: the monthly counts of members
MEMBER_MONTH = ("total", "published", "reported", "missing", "paused", "without")

_PHASE_OF = {
    PledgeStatus.DRAFT: "drafting",
    PledgeStatus.SUBMITTED: "submitted",
    PledgeStatus.RETURNED: "returned",
    PledgeStatus.APPROVED: "published",  # decided; published in the same step
    PledgeStatus.PUBLISHED: "published",
}


def phase_of(status: PledgeStatus | str | None) -> str:
    """Return the pledging phase of a pledge's status (no pledge: not started)."""
    return "not_started" if status is None else _PHASE_OF[PledgeStatus(status)]


@dataclass
class _Unit:
    id: int
    child: int
    org_phase: str = "not_started"
    members: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    month: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEMBER_MONTH, 0))
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    submitted: bool = False
    has_published: bool = False


@dataclass
class _Tree:
    org: Org
    names: dict[int, str]
    paths: dict[int, str]
    children: list[tuple[int, str]]
    units: dict[int, _Unit] = field(default_factory=dict)

    def child_of(self, path: str) -> int:
        """Return the direct child an organization lies under (the level itself: its id)."""
        below = path[len(self.org.path) :]
        return int(below.split("/", 1)[0]) if below else self.org.id

    def label(self, unit: _Unit) -> str:
        """Return a unit's name relative to the level (``城关镇/东江村党支部``)."""
        below = self.paths[unit.id][len(self.org.path) :].strip("/")
        if not below:
            return self.org.name
        return "/".join(self.names.get(int(i), "") for i in below.split("/"))

    def named(self, units: list[_Unit]) -> dict:
        """Return the first units by name, and how many there are."""
        names = [self.label(u) for u in units[:NAMED]]
        return {"names": names, "more": max(0, len(units) - NAMED), "count": len(units)}

    def unit(self, org_id: int) -> _Unit | None:
        """Return the unit of an organization of the subtree, counting it from now on."""
        unit = self.units.get(org_id)
        if unit is None and org_id in self.paths:
            unit = self.units[org_id] = _Unit(org_id, self.child_of(self.paths[org_id]))
        return unit

    def in_order(self) -> list[_Unit]:
        """Return the units in the tree's order."""
        return sorted(self.units.values(), key=lambda u: _path_key(self.paths[u.id]))


def _path_key(path: str) -> list[int]:
    """Return a sort key that keeps the tree's order (``/1/10/`` after ``/1/9/``)."""
    return [int(x) for x in path.strip("/").split("/") if x]


def _path_in(org: Org):
    return col(Org.path).startswith(org.path)


async def _tree(session: AsyncSession, org: Org) -> _Tree:
    """Load the subtree's organizations and its units with a secretary.

    Units with members or a pledge are added as their counts come in.
    """
    orgs = (
        await session.exec(select(Org.id, Org.name, Org.path, Org.parent_id).where(_path_in(org)))
    ).all()
    names = {i: name for i, name, _, _ in orgs}
    paths = {i: path for i, _, path, _ in orgs}
    children = [(i, name) for i, name, _, parent in orgs if parent == org.id]
    children.sort(key=lambda c: _path_key(paths[c[0]]))
    tree = _Tree(org, names, paths, children)
    secretaries = await session.exec(
        select(RoleGrant.org_id)
        .join(Member, col(Member.id) == RoleGrant.member_id)
        .join(Org, col(Org.id) == RoleGrant.org_id)
        .where(RoleGrant.role == Role.SECRETARY, Member.active == True, _path_in(org))  # noqa: E712
        .distinct()
    )
    for org_id in secretaries.all():
        tree.unit(org_id)
    return tree


async def _member_phases(session: AsyncSession, campaign_id: int, tree: _Tree) -> None:
    """Count each unit's members by where their own pledge stands (one grouped query)."""
    rows = await session.exec(
        select(Member.org_id, Pledge.status, func.count(col(Member.id)))
        .select_from(RoleGrant)
        # A member counts once, by the member role held in their own organization.
        .join(
            Member,
            and_(col(Member.id) == RoleGrant.member_id, col(Member.org_id) == RoleGrant.org_id),
        )
        .join(Org, col(Org.id) == Member.org_id)
        .outerjoin(
            Pledge,
            and_(
                col(Pledge.owner_member_id) == Member.id,
                Pledge.campaign_id == campaign_id,
                Pledge.owner_kind == OwnerKind.MEMBER,
            ),
        )
        .where(RoleGrant.role == Role.MEMBER, Member.active == True, _path_in(tree.org))  # noqa: E712
        .group_by(col(Member.org_id), col(Pledge.status))
    )
    for org_id, status, n in rows.all():
        unit = tree.unit(org_id)
        if unit is not None:
            unit.members[phase_of(status)] += n
            unit.month["total"] += n


async def _org_phases(session: AsyncSession, campaign_id: int, tree: _Tree) -> None:
    rows = await session.exec(
        select(Pledge.org_id, Pledge.status)
        .join(Org, col(Org.id) == Pledge.org_id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.owner_kind == OwnerKind.ORG,
            _path_in(tree.org),
        )
    )
    for org_id, status in rows.all():
        unit = tree.unit(org_id)
        if unit is not None:
            unit.org_phase = phase_of(status)


async def _published(
    session: AsyncSession, campaign_id: int, tree: _Tree, month: str, today: date
) -> None:
    """Add up the month of the subtree's published pledges, and the units confirmed.

    Per unit: the item figures (one flat grouped query), and the member pledges reported,
    owing and paused (one query grouped by pledge, then by unit). Two light queries beat
    one that carries every figure through the per-pledge grouping.
    """
    figures = await session.exec(
        figures_select(campaign_id, month, today, tree.org.path, Org.id).group_by(col(Org.id))
    )
    for row in figures.all():
        unit = tree.unit(row[0])
        if unit is not None:
            unit.figures = row_figures(row)
            unit.has_published = True
    first, last = month_bounds(month)
    rep = ProgressReport.__table__.c
    # Computed once for the query (not per pledge): the few members paused this month.
    paused = col(Pledge.owner_member_id).in_(
        select(Pause.member_id).where(Pause.starts_on <= last, Pause.ends_on >= first)
    )
    per_pledge = (
        select(
            Pledge.org_id.label("org_id"),
            func.sum(
                case((and_(col(PledgeItem.done_on).is_(None), rep.id.is_(None)), 1), else_=0)
            ).label("owing"),
            case((paused, 1), else_=0).label("paused"),
        )
        .select_from(Pledge)
        .join(Org, col(Org.id) == Pledge.org_id)
        .join(PledgeItem, col(PledgeItem.pledge_id) == Pledge.id)
        .outerjoin(
            ProgressReport.__table__, and_(rep.item_id == PledgeItem.id, rep.month == month)
        )
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status == PledgeStatus.PUBLISHED,
            Pledge.owner_kind == OwnerKind.MEMBER,
            _path_in(tree.org),
        )
        .group_by(col(Pledge.id), col(Pledge.org_id), col(Pledge.owner_member_id))
        .subquery()
    )
    c = per_pledge.c
    rows = await session.exec(
        select(
            c.org_id,
            func.count(),
            func.sum(case((c.owing == 0, 1), else_=0)),
            func.sum(case((and_(c.owing > 0, c.paused == 1), 1), else_=0)),
        ).group_by(c.org_id)
    )
    for org_id, published, reported, resting in rows.all():
        unit = tree.unit(org_id)
        if unit is None:
            continue
        reported, resting = int(reported or 0), int(resting or 0)
        unit.month["published"] += published
        unit.month["reported"] += reported
        unit.month["paused"] += resting
        unit.month["missing"] += published - reported - resting
    submitted = await session.exec(
        select(OrgReport.org_id)
        .join(Org, col(Org.id) == OrgReport.org_id)
        .where(OrgReport.campaign_id == campaign_id, OrgReport.month == month, _path_in(tree.org))
    )
    for org_id in submitted.all():
        unit = tree.unit(org_id)
        if unit is not None:
            unit.submitted = True


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


def _parts(tree: _Tree) -> dict[int, dict]:
    """Return an empty part per direct child, and one for the level itself when it is a unit."""
    parts = {}
    if tree.org.id in tree.units:
        parts[tree.org.id] = {"org": tree.org.name, "own": True}
    for child_id, name in tree.children:
        parts[child_id] = {"org": name, "own": False}
    for part in parts.values():
        part.update(units=0, orgs=dict.fromkeys(PHASES, 0), members=dict.fromkeys(PHASES, 0))
        part.update(month=dict.fromkeys(MEMBER_MONTH, 0), figures=dict.fromkeys(FIGURES, 0))
        part.update(expected=0, submitted=0)
    return parts


async def _monthly_tree(
    session: AsyncSession, campaign_id: int, org: Org, month: str, today: date
) -> _Tree:
    tree = await _tree(session, org)
    await _member_phases(session, campaign_id, tree)
    await _published(session, campaign_id, tree, month, today)
    return tree


def _subtree(tree: _Tree, org: Org) -> _Tree:
    """Return the part of a loaded tree below ``org`` (one of its organizations), as a tree."""
    paths = {i: p for i, p in tree.paths.items() if p.startswith(org.path)}
    names = {i: tree.names[i] for i in paths}
    children = [(i, names[i]) for i, p in paths.items() if p == f"{org.path}{i}/"]
    children.sort(key=lambda c: _path_key(paths[c[0]]))
    sub = _Tree(org, names, paths, children)
    for unit_id, unit in tree.units.items():
        if unit_id in paths:
            sub.units[unit_id] = replace(unit, child=sub.child_of(paths[unit_id]))
    return sub


def _monthly_summary(tree: _Tree, month: str) -> dict:
    org = tree.org
    parts = _parts(tree)
    figures = dict.fromkeys(FIGURES, 0)
    members = dict.fromkeys(MEMBER_MONTH, 0)
    missing, idle = [], []
    for unit in tree.in_order():
        unit.month["without"] = unit.month["total"] - unit.month["published"]
        _add(figures, unit.figures)
        _add(members, unit.month)
        if not unit.has_published:
            idle.append(unit)
        elif not unit.submitted:
            missing.append(unit)
        part = parts.get(unit.child)
        if part is not None:
            part["units"] += 1
            part["expected"] += 1
            part["submitted"] += unit.submitted
            _add(part["figures"], unit.figures)
            _add(part["month"], unit.month)
    submitted = sum(u.submitted for u in tree.units.values())
    return {
        "phase": "monthly",
        "org": org.name,
        "month": month,
        "figures": figures,
        "members": members,
        "expected": len(tree.units),
        "submitted": submitted,
        "missing": tree.named(missing)["names"],
        "missing_more": max(0, len(missing) - NAMED),
        "idle": tree.named(idle),
        "children": [p for p in parts.values() if p["units"]],
    }


async def monthly_rollup(
    session: AsyncSession, campaign_id: int, org_id: int, month: str, today: date
) -> dict:
    """Return a level's month over its whole subtree: every unit and member, the idle named.

    ``expected`` counts every unit; ``missing`` names the units whose month is not confirmed,
    ``idle`` those with nothing published at all. Also the same per direct child.
    """
    org = await session.get(Org, org_id)
    return _monthly_summary(await _monthly_tree(session, campaign_id, org, month, today), month)


async def monthly_rollup_below(
    session: AsyncSession, campaign_id: int, org: Org, below: list[Org], month: str, today: date
) -> tuple[dict, dict[int, dict]]:
    """Return a level's monthly roll-up and, from the same reading, that of each of ``below``.

    ``below`` are organizations of the subtree (attachment 5 adds a sheet per unit below the
    level): the subtree is read once, so a city's report costs one city-wide reading.
    """
    tree = await _monthly_tree(session, campaign_id, org, month, today)
    summary = _monthly_summary(tree, month)
    return summary, {o.id: _monthly_summary(_subtree(tree, o), month) for o in below}


async def pledging_rollup(
    session: AsyncSession, campaign: Campaign, org_id: int, today: date
) -> dict:
    """Return where a level's subtree stands in pledging, per child, naming the units behind.

    A unit is behind while its own pledge is not yet submitted or any of its members has not
    started, is drafting or has a pledge returned.
    """
    org = await session.get(Org, org_id)
    tree = await _tree(session, org)
    await _member_phases(session, campaign.id, tree)
    await _org_phases(session, campaign.id, tree)
    parts = _parts(tree)
    orgs = dict.fromkeys(PHASES, 0)
    members = dict.fromkeys(PHASES, 0)
    behind = []
    for unit in tree.in_order():
        orgs[unit.org_phase] += 1
        _add(members, unit.members)
        waiting = unit.members["not_started"] + unit.members["drafting"]
        waiting += unit.members["returned"]
        if unit.org_phase in ("not_started", "drafting", "returned") or waiting:
            behind.append(unit)
        part = parts.get(unit.child)
        if part is not None:
            part["units"] += 1
            part["orgs"][unit.org_phase] += 1
            _add(part["members"], unit.members)
    return {
        "phase": "pledging",
        "org": org.name,
        "deadline": campaign.pledge_deadline.isoformat(),
        "today": today.isoformat(),
        "units": len(tree.units),
        "orgs": orgs,
        "members": members,
        "member_total": sum(members.values()),
        "behind": tree.named(behind),
        "children": [p for p in parts.values() if p["units"]],
    }


async def rollup(
    session: AsyncSession, campaign: Campaign, org_id: int, month: str, today: date
) -> dict:
    """Return the roll-up a level asks for today: pledging until the deadline, then monthly."""
    if today <= campaign.pledge_deadline:
        return await pledging_rollup(session, campaign, org_id, today)
    return await monthly_rollup(session, campaign.id, org_id, month, today)
