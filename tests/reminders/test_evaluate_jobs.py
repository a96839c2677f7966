"""每季一评 through a year with a controlled clock: one card per rater per quarter, one reminder
to those who did not answer, results by the documented rule, 待评 and its one reminder, follow-ups;
nothing twice after a restart or a re-run."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, func, select

from campaign import evaluate
from campaign.access import load_actor
from campaign.cards import CARD_TYPES
from campaign.evaluate import EVAL_TYPES
from campaign.look_back import LOOKBACK_TYPES
from campaign.monthly import MONTHLY_TYPES
from models import (
    AuditEvent,
    Campaign,
    EvalStatus,
    Evaluation,
    FollowUp,
    Grade,
    Member,
    Outbox,
    Pledge,
    PledgeItem,
    PledgeStatus,
    Rating,
    Role,
    RoleGrant,
    Side,
)
from models.callbacks import CallbackCodec
from models.errors import DomainError
from models.org import Account
from models.pledge import OwnerKind
from reminders.jobs import Jobs
from templates import catalog
from tests.conftest import a_campaign, bind_everyone, seed_people

CODEC = CallbackCodec(b"k", [*CARD_TYPES, *MONTHLY_TYPES, *EVAL_TYPES, *LOOKBACK_TYPES])
CST = ZoneInfo("Asia/Shanghai")
E, G, F, P = Grade.EXCELLENT, Grade.GOOD, Grade.FAIR, Grade.POOR
MEMBERS = ("member", "secretary", "peer", "m4", "m5")


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CST).astimezone(UTC)


async def add_person(store, people, key, name, phone, org_key, roles):
    async with store.write() as s:
        m = Member(name=name, phone=phone, org_id=people.orgs[org_key])
        s.add(m)
        await s.flush()
        people.ids[key] = m.id
        for role in roles:
            s.add(RoleGrant(member_id=m.id, role=role, org_id=people.orgs[org_key]))


async def published(s, camp, people, *, member=None, org=None):
    """Add a published pledge with two items: one done, one due at the year's end."""
    pledge = Pledge(
        campaign_id=camp.id,
        owner_kind=OwnerKind.MEMBER if member else OwnerKind.ORG,
        org_id=people.orgs["village"],
        owner_member_id=people.ids[member] if member else None,
        drafted_by=people.ids[member or "secretary"],
        status=PledgeStatus.PUBLISHED,
        published_at=at(2027, 2, 1),
    )
    s.add(pledge)
    await s.flush()
    s.add(
        PledgeItem(
            pledge_id=pledge.id,
            seq=1,
            content="a",
            deadline=date(2027, 3, 1),
            done_on=date(2027, 2, 20),
        )
    )
    s.add(PledgeItem(pledge_id=pledge.id, seq=2, content="b", deadline=date(2027, 12, 31)))
    return pledge


@pytest.fixture
async def world(store):
    people = await seed_people(store)
    await add_person(store, people, "m4", "赵四", "13800000011", "village", [Role.MEMBER])
    await add_person(store, people, "m5", "孙五", "13800000012", "village", [Role.MEMBER])
    await add_person(
        store, people, "evaluator", "周评议", "13800000013", "village", [Role.EVALUATOR]
    )
    async with store.write() as s:
        camp = a_campaign(people, 2027, date(2027, 1, 10))
        s.add(camp)
        bind_everyone(s, people)
        await s.flush()
        for key in MEMBERS:
            await published(s, camp, people, member=key)
        await published(s, camp, people)
    return store, people


async def keys_like(store, pattern):
    async with store.read() as s:
        return list(
            await s.exec(select(Outbox.dedup_key).where(col(Outbox.dedup_key).like(pattern)))
        )


async def ratings(store, quarter, rater=None):
    async with store.read() as s:
        q = (
            select(Rating, Evaluation)
            .join(Evaluation, col(Evaluation.id) == Rating.evaluation_id)
            .where(Evaluation.quarter == quarter)
        )
        if rater is not None:
            q = q.where(Rating.rater_id == rater)
        return list((await s.exec(q)).all())


