"""The access policy as a table: role × action × target → allowed or refused.

Every row is checked by the same functions the campaign steps call, so a forged button meets
these very rules whatever the handler in front of it.
"""

from __future__ import annotations

from datetime import date

import pytest

from campaign import access
from campaign.access import Action, allowed_actions, load_actor
from models import Pledge, PledgeStatus, Role, RoleGrant
from models.pledge import OwnerKind
from tests.conftest import a_campaign, seed_people


@pytest.fixture
async def world(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2027, date(2027, 1, 1)))
        # a second branch under the same township, with its own secretary
        from models import Member, Org, OrgType

        other = Org(
            name="西街社区党支部",
            full_name="陇南市/武都区/城关镇/西街社区党支部",
            type=OrgType.COMMUNITY,
            parent_id=people.orgs["township"],
            depth=3,
        )
        s.add(other)
        await s.flush()
        township = await s.get(Org, people.orgs["township"])
        other.path = f"{township.path}{other.id}/"
        sec2 = Member(name="周书记", phone="13800000099", org_id=other.id)
        s.add(sec2)
        await s.flush()
        s.add(RoleGrant(member_id=sec2.id, role=Role.SECRETARY, org_id=other.id))
        people.ids["other_secretary"] = sec2.id
        people.orgs["other"] = other.id
        # a member's pledge and the village's own pledge, both published
        member_pledge = Pledge(
            campaign_id=1,
            owner_kind=OwnerKind.MEMBER,
            org_id=people.orgs["village"],
            owner_member_id=people.ids["member"],
            drafted_by=people.ids["member"],
            status=PledgeStatus.SUBMITTED,
            review_org_id=people.orgs["village"],
            review_role="secretary",
        )
        org_pledge = Pledge(
            campaign_id=1,
            owner_kind=OwnerKind.ORG,
            org_id=people.orgs["village"],
            drafted_by=people.ids["secretary"],
            status=PledgeStatus.SUBMITTED,
            review_org_id=people.orgs["township"],
            review_role="reviewer",
        )
        s.add(member_pledge)
        s.add(org_pledge)
    return store, people


TABLE = [
    # who, action, target, allowed
    ("member", "draft", "member_pledge", True),
    ("secretary", "draft", "member_pledge", False),
    ("secretary", "draft", "org_pledge", True),
    ("member", "draft", "org_pledge", False),
    ("other_secretary", "draft", "org_pledge", False),
    ("secretary", "decide", "member_pledge", True),
    ("member", "decide", "member_pledge", False),
    ("peer", "decide", "member_pledge", False),
    ("reviewer", "decide", "member_pledge", False),
    ("office", "decide", "member_pledge", False),
    ("other_secretary", "decide", "member_pledge", False),
    ("reviewer", "decide", "org_pledge", True),
    ("secretary", "decide", "org_pledge", False),
    ("office", "decide", "org_pledge", False),
    ("other_secretary", "decide", "org_pledge", False),
    ("secretary", "supervise", "member_pledge", True),
    ("reviewer", "supervise", "member_pledge", True),
    ("office", "supervise", "member_pledge", True),
    ("peer", "supervise", "member_pledge", False),
    ("other_secretary", "supervise", "member_pledge", False),
    ("secretary", "supervise", "org_pledge", False),
    ("reviewer", "supervise", "org_pledge", True),
    ("office", "supervise", "org_pledge", True),
]


@pytest.mark.parametrize(("who", "action", "target", "allowed"), TABLE)
async def test_access_table(world, who, action, target, allowed):
    store, people = world
    async with store.read() as s:
        actor = await load_actor(s, people.ids[who])
        pledge = await s.get(Pledge, 1 if target == "member_pledge" else 2)
        if action == "draft":
            result = access.may_draft(actor, pledge)
        elif action == "decide":
            result = access.may_decide(actor, pledge)
        else:
            result = await access.may_supervise(s, actor, pledge)
    assert result is allowed


@pytest.mark.parametrize(
    ("who", "has", "lacks"),
    [
        ("member", {Action.PLEDGE, Action.MINE, Action.REPORT}, {Action.REVIEW, Action.LEDGER}),
        ("secretary", {Action.REVIEW, Action.BIND_GROUP, Action.LEDGER, Action.SUMMARY}, set()),
        ("reviewer", {Action.REVIEW, Action.SUMMARY, Action.LEDGER}, {Action.BIND_GROUP}),
        ("office", {Action.SUMMARY, Action.BIND_GROUP, Action.LEDGER}, {Action.REVIEW}),
    ],
)
async def test_menus_follow_the_roles(world, who, has, lacks):
    store, people = world
    async with store.read() as s:
        actions = set(allowed_actions(await load_actor(s, people.ids[who])))
    assert has <= actions and not (lacks & actions)
