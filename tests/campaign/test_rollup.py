"""The roll-up tells the whole truth: every unit and member of the subtree, the idle named.

A small city is built directly (city → county → township → N branches, each with a secretary
and three members), on SQLite and on PostgreSQL, and the roll-up is read at each level.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date

import pytest
from sqlalchemy import event

from campaign import rollup
from models import Campaign, Member, Org, OrgReport, OrgType, Pledge, PledgeItem, Role, RoleGrant
from models.base import utcnow
from models.pledge import OwnerKind, PledgeStatus
from models.progress import Pause, PauseReason, Progress, ProgressReport
from templates import catalog

MONTH = "2026-05"
PHONES = itertools.count(13900000000)
TODAY = date(2026, 5, 28)


@dataclass
class City:
    orgs: dict[str, Org] = field(default_factory=dict)
    branches: list[Org] = field(default_factory=list)
    members: dict[int, list[int]] = field(default_factory=dict)
    secretaries: dict[int, int] = field(default_factory=dict)
    campaign: Campaign | None = None


async def _org(s, name, parent, typ=OrgType.LEVEL) -> Org:
    full = f"{parent.full_name}/{name}" if parent else name
    org = Org(
        name=name,
        full_name=full,
        type=typ,
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
    )
    s.add(org)
    await s.flush()
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    return org


async def build_city(
    store, branches: int = 8, *, deadline: date = date(2026, 4, 30), prefix: str = ""
) -> City:
    city = City()
    async with store.write() as s:
        top = await _org(s, f"{prefix}陇南市", None)
        county = await _org(s, "武都区", top)
        town = await _org(s, "城关镇", county)
        city.orgs = {"city": top, "county": county, "township": town}
        for n in range(branches):
            branch = await _org(s, f"第{n + 1}村党支部", town, OrgType.VILLAGE)
            city.branches.append(branch)
            city.members[branch.id] = []
            for k in range(4):
                m = Member(name=f"党员{n + 1}-{k}", phone=str(next(PHONES)), org_id=branch.id)
                s.add(m)
                await s.flush()
                s.add(RoleGrant(member_id=m.id, role=Role.MEMBER, org_id=branch.id))
                if k == 0:
                    s.add(RoleGrant(member_id=m.id, role=Role.SECRETARY, org_id=branch.id))
                    city.secretaries[branch.id] = m.id
                city.members[branch.id].append(m.id)
        # An office person at the county holds no member role: not counted as a member.
        office = Member(name="钱创先", phone=str(next(PHONES)), org_id=county.id)
        s.add(office)
        await s.flush()
        s.add(RoleGrant(member_id=office.id, role=Role.OFFICE, org_id=county.id))
        camp = Campaign(
            year=2026,
            name="2026年度公开承诺",
            root_org_id=top.id,
            starts_on=date(2026, 3, 1),
            pledge_deadline=deadline,
            ends_on=date(2026, 12, 31),
        )
        s.add(camp)
        await s.flush()
        city.campaign = camp
    return city


async def pledge(store, city, branch, member_id, status, *, reported=None, kind="member") -> int:
    async with store.write() as s:
        p = Pledge(
            campaign_id=city.campaign.id,
            owner_kind=OwnerKind(kind),
            org_id=branch.id,
            owner_member_id=member_id if kind == "member" else None,
            drafted_by=member_id,
            status=status,
            published_at=utcnow() if status is PledgeStatus.PUBLISHED else None,
        )
        s.add(p)
        await s.flush()
        item = PledgeItem(pledge_id=p.id, seq=0, content="帮扶", deadline=date(2026, 12, 31))
        s.add(item)
        await s.flush()
        if reported is not None:
            s.add(
                ProgressReport(
                    item_id=item.id,
                    pledge_id=p.id,
                    month=MONTH,
                    status=reported,
                    reported_by=member_id,
                )
            )
        return p.id


async def confirm(store, city, branch):
    async with store.write() as s:
        s.add(
            OrgReport(
                campaign_id=city.campaign.id,
                org_id=branch.id,
                month=MONTH,
                confirmed_by=city.secretaries[branch.id],
            )
        )


async def monthly(store, city, level):
    async with store.read() as s:
        return await rollup.monthly_rollup(s, city.campaign.id, city.orgs[level].id, MONTH, TODAY)


async def test_the_idle_branches_are_counted_and_named_at_every_level(store):
    """Found: one branch of eight had published and confirmed; every level saw "1 of 1"."""
    city = await build_city(store)
    first = city.branches[0]
    members = city.members[first.id]
    await pledge(
        store, city, first, members[1], PledgeStatus.PUBLISHED, reported=Progress.ON_TRACK
    )
    await pledge(store, city, first, members[2], PledgeStatus.PUBLISHED)
    async with store.write() as s:
        s.add(
            Pause(
                member_id=members[3],
                starts_on=date(2026, 5, 1),
                ends_on=date(2026, 8, 31),
                reason=PauseReason.MIGRANT,
                created_by=members[3],
            )
        )
    await pledge(store, city, first, members[3], PledgeStatus.PUBLISHED)
    await confirm(store, city, first)
    idle = [b.name for b in city.branches[1:]]
    for level in ("township", "county", "city"):
        summary = await monthly(store, city, level)
        assert summary["expected"] == 8 and summary["submitted"] == 1
        assert summary["idle"]["count"] == 7 and summary["missing"] == []
        names = [n.rsplit("/", 1)[-1] for n in summary["idle"]["names"]]
        assert names == idle
        assert summary["members"] == {
            "total": 32,
            "published": 3,
            "reported": 1,
            "missing": 1,
            "paused": 1,
            "without": 29,
        }
        text = catalog().render("supervise.rollup_monthly", "zh_CN", **summary)
        assert "应报 8 个单位" in text and "已确认上报 1 个" in text
        assert "尚无公示承诺（尚未开展）：" in text and "第8村党支部" in text
        assert "党员 32 人" in text and "未报 1" in text
    town = await monthly(store, city, "township")
    assert town["idle"]["names"][0] == "第2村党支部"  # named relative to the level
    county = await monthly(store, city, "county")
    assert county["idle"]["names"][0] == "城关镇/第2村党支部"
    (part,) = county["children"]
    assert part["org"] == "城关镇" and part["expected"] == 8 and part["month"]["total"] == 32


async def test_a_branch_with_pledges_but_no_confirmed_month_is_missing(store):
    city = await build_city(store, branches=2)
    first, second = city.branches
    await pledge(store, city, first, city.members[first.id][1], PledgeStatus.PUBLISHED)
    await pledge(store, city, second, city.members[second.id][1], PledgeStatus.DRAFT)
    summary = await monthly(store, city, "township")
    assert summary["missing"] == ["第1村党支部"]
    assert summary["idle"]["names"] == ["第2村党支部"]  # a draft is not a published pledge
    assert summary["figures"]["items"] == 1 and summary["figures"]["unreported"] == 1


async def test_the_pledging_phase_per_child_for_organizations_and_members(store):
    city = await build_city(store, branches=3, deadline=date(2026, 6, 30))
    a, b, c = city.branches
    ma, mb = city.members[a.id], city.members[b.id]
    await pledge(store, city, a, ma[0], PledgeStatus.PUBLISHED, kind="org")
    for member, status in zip(ma, [PledgeStatus.PUBLISHED] * 4, strict=True):
        await pledge(store, city, a, member, status)
    await pledge(store, city, b, mb[0], PledgeStatus.DRAFT, kind="org")
    await pledge(store, city, b, mb[1], PledgeStatus.SUBMITTED)
    await pledge(store, city, b, mb[2], PledgeStatus.RETURNED)
    await pledge(store, city, b, mb[3], PledgeStatus.DRAFT)
    async with store.read() as s:
        camp = await s.get(Campaign, city.campaign.id)
        summary = await rollup.rollup(s, camp, city.orgs["county"].id, MONTH, TODAY)
    assert summary["phase"] == "pledging"
    assert summary["orgs"] == {
        "not_started": 1,
        "drafting": 1,
        "submitted": 0,
        "returned": 0,
        "published": 1,
    }
    assert summary["members"] == {
        "not_started": 5,
        "drafting": 1,
        "submitted": 1,
        "returned": 1,
        "published": 4,
    }
    assert summary["behind"]["names"] == ["城关镇/第2村党支部", "城关镇/第3村党支部"]
    (part,) = summary["children"]
    assert part["units"] == 3 and part["members"]["not_started"] == 5
    text = catalog().render("supervise.rollup_pledging", "zh_CN", **summary)
    assert "共 3 个单位、党员 12 人" in text
    assert "未开始 5，起草中 1，待审核 1，退回修改 1，已公示 4" in text
    assert "尚未完成承诺的单位（2 个）" in text and "第3村党支部" in text
    assert "Units not done pledging (2)" in catalog().render(
        "supervise.rollup_pledging", "en", **summary
    )
    # After the deadline the same level shows the month.
    async with store.read() as s:
        later = await rollup.rollup(s, camp, city.orgs["county"].id, "2026-07", date(2026, 7, 2))
    assert later["phase"] == "monthly" and later["expected"] == 3


@pytest.mark.parametrize("phase", ["monthly", "pledging"])
async def test_the_query_count_does_not_grow_with_the_tree(store, phase):
    counts = []
    for branches in (2, 6):
        city = await build_city(store, branches=branches, prefix=str(branches))
        for branch in city.branches:
            await pledge(store, city, branch, city.members[branch.id][1], PledgeStatus.PUBLISHED)
        statements = []

        def count(*_args, statements=statements):
            statements.append(1)

        event.listen(store.engine.sync_engine, "before_cursor_execute", count)
        try:
            async with store.read() as s:
                camp = await s.get(Campaign, city.campaign.id)
                top = city.orgs["city"].id
                if phase == "monthly":
                    await rollup.monthly_rollup(s, camp.id, top, MONTH, TODAY)
                else:
                    await rollup.pledging_rollup(s, camp, top, TODAY)
        finally:
            event.remove(store.engine.sync_engine, "before_cursor_execute", count)
        counts.append(len(statements))
    assert counts[0] == counts[1]