async def give(store, people, quarter, choose):
    """Let each rater answer their ratings with ``choose(rater_key, rating, evaluation)``."""
    by_id = {v: k for k, v in people.ids.items()}
    for rating, ev in await ratings(store, quarter):
        grade = choose(by_id[rating.rater_id], rating, ev)
        if grade is None:
            continue
        async with store.write() as s:
            actor = await load_actor(s, rating.rater_id)
            await evaluate.rate(s, actor, rating.id, grade, codec=CODEC)


async def evaluation_of(store, quarter, subject):
    async with store.read() as s:
        return (
            await s.exec(
                select(Evaluation).where(
                    Evaluation.quarter == quarter, Evaluation.subject == subject
                )
            )
        ).one()


async def test_a_year_of_quarterly_evaluations(world):
    store, people = world
    ids = people.ids
    raters = {"member", "secretary", "peer", "m4", "m5", "evaluator", "reviewer"}

    # January: the quarter before the campaign is not evaluated.
    assert "eval_open" not in await Jobs(store, CODEC).tick(at(2027, 1, 15))

    # April 1st: one card per rater for 2027Q1; a re-run and a restart queue nothing more.
    got = await Jobs(store, CODEC).tick(at(2027, 4, 1))
    assert got["eval_open"] == len(raters)
    assert "eval_open" not in await Jobs(store, CODEC).tick(at(2027, 4, 1, 15))
    assert "eval_open" not in await Jobs(store, CODEC).tick(at(2027, 4, 2))
    cards = await keys_like(store, "eval:%:2027Q1:card:%")
    assert len(cards) == len(raters)
    assert {int(k.split(":")[4]) for k in cards} == {ids[r] for r in raters}

    # Who rates whom: self, three fair peers, the secretary (the level above for the
    # secretary), the evaluator; the organization by itself and by the level above.
    rows = await ratings(store, "2027Q1")
    peer_load = {}
    for rating, ev in rows:
        if rating.side is Side.PEER:
            peer_load[rating.rater_id] = peer_load.get(rating.rater_id, 0) + 1
            assert rating.rater_id != ev.member_id
    # least-asked first: 15 peer ratings spread over five members, nobody far above the rest
    assert sum(peer_load.values()) == 15 and len(peer_load) == 5
    assert max(peer_load.values()) - min(peer_load.values()) <= 2
    sec_eval = await evaluation_of(store, "2027Q1", f"m:{ids['secretary']}")
    org_raters = {r.rater_id for r, ev in rows if ev.id == sec_eval.id and r.side is Side.ORG}
    assert org_raters == {ids["reviewer"]}
    org_eval = await evaluation_of(store, "2027Q1", f"o:{people.orgs['village']}")
    assert {(r.side, r.rater_id) for r, ev in rows if ev.id == org_eval.id} == {
        (Side.SELF, ids["secretary"]),
        (Side.UPPER, ids["reviewer"]),
    }
    # The card lists everyone the rater rates with the items' states from the records.
    async with store.read() as s:
        card = (await s.exec(select(Outbox).where(Outbox.dedup_key == cards[0]))).one()
    entry = card.payload["context"]["entries"][0]
    assert entry["states"] == {"done": 1, "on_track": 1, "overdue": 0}

    # Everyone answers but m5; the secretary grades the peer 一般.
    def choose(rater, rating, ev):
        if rater == "m5":
            return None
        if rating.side is Side.ORG and ev.member_id == ids["peer"]:
            return F
        return {Side.SELF: E, Side.PEER: G, Side.ORG: G, Side.EVALUATOR: E, Side.UPPER: G}[
            rating.side
        ]

    await give(store, people, "2027Q1", choose)

    # April 8th: the one reminder goes to m5 only, never again.
    got = await Jobs(store, CODEC).tick(at(2027, 4, 8))
    assert got["eval_remind"] == 1
    assert await keys_like(store, "eval:%:2027Q1:remind:%") == [
        f"eval:1:2027Q1:remind:{ids['m5']}:t:m5"
    ]
    assert "eval_remind" not in await Jobs(store, CODEC).tick(at(2027, 4, 9))

    # April 15th: the close grades by the rule (hand-computed below).
    await Jobs(store, CODEC).tick(at(2027, 4, 15))
    expect = {
        # self 100, peers 85, org 85, evaluator 100: (1000+1700+3400+3000)/100 = 91
        "member": (E, 91.0),
        "m4": (E, 91.0),
        "secretary": (E, 91.0),
        # the secretary graded 一般: (1000+1700+2800+3000)/100 = 85
        "peer": (G, 85.0),
        # no self-rating: (1700+3400+3000)/90 = 90 exactly, which reaches 优秀
        "m5": (E, 90.0),
    }
    for key, (grade, score) in expect.items():
        ev = await evaluation_of(store, "2027Q1", f"m:{ids[key]}")
        assert (ev.status, ev.grade, ev.result["score"]) == (EvalStatus.GRADED, grade, score)
    ev = await evaluation_of(store, "2027Q1", f"m:{ids['m5']}")
    assert ev.result["missing"] == ["self"]
    # the organization: self 100, level above 85, no poll: (2000+4250)/70 = 89.3 → 良好
    ev = await evaluation_of(store, "2027Q1", f"o:{people.orgs['village']}")
    assert (ev.grade, ev.result["score"], ev.result["missing"]) == (G, 89.3, ["public"])
    results = await keys_like(store, "eval:%:2027Q1:result:%")
    assert len(results) == 6  # five members, and the branch's secretary for the organization
    async with store.read() as s:
        row = (
            await s.exec(
                select(Outbox).where(Outbox.dedup_key.like(f"%:result:%:{ids['peer']}:%"))
            )
        ).one()
    text = catalog().render(row.payload["template"], "zh_CN", **row.payload["context"])
    assert "良好（85.0分）" in text and "组织评价：1人，平均70.0分，权重40" in text
    assert "≥90优秀" in text
    # The branch's results go to the level above (no group is linked here).
    assert len(await keys_like(store, "eval:%:2027Q1:upper:%")) == 1
    assert await keys_like(store, "eval:%:2027Q1:follow:%") == []
    assert "eval_close" not in await Jobs(store, CODEC).tick(at(2027, 4, 16))

    # A graded quarter takes no more grades.
    rating, _ = (await ratings(store, "2027Q1", ids["m5"]))[0]
    async with store.write() as s:
        with pytest.raises(DomainError) as err:
            await evaluate.rate(s, await load_actor(s, ids["m5"]), rating.id, E, codec=CODEC)
    assert err.value.key == "eval.closed"

    # July: nobody answers; at the close every result is 待评 and the decisive raters (the
    # secretary for the members, the level above for the secretary and the organization)
    # are reminded once.
    await Jobs(store, CODEC).tick(at(2027, 7, 1))
    assert len(await keys_like(store, "eval:%:2027Q2:card:%")) == len(raters)
    assert len(await keys_like(store, "eval:%:2027Q2:remind:%")) == 0
    await Jobs(store, CODEC).tick(at(2027, 7, 8))
    assert len(await keys_like(store, "eval:%:2027Q2:remind:%")) == len(raters)
    await Jobs(store, CODEC).tick(at(2027, 7, 15))
    await Jobs(store, CODEC).tick(at(2027, 7, 20))
    pending = await keys_like(store, "eval:%:2027Q2:pending:%")
    assert sorted(int(k.split(":")[4]) for k in pending) == sorted(
        [ids["secretary"], ids["reviewer"]]
    )
    ev = await evaluation_of(store, "2027Q2", f"m:{ids['member']}")
    assert ev.status is EvalStatus.PENDING and ev.grade is None
    assert await keys_like(store, "eval:%:2027Q2:result:%") == []
    # Only the decisive side may still be given; the self-rating may not.
    mine = [r for r, e in await ratings(store, "2027Q2", ids["member"]) if r.side is Side.SELF]
    async with store.write() as s:
        with pytest.raises(DomainError):
            await evaluate.rate(s, await load_actor(s, ids["member"]), mine[0].id, E, codec=CODEC)
    # The secretary grades late: the result (一般, org side only) goes out at once, and the
    # secretary is asked for the follow-up.
    late = [
        r
        for r, e in await ratings(store, "2027Q2", ids["secretary"])
        if r.side is Side.ORG and e.member_id == ids["member"]
    ]
    async with store.write() as s:
        await evaluate.rate(s, await load_actor(s, ids["secretary"]), late[0].id, F, codec=CODEC)
    ev = await evaluation_of(store, "2027Q2", f"m:{ids['member']}")
    assert (ev.status, ev.grade, ev.result["score"]) == (EvalStatus.GRADED, F, 70.0)
    assert ev.result["missing"] == ["self", "peer", "evaluator"]
    assert len(await keys_like(store, f"eval:%:2027Q2:result:{ev.id}:%")) == 1
    assert len(await keys_like(store, "eval:%:2027Q2:follow:%")) == 1
    async with store.write() as s:
        sec = await load_actor(s, ids["secretary"])
        await evaluate.record_follow_up(s, sec, ev.id, FollowUp.TALK)
    async with store.write() as s:
        with pytest.raises(DomainError) as err:
            await evaluate.record_follow_up(s, sec, ev.id, FollowUp.CRITICISM)
        assert err.value.key == "eval.followed_already"
        with pytest.raises(DomainError) as err:
            await evaluate.record_follow_up(
                s, await load_actor(s, ids["peer"]), ev.id, FollowUp.TALK
            )
        assert err.value.key == "error.forbidden"

    # October and next January (the last quarter is evaluated after the campaign's end).
    for quarter, day in (("2027Q3", at(2027, 10, 1)), ("2027Q4", at(2028, 1, 1))):
        jobs = Jobs(store, CODEC)
        await jobs.tick(day)
        await jobs.tick(day)
        assert len(await keys_like(store, f"eval:%:{quarter}:card:%")) == len(raters)
    # Exactly one card per rater per quarter, all year.
    assert len(await keys_like(store, "eval:%:card:%")) == 4 * len(raters)
    # Every rating is an audit event.
    async with store.read() as s:
        rated = (
            await s.exec(select(func.count()).where(AuditEvent.kind == "evaluation.rated"))
        ).one()
        given = (await s.exec(select(func.count()).where(col(Rating.grade).is_not(None)))).one()
        follow = (
            await s.exec(select(func.count()).where(AuditEvent.kind == "evaluation.follow_up"))
        ).one()
    assert rated == given and follow == 1


