"""The pledge loop in the domain: submit, route, peers, decide once, publish, audit chain."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import delete, text
from sqlmodel import func, select

from campaign import audit, propose, review
from campaign.access import load_actor
from campaign.cards import CARD_TYPES
from models import (
    AuditEvent,
    GroupLink,
    Outbox,
    Pledge,
    PledgeStatus,
    Review,
    Role,
    RoleGrant,
)
from models.callbacks import CallbackCodec
from models.errors import DomainError
from models.pledge import Criterion, OwnerKind, Verdict
from templates import catalog
from tests.conftest import a_campaign, bind_everyone, seed_people

TODAY = date(2026, 3, 10)
CODEC = CallbackCodec(b"k", CARD_TYPES)


def render(key):
    return catalog().render(key, "zh_CN")


@pytest.fixture
async def world(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        bind_everyone(s, people)
    return store, people


async def actor(store, people, key):
    async with store.read() as s:
        return await load_actor(s, people.ids[key])


async def draft_member_pledge(store, people, content="帮助本村5户困难群众发展花椒种植"):
    me = await actor(store, people, "member")
    async with store.write() as s:
        (target,) = [t for t in await propose.targets(s, me) if t.owner is OwnerKind.MEMBER]
        pledge = await propose.open_draft(s, me, target, today=TODAY, render=render)
        item = await propose.add_item(s, me, pledge.id)
        for field, value in [
            ("content", content),
            ("goal", "年底前户均增收2000元"),
            ("measures", "联系县农技站开展3次技术培训，统一采购优质苗木"),
            ("deadline", "2026年11月30日"),
            ("vanguard", "serve"),
        ]:
            await propose.set_item_field(s, me, pledge.id, item.id, field, value, year=2026)
        return pledge.id


async def submit(store, people, pledge_id, who="member"):
    me = await actor(store, people, who)
    async with store.write() as s:
        return await review.submit(s, me, pledge_id, today=TODAY, codec=CODEC)


async def decide(store, people, who, pledge_id, version, verdict, **kw):
    me = await actor(store, people, who)
    async with store.write() as s:
        if verdict is Verdict.APPROVE:
            kw.setdefault("confirmed", True)  # the reviewer confirmed the five criteria
        return await review.decide(s, me, pledge_id, version, verdict, codec=CODEC, **kw)


async def outbox_keys(store):
    async with store.read() as s:
        return [k for k in (await s.exec(select(Outbox.dedup_key))).all() if k]


async def test_member_pledge_goes_to_secretary_and_peers(world):
    store, people = world
    pid = await draft_member_pledge(store, people)
    result = await submit(store, people, pid)
    assert result.routing.role is Role.SECRETARY
    assert result.routing.reviewers == (people.ids["secretary"],)
    assert result.peers == (people.ids["peer"],)
    keys = await outbox_keys(store)
    assert f"card:{pid}:1:{people.ids['secretary']}:t:secretary" in keys
    assert f"peer:{pid}:1:{people.ids['peer']}:t:peer" in keys


async def test_return_revise_approve_publish(world):
    store, people = world
    async with store.write() as s:
        s.add(
            GroupLink(
                platform="t",
                chat_id="-100",
                org_id=people.orgs["village"],
                linked_by=people.ids["secretary"],
            )
        )
    pid = await draft_member_pledge(store, people)
    await submit(store, people, pid)
    with pytest.raises(DomainError) as err:
        await decide(store, people, "secretary", pid, 1, Verdict.RETURN)
    assert err.value.key == "review.reason_required"
    await decide(store, people, "secretary", pid, 1, Verdict.RETURN, reasons=[Criterion.POST])
    me = await actor(store, people, "member")
    async with store.write() as s:
        pledge = await propose.open_draft(
            s, me, propose.Target(OwnerKind.MEMBER, me.org_id, ""), today=TODAY, render=render
        )
        assert pledge.status is PledgeStatus.DRAFT and pledge.version == 2
    await submit(store, people, pid)
    with pytest.raises(DomainError) as err:  # a card of version 1 is stale now
        await decide(store, people, "secretary", pid, 1, Verdict.APPROVE)
    assert err.value.key == "error.stale_card"
    await decide(store, people, "secretary", pid, 2, Verdict.APPROVE)
    async with store.read() as s:
        pledge = await s.get(Pledge, pid)
        assert pledge.status is PledgeStatus.PUBLISHED
    keys = await outbox_keys(store)
    assert f"ret:{pid}:1:{people.ids['member']}:t:member" in keys
    assert f"letter:{pid}:2:{people.ids['member']}:t:member" in keys
    assert f"post:{pid}:2:t:-100" in keys
    async with store.read() as s:
        kinds = (await s.exec(select(AuditEvent.kind).order_by(AuditEvent.id))).all()
        assert (await audit.verify(s)).ok
    assert [k for k in kinds if k.startswith("pledge.")] == [
        "pledge.drafted",
        "pledge.submitted",
        "pledge.returned",
        "pledge.revised",
        "pledge.submitted",
        "pledge.approved",
        "pledge.published",
    ]


async def test_only_the_routed_reviewer_decides(world):
    store, people = world
    pid = await draft_member_pledge(store, people)
    await submit(store, people, pid)
    for who in ("reviewer", "office", "peer", "member"):
        with pytest.raises(DomainError) as err:
            await decide(store, people, who, pid, 1, Verdict.APPROVE)
        assert err.value.key == "review.not_yours"


async def test_org_pledge_goes_up_and_escalates_past_empty_levels(world):
    store, people = world
    sec = await actor(store, people, "secretary")
    async with store.write() as s:
        target = propose.Target(OwnerKind.ORG, people.orgs["village"], "")
        pledge = await propose.open_draft(s, sec, target, today=TODAY, render=render)
        items = await propose.items_of(s, pledge.id)
        assert [i.basic for i in items] == [True, True, True]
        with pytest.raises(DomainError):
            await propose.remove_item(s, sec, pledge.id, items[0].id)
        for item in items:
            await propose.set_item_field(
                s, sec, pledge.id, item.id, "goal", "每月5日前公开，群众查询率100%", year=2026
            )
            await propose.set_item_field(
                s,
                sec,
                pledge.id,
                item.id,
                "measures",
                "村干部周一至周五到村坐班，公示电话0939-1234567",
                year=2026,
            )
            await propose.set_item_field(s, sec, pledge.id, item.id, "deadline", "年底", year=2026)
        pid = pledge.id
    result = await submit(store, people, pid, who="secretary")
    assert result.routing.role is Role.REVIEWER
    assert result.routing.org_id == people.orgs["township"] and not result.routing.escalated
    # Without a township reviewer it climbs to the county and the county office is told.
    await decide(store, people, "reviewer", pid, 1, Verdict.RETURN, opinion="电话号码不全")
    async with store.write() as s:
        await s.exec(delete(RoleGrant).where(RoleGrant.role == Role.REVIEWER))
        s.add(
            RoleGrant(
                member_id=people.ids["office"], role=Role.REVIEWER, org_id=people.orgs["city"]
            )
        )
        await propose.open_draft(s, sec, target, today=TODAY, render=render)
    result = await submit(store, people, pid, who="secretary")
    assert result.routing.org_id == people.orgs["city"] and result.routing.escalated
    assert result.routing.office == (people.ids["office"],)


@pytest.mark.parametrize("n", [100])
async def test_parallel_decisions_yield_exactly_one(world, n):
    store, people = world
    pid = await draft_member_pledge(store, people)
    await submit(store, people, pid)
    sec = await actor(store, people, "secretary")

    async def press(i):
        verdict = Verdict.APPROVE if i % 2 else Verdict.RETURN
        try:
            async with store.write() as s:
                await review.decide(
                    s,
                    sec,
                    pid,
                    1,
                    verdict,
                    codec=CODEC,
                    reasons=[Criterion.ADVANCED],
                    confirmed=True,
                )
            return verdict
        except DomainError as exc:
            assert exc.key == "error.stale_card"
            return None

    results = await asyncio.gather(*(press(i) for i in range(n)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    async with store.read() as s:
        decisions = (
            await s.exec(select(func.count()).select_from(Review).where(Review.kind == "decision"))
        ).one()
        status = (await s.get(Pledge, pid)).status
    assert decisions == 1
    assert status is (
        PledgeStatus.PUBLISHED if winners[0] is Verdict.APPROVE else PledgeStatus.RETURNED
    )


async def test_audit_verify_names_the_first_tampered_event(world):
    store, people = world
    pid = await draft_member_pledge(store, people)
    await submit(store, people, pid)
    await decide(store, people, "secretary", pid, 1, Verdict.APPROVE)
    async with store.read() as s:
        assert (await audit.verify(s)).ok
        ids = (await s.exec(select(AuditEvent.id).order_by(AuditEvent.id))).all()
    victim = ids[1]
    async with store.write() as s:
        await s.exec(
            text("UPDATE auditevent SET subject = 'pledge:999' WHERE id = :id").bindparams(
                id=victim
            )
        )
    async with store.read() as s:
        result = await audit.verify(s)
    assert not result.ok and result.broken_id == victim and result.checked == 1
