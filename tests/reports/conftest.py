"""Records to build documents from: a campaign, published pledges, twelve months of reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from campaign import propose
from models import (
    Campaign,
    Member,
    OwnerKind,
    Pledge,
    PledgeItem,
    PledgeSnapshot,
    PledgeStatus,
    Progress,
    ProgressReport,
    Review,
    Role,
    RoleGrant,
)
from tests.conftest import People, seed_people

TODAY = date(2027, 6, 15)
NOW = datetime(2027, 6, 15, 8, 0, tzinfo=UTC)
PUBLISHED = datetime(2027, 4, 20, 2, 0, tzinfo=UTC)
LONG = {k: ("长" * (v - 1)) + "尾" for k, v in propose.ITEM_FIELDS.items()}
RISKY = ["=SUM(A1:A9)", "+86 138", "-完成道路硬化", "@张三", "\t制表", "\r回车"]


@dataclass
class Records:
    """What a test built, to compare the documents with."""

    people: People
    campaign: Campaign
    items: list[PledgeItem] = field(default_factory=list)
    reports: dict[int, dict[str, Progress]] = field(default_factory=dict)
    pledges: list[Pledge] = field(default_factory=list)


def _texts(n: int, plain: bool) -> tuple[str, str, str]:
    if plain:
        return f"第{n + 1}项：为群众办实事", f"目标{n + 1}", f"措施{n + 1}"
    if n == 0:
        return LONG["content"], LONG["goal"], LONG["measures"]
    if n <= len(RISKY):
        return RISKY[n - 1], "目标" + str(n), "措施" + str(n)
    return f"第{n}项：为群众办实事", f"目标{n}", f"措施{n}"


async def build_records(
    store, people: People, *, member_items: int, org_items: int, plain: bool = False
) -> Records:
    """Publish pledges with these many items in the village branch; report on them monthly."""
    async with store.write() as s:
        camp = Campaign(
            year=2027,
            name="2027年度公开承诺",
            root_org_id=people.orgs["city"],
            starts_on=date(2027, 1, 1),
            pledge_deadline=date(2027, 4, 30),
            ends_on=date(2027, 12, 31),
        )
        s.add(camp)
        await s.flush()
        rec = Records(people, camp)
        village = people.orgs["village"]
        owners: list[int | None] = []
        # ten items at most per pledge: more items mean more members
        extra = 0
        left = member_items
        while left > 0:
            if extra < 1:
                owners.append(people.ids["member"])
            else:
                m = Member(name=f"党员{extra}", phone=f"1390000{extra:04d}", org_id=village)
                s.add(m)
                await s.flush()
                s.add(RoleGrant(member_id=m.id, role=Role.MEMBER, org_id=village))
                owners.append(m.id)
            extra += 1
            left -= 10
        plans = [(OwnerKind.ORG, None, org_items)] if org_items else []
        left = member_items
        for owner in owners:
            plans.append((OwnerKind.MEMBER, owner, min(10, left)))
            left -= 10
        n = 0
        for kind, owner, count in plans:
            pledge = Pledge(
                campaign_id=camp.id,
                owner_kind=kind,
                org_id=village,
                owner_member_id=owner,
                drafted_by=owner or people.ids["secretary"],
                status=PledgeStatus.PUBLISHED,
                category="rural" if owner else None,
                post="村文书" if owner else "",
                published_at=PUBLISHED,
            )
            s.add(pledge)
            await s.flush()
            rec.pledges.append(pledge)
            items = []
            for seq in range(count):
                content, goal, measures = _texts(n, plain)
                done = date(2027, 5, 10) if n % 5 == 1 else None
                deadline = date(2027, 5, 31) if n % 7 == 3 else date(2027, 12, 31)
                item = PledgeItem(
                    pledge_id=pledge.id,
                    seq=seq,
                    content=content,
                    goal=goal,
                    measures=measures,
                    deadline=deadline,
                    done_on=done,
                )
                s.add(item)
                await s.flush()
                items.append(item)
                rec.items.append(item)
                months = {}
                for m in ("2027-04", "2027-05", "2027-06"):
                    if n % 4 == 2 and m == "2027-06":
                        continue  # this one was not reported this month
                    if done and m == "2027-06":
                        continue
                    status = Progress.ON_TRACK
                    if done and m == "2027-05":
                        status = Progress.DONE
                    elif n % 6 == 5 and m == "2027-06":
                        status = Progress.BLOCKED
                    months[m] = status
                    s.add(
                        ProgressReport(
                            item_id=item.id,
                            pledge_id=pledge.id,
                            month=m,
                            status=status,
                            note="资金未到位" if status is Progress.BLOCKED else "",
                            reported_by=owner or people.ids["secretary"],
                        )
                    )
                rec.reports[item.id] = months
                n += 1
            s.add(
                PledgeSnapshot(
                    pledge_id=pledge.id,
                    version=1,
                    items=[propose.item_snapshot(i) for i in items],
                    content_hash="x",
                    submitted_by=pledge.drafted_by,
                    submitted_at=datetime(2027, 4, 10, 2, 0, tzinfo=UTC),
                )
            )
            reviewer = people.ids["reviewer"] if kind is OwnerKind.ORG else people.ids["secretary"]
            s.add(
                Review(
                    pledge_id=pledge.id,
                    pledge_version=1,
                    reviewer_id=reviewer,
                    kind="decision",
                    decision="ok",
                    opinion="同意，措施具体可行",
                    criteria=["sci", "adv", "use", "post", "pub"],
                    decided_at=datetime(2027, 4, 15, 3, 0, tzinfo=UTC),
                )
            )
    return rec


@pytest.fixture
async def people(store):
    return await seed_people(store)