async def test_the_rule_is_kept_with_the_evaluation(world):
    store, people = world
    async with store.write() as s:
        camp = (await s.exec(select(Campaign))).one()
        rule = dict(camp.grade_rule)
        rule["weights"] = {
            **rule["weights"],
            "member": {"self": 0, "peer": 0, "org": 1, "evaluator": 0},
        }
        camp.grade_rule = rule
        s.add(camp)
    await Jobs(store, CODEC).tick(at(2027, 4, 1))
    # a later change of the campaign's rule does not change a quarter already opened
    async with store.write() as s:
        camp = (await s.exec(select(Campaign))).one()
        camp.grade_rule = {
            **camp.grade_rule,
            "thresholds": {"excellent": 99, "good": 98, "fair": 97},
        }
        s.add(camp)

    def choose(rater, rating, ev):
        return E if rating.side is Side.ORG else P

    await give(store, people, "2027Q1", choose)
    await Jobs(store, CODEC).tick(at(2027, 4, 15))
    ev = await evaluation_of(store, "2027Q1", f"m:{people.ids['member']}")
    assert (ev.grade, ev.result["score"]) == (E, 100.0)


async def test_an_unbound_person_gets_no_card_and_nothing_breaks(world):
    store, people = world
    async with store.write() as s:
        acc = (await s.exec(select(Account).where(Account.external_id == "evaluator"))).one()
        acc.active = False
        s.add(acc)
    got = await Jobs(store, CODEC).tick(at(2027, 4, 1))
    assert got["eval_open"] == 6
