"""Notices (公告) in the campaign layer: the audience stays inside the sender's subtree, the
channels are counted with the one routing function, nothing is queued twice, figures add up."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from campaign import notices
from campaign.access import load_actor
from models import Account, GroupLink, Member, Notice, Org, OrgType, Outbox, Role, RoleGrant
from models.dialog import OutboxStatus, Priority
from models.errors import DomainError
from models.notice import Audience
from tests.conftest import bind_everyone, seed_people, sms_for


@pytest.fixture
async def people(store):
    people = await seed_people(store)
    async with store.write() as s:
        bind_everyone(s, people)
        township = await s.get(Org, people.orgs["township"])
        o = Org(
            name="西河村党支部",
            full_name=f"{township.full_name}/西河村党支部",
            type=OrgType.VILLAGE,
            parent_id=township.id,
            depth=township.depth + 1,
        )
        s.add(o)
        await s.flush()
        o.path = f"{township.path}{o.id}/"
        people.orgs["village2"] = o.id
        sec = Member(name="孙书记", phone="13800000021", org_id=o.id)
        sms = Member(name="周党员", phone="13800000022", org_id=o.id)
        s.add_all([sec, sms])
        await s.flush()
        people.ids["sec2"], people.ids["sms"] = sec.id, sms.id
        s.add(RoleGrant(member_id=sec.id, role=Role.SECRETARY, org_id=o.id))
        s.add(Account(platform="t", external_id="sec2", chat_id="sec2", member_id=sec.id))
        s.add(
            GroupLink(
                platform="wecom", chat_id="robot-1", org_id=o.id, linked_by=people.ids["office"]
            )
        )
    await sms_for(store, [people.ids["sms"]])  # 周党员 has no Telegram: reached by SMS
    return people


async def actor(store, people, key):
    async with store.read() as s:
        return await load_actor(s, people.ids[key])


async def test_a_secretary_addresses_only_the_branch(store, people):
    secretary = await actor(store, people, "secretary")
    assert notices.scope_ids(secretary) == [people.orgs["village"]]
    async with store.read() as s:
        with pytest.raises(DomainError) as err:
            await notices.resolve(s, secretary, people.orgs["township"], Audience.MEMBERS)
        assert err.value.key == "notice.forbidden"
        with pytest.raises(DomainError):
            await notices.resolve(
                s, secretary, people.orgs["village"], Audience.ORG, people.orgs["village2"]
            )
        plan = await notices.resolve(s, secretary, people.orgs["village"], Audience.MEMBERS)
    assert len(plan.members) == 3 and plan.channels["sms"] == 0


async def test_a_reviewer_counts_channels_and_secretaries_of_the_subtree(store, people):
    reviewer = await actor(store, people, "reviewer")
    async with store.read() as s:
        plan = await notices.resolve(s, reviewer, people.orgs["township"], Audience.MEMBERS)
        # township: reviewer; village: member, secretary, peer; village2: sec2, sms
        assert len(plan.members) == 6
        assert plan.channels == {"telegram": 0, "sms": 1, "group": 0, "other": 5}
        assert plan.unreachable == 0
        secs = await notices.resolve(s, reviewer, people.orgs["township"], Audience.SECRETARIES)
        assert sorted(secs.members) == sorted([people.ids["secretary"], people.ids["sec2"]])
        groups = await notices.resolve(s, reviewer, people.orgs["township"], Audience.GROUPS)
        assert groups.groups == [("wecom", "robot-1")] and groups.channels["group"] == 1
        # the county is above the reviewer: refused
        with pytest.raises(DomainError):
            await notices.resolve(s, reviewer, people.orgs["county"], Audience.MEMBERS)


async def test_send_twice_queues_once_and_the_figures_add_up(store, people):
    office = await actor(store, people, "office")
    for _ in range(2):  # a re-run with the same token
        async with store.write() as s:
            notice, made = await notices.send(
                s,
                office,
                token="t1",
                scope_org_id=people.orgs["county"],
                audience=Audience.MEMBERS,
                text="  请按时报送本月进度。 ",
            )
            assert s.info.get("outbox_queued", []) == []  # not the reply path
    async with store.read() as s:
        assert (await s.exec(select(func.count()).select_from(Notice))).one() == 1
        rows = (await s.exec(select(Outbox))).all()
    # county: office; township: reviewer; village: 3; village2: 2 → 7 members, 7 routes
    assert len(rows) == 7 and all(r.priority == Priority.BROADCAST for r in rows)
    assert len({r.dedup_key for r in rows}) == 7
    assert {r.payload["context"]["text"] for r in rows} == {"请按时报送本月进度。"}
    async with store.write() as s:
        first = rows[0]
        await s.exec(
            Outbox.__table__.update()
            .where(Outbox.__table__.c.id == first.id)
            .values(status=OutboxStatus.DEAD)
        )
        await s.exec(
            Outbox.__table__.update()
            .where(Outbox.__table__.c.id == rows[1].id)
            .values(status=OutboxStatus.SENT)
        )
        figs = await notices.figures(s, await s.get(Notice, notice.id))
    assert (figs["sent"], figs["dead"], figs["pending"], figs["messages"]) == (1, 1, 5, 7)
    assert figs["sms"] == 1 and figs["other"] == 6 and not figs["done"]


async def test_the_progress_is_edited_once_per_step_and_ends_with_the_summary(store, people):
    office = await actor(store, people, "office")
    async with store.write() as s:
        notice, _ = await notices.send(
            s,
            office,
            token="t2",
            scope_org_id=people.orgs["township"],
            audience=Audience.SECRETARIES,
            text="书记会议改到周四。",
            chat=("t", "office", "77", "zh_CN"),
        )
    async with store.write() as s:
        first = await notices.advance(s)
        again = await notices.advance(s)
    assert len(first) == 1 and again == []
    async with store.write() as s:
        await s.exec(
            Outbox.__table__.update()
            .where(Outbox.__table__.c.dedup_key.like(f"notice:{notice.id}:%"))
            .values(status=OutboxStatus.SENT)
        )
        done = await notices.advance(s)
        edit = await s.get(Outbox, done[0])
        assert edit.kind == "edit" and edit.payload["template"] == "notice.summary"
        assert edit.payload["edit_message_id"] == "77"
        assert await notices.advance(s) == []
        assert (await s.get(Notice, notice.id)).finished_at is not None


def test_text_must_be_there_and_fit_one_message():
    with pytest.raises(DomainError) as err:
        notices.check_text(" \n ")
    assert err.value.key == "notice.empty"
    with pytest.raises(DomainError) as err:
        notices.check_text("字" * (notices.max_text() + 1))
    assert err.value.key == "notice.too_long"
    assert notices.check_text("字" * notices.max_text())
