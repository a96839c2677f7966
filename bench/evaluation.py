"""Benchmark: the burden of one quarter's evaluation (每季一评) on one branch, and its cost.

Builds a branch of ``--members`` members (all bound, all with a published pledge), its
secretary, one evaluator (评议员) and the township's reviewer, plus the branch's own pledge and
its group. Opens the quarter (one card per rater), lets everyone answer but one member in ten
(the secretary grades one member in five 一般), reminds, closes with the documents port (the
grade chart goes to the group and the level above), and the secretary records the follow-ups.
Prints messages and taps per member, per secretary, per evaluator and per reviewer for the
quarter (taps = one per person rated, plus page turns, plus one per follow-up recorded), what
the group got, the time each step took, and ends with one line of JSON.

    .venv/bin/python bench/evaluation.py --members 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaign import evaluate
from campaign.access import load_actor
from campaign.cards import CARD_TYPES
from campaign.db import Store
from campaign.evaluate import EVAL_TYPES, PAGE
from campaign.look_back import LOOKBACK_TYPES
from campaign.model_examples import MODEL_TYPES
from campaign.monthly import MONTHLY_TYPES
from models import (
    Account,
    Campaign,
    Evaluation,
    GroupLink,
    Member,
    Org,
    OrgType,
    Outbox,
    Pledge,
    PledgeItem,
    PledgeStatus,
    Rating,
    Role,
    RoleGrant,
)
from models.callbacks import CallbackCodec
from models.evaluation import FollowUp, Grade, Side
from models.pledge import OwnerKind
from reminders.jobs import Jobs
from reports.service import Reports

CST = ZoneInfo("Asia/Shanghai")
CODEC = CallbackCodec(
    b"bench", [*CARD_TYPES, *MONTHLY_TYPES, *EVAL_TYPES, *LOOKBACK_TYPES, *MODEL_TYPES]
)


def at(m: int, d: int) -> datetime:
    return datetime(2027, m, d, 10, tzinfo=CST).astimezone(UTC)


async def build(store: Store, members: int) -> dict[str, list[int]]:
    await store.migrate()
    roles: dict[str, list[int]] = {"member": [], "secretary": [], "evaluator": [], "reviewer": []}
    async with store.write() as s:
        parent, path, full = None, "/", ""
        orgs = []
        for depth, name in enumerate(["陇南市", "武都区", "城关镇", "东江村党支部"]):
            full = f"{full}/{name}" if full else name
            org = Org(
                name=name,
                full_name=full,
                type=OrgType.VILLAGE if depth == 3 else OrgType.LEVEL,
                parent_id=parent,
                depth=depth,
            )
            s.add(org)
            await s.flush()
            path = f"{path}{org.id}/"
            org.path = path
            parent = org.id
            orgs.append(org)
        village, township = orgs[3], orgs[2]
        camp = Campaign(
            year=2027,
            name="2027",
            root_org_id=orgs[0].id,
            starts_on=date(2027, 1, 1),
            pledge_deadline=date(2027, 4, 30),
            ends_on=date(2027, 12, 31),
        )
        s.add(camp)
        await s.flush()

        async def person(n: int, org: Org, grants: list[Role], key: str) -> Member:
            m = Member(name=f"党员{n}", phone=f"139{n:08d}", org_id=org.id)
            s.add(m)
            await s.flush()
            for role in grants:
                s.add(RoleGrant(member_id=m.id, role=role, org_id=org.id))
            s.add(Account(platform="t", external_id=str(m.id), chat_id=str(m.id), member_id=m.id))
            roles[key].append(m.id)
            return m

        secretary = await person(0, village, [Role.MEMBER, Role.SECRETARY], "secretary")
        people = [secretary] + [
            await person(n, village, [Role.MEMBER], "member") for n in range(1, members)
        ]
        await person(members + 1, village, [Role.EVALUATOR], "evaluator")
        await person(members + 2, township, [Role.MEMBER, Role.REVIEWER], "reviewer")
        s.add(GroupLink(platform="t", chat_id="-1", org_id=village.id, linked_by=secretary.id))
        for owner in [*people, None]:
            pledge = Pledge(
                campaign_id=camp.id,
                owner_kind=OwnerKind.MEMBER if owner else OwnerKind.ORG,
                org_id=village.id,
                owner_member_id=owner.id if owner else None,
                drafted_by=(owner or secretary).id,
                status=PledgeStatus.PUBLISHED,
                published_at=at(2, 1),
            )
            s.add(pledge)
            await s.flush()
            s.add(PledgeItem(pledge_id=pledge.id, content="x", deadline=date(2027, 12, 31)))
    return roles


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=60, help="members of the branch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        roles = await build(store, max(3, args.members))
        jobs = Jobs(store, CODEC, documents=Reports())
        t0 = time.perf_counter()
        await jobs.tick(at(4, 1))
        t_open = time.perf_counter() - t0
        async with store.read() as s:
            rows = (
                await s.exec(
                    select(Rating.id, Rating.rater_id, Rating.side, Evaluation.member_id).join(
                        Evaluation, col(Evaluation.id) == Rating.evaluation_id
                    )
                )
            ).all()
        silent = set(roles["member"][::10])
        fair = set(roles["member"][1::5])
        t0 = time.perf_counter()
        for rating_id, rater, side, subject in rows:
            if rater in silent:
                continue
            grade = Grade.FAIR if side is Side.ORG and subject in fair else Grade.GOOD
            async with store.write() as s:
                actor = await load_actor(s, rater)
                await evaluate.rate(s, actor, rating_id, grade, codec=CODEC)
        t_rate = (time.perf_counter() - t0) / max(1, len(rows))
        await jobs.tick(at(4, 8))
        t0 = time.perf_counter()
        await jobs.tick(at(4, 15))
        t_close = time.perf_counter() - t0
        follow = Counter()
        async with store.write() as s:
            flagged = (
                await s.exec(select(Evaluation.id).where(Evaluation.grade == Grade.FAIR))
            ).all()
            secretary = await load_actor(s, roles["secretary"][0])
            for ev_id in flagged:
                await evaluate.record_follow_up(s, secretary, ev_id, FollowUp.TALK)
                follow[secretary.member_id] += 1
        async with store.read() as s:
            sent = Counter(
                await s.exec(select(Outbox.chat_id).where(col(Outbox.dedup_key).like("eval:%")))
            )
            graded = (
                await s.exec(select(Evaluation.id).where(col(Evaluation.grade).is_not(None)))
            ).all()
            group = (
                await s.exec(
                    select(Outbox.payload).where(
                        Outbox.chat_id == "-1", col(Outbox.dedup_key).like("eval:%")
                    )
                )
            ).all()
        asked = Counter(r for _, r, _, _ in rows)
        await store.dispose()

    def figures(key: str) -> dict:
        ids = roles[key]
        msgs = [sent[str(i)] for i in ids]
        taps = [asked[i] + max(0, asked[i] - 1) // PAGE + follow[i] for i in ids]
        return {
            "messages_max": max(msgs),
            "messages_mean": round(sum(msgs) / len(msgs), 2),
            "taps_max": max(taps),
            "taps_mean": round(sum(taps) / len(taps), 2),
        }

    charts = sum(1 for p in group if (p.get("attachment") or {}).get("kind") == "photo")
    out = {
        "members": args.members,
        "graded": len(graded),
        "ratings": len(rows),
        "follow_ups": len(flagged),
        "group_messages": len(group),
        "group_charts": charts,
    }
    for key in ("member", "secretary", "evaluator", "reviewer"):
        f = figures(key)
        print(
            f"{key:10} messages/quarter max {f['messages_max']:3} mean {f['messages_mean']:6}"
            f"   taps/quarter max {f['taps_max']:3} mean {f['taps_mean']:6}"
        )
        out.update({f"{key}_{k}": v for k, v in f.items()})
    print(
        f"the group: {len(group)} result post(s) this quarter ({charts} with the grade chart); "
        f"follow-ups recorded by the secretary: {len(flagged)}"
    )
    print(
        f"open {t_open * 1000:.0f} ms, one rating {t_rate * 1000:.1f} ms, close "
        f"{t_close * 1000:.0f} ms; graded {len(graded)} of {args.members + 1} subjects"
    )
    out.update(
        open_ms=round(t_open * 1000),
        rate_ms=round(t_rate * 1000, 1),
        close_ms=round(t_close * 1000),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
