"""The calendar with a controlled clock: prompts on the day, reminders to non-responders only,
crossing off, overdue items, the branch report up the tree, review timeouts, restarts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.outbox import OutboxWorker
from campaign import fulfil, propose, review, rollup, supervise
from campaign.access import load_actor
from campaign.cards import CARD_TYPES
from campaign.evaluate import EVAL_TYPES
from campaign.look_back import LOOKBACK_TYPES
from campaign.monthly import MONTHLY_TYPES
from models import Campaign, JobRun, Outbox, Pledge, PledgeItem, PledgeStatus
from models.callbacks import CallbackCodec
from models.errors import DomainError
from models.pledge import OwnerKind, Verdict
from models.progress import PauseReason, Progress
from reminders.jobs import Jobs
from templates import catalog
from tests.conftest import RecordingMessenger, a_campaign, bind_everyone, seed_people

CODEC = CallbackCodec(b"k", [*CARD_TYPES, *MONTHLY_TYPES, *EVAL_TYPES, *LOOKBACK_TYPES])
CST = ZoneInfo("Asia/Shanghai")


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CST).astimezone(UTC)


def render(key):
    return catalog().render(key, "zh_CN")


async def actor(store, member_id):
    async with store.read() as s:
        return await load_actor(s, member_id)


async def publish_pledge(store, people, who, deadlines, today):
    me = await actor(store, people.ids[who])
    async with store.write() as s:
        target = propose.Target(OwnerKind.MEMBER, me.org_id, "")
        pledge = await propose.open_draft(s, me, target, today=today, render=render)
        for n, deadline in enumerate(deadlines):
            item = await propose.add_item(s, me, pledge.id)
            for field, value in [
                (
                    "content",
                    f"为本村第{n + 1}组{3 + n}户困难群众联系花椒销路，帮助其户均增收{1000 + n}元",
                ),
                ("goal", f"{deadline.month}月底前完成销售{5 + n}吨"),
                ("measures", "联系县城两家收购商上门收购，组织村民统一分级包装"),
                ("deadline", deadline.isoformat()),
            ]:
                await propose.set_item_field(s, me, pledge.id, item.id, field, value, year=2027)
        await review.submit(s, me, pledge.id, today=today, codec=CODEC)
        pid = pledge.id
    sec = await actor(store, people.ids["secretary"])
    async with store.write() as s:
        await review.decide(s, sec, pid, 1, Verdict.APPROVE, codec=CODEC, confirmed=True)
    return pid


@pytest.fixture
async def world(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2027, date(2027, 1, 10)))
        bind_everyone(s, people)
    today = date(2027, 1, 15)
    mine = await publish_pledge(
        store, people, "member", [date(2027, 3, 15), date(2027, 12, 31)], today
    )
    peers = await publish_pledge(store, people, "peer", [date(2027, 11, 30)], today)
    return store, people, mine, peers


async def keys(store, prefix):
    async with store.read() as s:
        rows = (await s.exec(select(Outbox.dedup_key))).all()
    return sorted(k for k in rows if k and k.startswith(prefix))


async def test_three_months_of_the_calendar(world):
    store, people, mine, peers = world
    jobs = Jobs(store, CODEC)
    member, peer, sec = people.ids["member"], people.ids["peer"], people.ids["secretary"]

    # February: nothing before the send hour on the report day, then one prompt each.
    assert "prompt" not in await jobs.tick(at(2027, 2, 19))
    assert await jobs.tick(at(2027, 2, 20, 8)) == {}  # before the send hour nothing runs
    assert (await jobs.tick(at(2027, 2, 20, 9)))["prompt"] == 2
    assert await keys(store, "prompt:") == [
        f"prompt:1:2027-02:{mine}:{member}:t:member",
        f"prompt:1:2027-02:{peers}:{peer}:t:peer",
    ]
    assert "prompt" not in await jobs.tick(at(2027, 2, 20, 15))  # a re-run queues nothing

    # The member answers (all on track, one tap); only the peer is reminded, once.
    me = await actor(store, member)
    async with store.write() as s:
        assert (
            await fulfil.record_rest_on_track(s, me, mine, "2027-02", today=date(2027, 2, 21)) == 2
        )
    assert (await jobs.tick(at(2027, 2, 25)))["remind"] == 1
    assert await keys(store, "reminder:") == [f"reminder:1:2027-02:{peers}:{peer}:t:peer"]
    await jobs.tick(at(2027, 2, 26))
    assert len(await keys(store, "reminder:")) == 1

    # The branch summary goes to the secretary; the township sees the branch missing until
    # the secretary confirms.
    assert (await jobs.tick(at(2027, 2, 28)))["summary"] == 1
    async with store.read() as s:
        town = await rollup.monthly_rollup(
            s, 1, people.orgs["township"], "2027-02", date(2027, 2, 28)
        )
        branch = await supervise.branch_report(
            s, 1, people.orgs["village"], "2027-02", date(2027, 2, 28)
        )
    assert town["missing"] == ["东江村党支部"] and town["submitted"] == 0
    assert branch["reported"] == ["张建国"] and branch["missing"] == ["王党员"]
    assert branch["figures"]["on_track"] == 2 and branch["figures"]["unreported"] == 1
    secretary = await actor(store, sec)
    async with store.write() as s:
        await supervise.confirm_branch(
            s, secretary, 1, people.orgs["village"], "2027-02", today=date(2027, 2, 28)
        )
    async with store.read() as s:
        town = await rollup.monthly_rollup(
            s, 1, people.orgs["township"], "2027-02", date(2027, 2, 28)
        )
        county = await rollup.monthly_rollup(
            s, 1, people.orgs["county"], "2027-02", date(2027, 2, 28)
        )
    assert town["missing"] == [] and town["submitted"] == 1
    # Every unit counts: the township's own members have published nothing and are named.
    assert town["expected"] == 2 and town["idle"]["names"] == ["城关镇"]
    assert county["figures"]["items"] == 3 and county["children"][0]["org"] == "城关镇"

    # March: the first item passes its deadline undone → overdue, told once; then done.
    await jobs.tick(at(2027, 3, 16))
    await jobs.tick(at(2027, 3, 17))
    async with store.read() as s:
        first = (
            await s.exec(
                select(PledgeItem).where(PledgeItem.pledge_id == mine).order_by(PledgeItem.seq)
            )
        ).first()
    assert await keys(store, "overdue:") == [f"overdue:{first.id}:{member}:t:member"]
    assert (await jobs.tick(at(2027, 3, 20)))["prompt"] == 2
    async with store.write() as s:
        await fulfil.record(s, me, first.id, "2027-03", Progress.DONE, today=date(2027, 3, 20))
        await fulfil.record_rest_on_track(s, me, mine, "2027-03", today=date(2027, 3, 20))
    async with store.read() as s:
        rows = await supervise.ledger(s, 1, people.orgs["village"], date(2027, 3, 20))
    assert [r.state for r in rows if r.owner == "张建国"] == ["done", "on_track"]

    # April: the peer is paused (外出务工) and not chased; the member's done item is not asked.
    pal = await actor(store, peer)
    async with store.write() as s:
        await fulfil.pause(
            s, pal, PauseReason.MIGRANT, today=date(2027, 4, 1), until=date(2027, 6, 30)
        )
    assert (await jobs.tick(at(2027, 4, 20)))["prompt"] == 1
    async with store.read() as s:
        due = await fulfil.due_reporters(s, await s.get(Campaign, 1), "2027-04", date(2027, 4, 20))
    assert [d.member_id for d in due] == [member]


async def test_a_missed_day_is_caught_up_once_and_a_restart_sends_nothing_twice(world):
    store, people, mine, peers = world
    # The scheduler is down from the 19th to the 23rd: the prompt goes out on the 23rd, once.
    assert "prompt" not in await Jobs(store, CODEC).tick(at(2027, 2, 19))
    first = await Jobs(store, CODEC).tick(at(2027, 2, 23))
    assert first["prompt"] == 2
    # Restarted right after sending (a new Jobs, a new connection pool): nothing again.
    again = await Jobs(store, CODEC).tick(at(2027, 2, 23, 11))
    assert "prompt" not in again
    assert len(await keys(store, "prompt:")) == 2
    async with store.read() as s:
        runs = (await s.exec(select(JobRun.job, JobRun.period))).all()
    assert ("prompt", "2027-02") in runs and ("sweep", "2027-02-23") in runs


async def test_a_review_waiting_too_long_reminds_then_escalates_never_approves(world):
    store, people, mine, peers = world
    # A third member's pledge waits on the secretary.
    async with store.write() as s:
        pledge = await s.get(Pledge, peers)
        pledge.status = PledgeStatus.SUBMITTED
        pledge.version = 2
        pledge.routed_at = at(2027, 2, 1)
        pledge.review_org_id = people.orgs["village"]
        pledge.review_role = "secretary"
    jobs = Jobs(store, CODEC)
    await jobs.tick(at(2027, 2, 3))  # 48 h: nothing yet
    assert await keys(store, "revrem:") == []
    await jobs.tick(at(2027, 2, 4, 11))  # past 72 h: the secretary is reminded, once
    await jobs.tick(at(2027, 2, 5))
    assert len(await keys(store, "revrem:")) == 1
    await jobs.tick(at(2027, 2, 7, 11))  # past 144 h: escalated to the township's reviewer
    async with store.read() as s:
        pledge = await s.get(Pledge, peers)
    assert pledge.status is PledgeStatus.SUBMITTED
    assert pledge.review_org_id == people.orgs["township"] and pledge.review_role == "reviewer"
    cards = await keys(store, f"card:{peers}:2:")
    assert cards == [
        f"card:{peers}:2:{people.ids['reviewer']}:esc{people.orgs['township']}:t:reviewer"
    ]
    # The old reviewer can no longer decide; the new one can.
    sec = await actor(store, people.ids["secretary"])
    async with store.write() as s:
        with pytest.raises(DomainError) as err:
            await review.decide(s, sec, peers, 2, Verdict.APPROVE, codec=CODEC, confirmed=True)
    assert err.value.key == "review.not_yours"
    assert pledge.routed_at == at(2027, 2, 7, 11)  # the new level gets a fresh timeout


async def deliver_all(store):
    """Deliver (and so render) everything queued, as the bot would; return the transcript."""
    messenger = RecordingMessenger(platform="t")
    worker = OutboxWorker(store, {"t": messenger})
    while await worker.run_once():
        pass
    return messenger


async def test_quarterly_bulletin_goes_to_each_level_once(world):
    store, people, mine, peers = world
    jobs = Jobs(store, CODEC)
    me = await actor(store, people.ids["member"])
    async with store.write() as s:
        await fulfil.record_rest_on_track(s, me, mine, "2027-03", today=date(2027, 3, 20))
    queued = await jobs.tick(at(2027, 4, 1))
    assert queued["quarter"] == 2  # the township reviewer and the county office
    assert "quarter" not in await jobs.tick(at(2027, 4, 2))
    assert await keys(store, "bulletin:") == [
        f"bulletin:1:2027Q2:{people.orgs['county']}:{people.ids['office']}:t:office",
        f"bulletin:1:2027Q2:{people.orgs['township']}:{people.ids['reviewer']}:t:reviewer",
    ]
    transcript = await deliver_all(store)
    (bulletin,) = transcript.texts("office")
    assert "武都区" in bulletin and "2027年第1季度" in bulletin  # the quarter just ended
    assert "尚无公示承诺（尚未开展）的单位：城关镇" in bulletin  # every unit counts
    for word in ("排名", "积分", "ranking", "points"):
        assert word not in bulletin  # outcomes, never a ranking of activity


async def test_rectification_is_reminded_before_and_reported_when_lapsed(world):
    store, people, mine, peers = world
    jobs = Jobs(store, CODEC)
    sec = await actor(store, people.ids["secretary"])
    async with store.write() as s:
        rect = await supervise.open_rectification(
            s,
            sec,
            mine,
            reason="群众反映第一条进度偏慢，请补充措施",
            deadline=date(2027, 3, 10),
            today=date(2027, 3, 1),
            codec=CODEC,
        )
    await jobs.tick(at(2027, 3, 6))  # four days before: not yet
    assert await keys(store, f"rect:{rect.id}:due") == []
    await jobs.tick(at(2027, 3, 7))  # three days before: the owner is reminded
    await jobs.tick(at(2027, 3, 8))
    assert await keys(store, f"rect:{rect.id}:due") == [
        f"rect:{rect.id}:due:{people.ids['member']}:t:member"
    ]
    await jobs.tick(at(2027, 3, 11))  # past the deadline, not closed: the opener is told once
    await jobs.tick(at(2027, 3, 12))
    assert await keys(store, f"rect:{rect.id}:lapsed") == [f"rect:{rect.id}:lapsed:t:secretary"]
    transcript = await deliver_all(store)
    assert any("群众反映第一条进度偏慢" in t for t in transcript.texts("secretary"))
