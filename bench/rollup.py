"""Benchmark: the roll-up up the tree on the demo data, next to one raw SQL aggregation.

Builds a store with the Longnan demo roster (``--members``, default 100000). Most members have
a pledge of two items (about 85 % published, the rest drafting, awaiting review or returned,
a few not started), most branches an organization pledge; about three in four published items
are reported for the month (some done, some blocked) and most branches' reports confirmed.
Then it times, at the city and at one county, the two roll-ups as the bot computes them
(``campaign.rollup``): the monthly one (item figures, every unit and member counted, units
missing and idle named, per-child breakdown) beside one raw SQL aggregation of the same item
figures, and the pledging one (every unit's and member's pledging phase, per child, units
behind named) beside one raw SQL aggregation of the members' phases. Prints the figures and
ends with one line of JSON.

    .venv/bin/python bench/rollup.py --members 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import insert, text
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaign import rollup
from campaign.db import Store
from campaign.demo_data import CITY, COUNTY, load_demo
from campaign.setup import open_campaign
from models import Campaign, Member, Org, OrgReport, Pledge, PledgeItem, ProgressReport
from models.base import utcnow

MONTH = "2027-05"
TODAY = date(2027, 5, 28)
PLEDGING_DAY = date(2027, 4, 20)
PHASE_RAW = """
SELECT p.status, count(m.id)
FROM member m
JOIN org o ON o.id = m.org_id
LEFT JOIN pledge p ON p.owner_member_id = m.id AND p.campaign_id = :campaign
     AND p.owner_kind = 'member'
WHERE m.active AND o.path LIKE :path
  AND EXISTS (SELECT 1 FROM rolegrant g WHERE g.member_id = m.id AND g.role = 'member')
GROUP BY p.status
"""
RAW = """
SELECT count(i.id),
       sum(CASE WHEN i.done_on IS NOT NULL THEN 1 ELSE 0 END),
       sum(CASE WHEN i.done_on >= :first AND i.done_on <= :last THEN 1 ELSE 0 END),
       sum(CASE WHEN r.status = 'on_track' THEN 1 ELSE 0 END),
       sum(CASE WHEN r.status = 'blocked' AND i.done_on IS NULL THEN 1 ELSE 0 END),
       sum(CASE WHEN i.done_on IS NULL AND i.deadline < :today THEN 1 ELSE 0 END),
       sum(CASE WHEN i.done_on IS NULL AND r.id IS NULL THEN 1 ELSE 0 END)
FROM pledgeitem i
JOIN pledge p ON p.id = i.pledge_id
JOIN org o ON o.id = p.org_id
LEFT JOIN progressreport r ON r.item_id = i.id AND r.month = :month
WHERE p.campaign_id = :campaign AND p.status = 'published' AND o.path LIKE :path
"""


async def build(store: Store, members: int) -> int:
    await store.migrate()
    await load_demo(store, members)
    async with store.write() as s:
        camp = await open_campaign(s, CITY, 2027, starts_on=date(2027, 1, 1))
        people = (await s.exec(select(Member.id, Member.org_id))).all()
    rng = random.Random(7)
    now = utcnow()
    pledges, items, reports = [], [], []
    for n, (member_id, org_id) in enumerate(people, 1):
        phase = rng.random()
        if phase < 0.05:
            continue  # not started
        status = "published"
        for limit, name in ((0.10, "draft"), (0.13, "submitted"), (0.15, "returned")):
            if phase < limit:
                status = name
                break
        pledges.append(
            {
                "id": n,
                "campaign_id": camp.id,
                "owner_kind": "member",
                "org_id": org_id,
                "owner_member_id": member_id,
                "drafted_by": member_id,
                "status": status,
                "version": 1,
                "post": "",
                "published_at": now if status == "published" else None,
            }
        )
        for k in range(2):
            item_id = 2 * n - 1 + k
            roll = rng.random()
            done = date(2027, 5, rng.randint(1, 27)) if roll < 0.1 else None
            deadline = date(2027, rng.choice([4, 9, 12]), 28)
            items.append(
                {
                    "id": item_id,
                    "pledge_id": n,
                    "seq": k,
                    "content": "帮助困难群众发展产业",
                    "goal": "年底前增收",
                    "measures": "开展技术培训",
                    "deadline": deadline,
                    "basic": False,
                    "opinion_ids": [],
                    "done_on": done,
                }
            )
            if roll < 0.75 and status == "published":
                status = "done" if done else ("blocked" if roll > 0.7 else "on_track")
                reports.append(
                    {
                        "item_id": item_id,
                        "pledge_id": n,
                        "month": MONTH,
                        "status": status,
                        "note": "",
                        "photos": [],
                        "reported_by": member_id,
                        "reported_at": now,
                    }
                )
    async with store.write() as s:
        for table, rows in ((Pledge, pledges), (PledgeItem, items), (ProgressReport, reports)):
            for i in range(0, len(rows), 5000):
                await s.exec(insert(table), params=rows[i : i + 5000])
        branches = sorted({org for _, org in people})
        first_org = len(people) + 1
        org_pledges = [
            {
                "id": first_org + k,
                "campaign_id": camp.id,
                "owner_kind": "org",
                "org_id": org,
                "owner_member_id": None,
                "drafted_by": people[0][0],
                "status": "published" if rng.random() < 0.8 else "draft",
                "version": 1,
                "post": "",
                "published_at": now,
            }
            for k, org in enumerate(branches)
        ]
        await s.exec(insert(Pledge), params=org_pledges)
        confirmed = [
            {
                "campaign_id": camp.id,
                "org_id": org,
                "month": MONTH,
                "figures": {},
                "remarks": "",
                "confirmed_by": people[0][0],
                "confirmed_at": now,
            }
            for org in branches
            if rng.random() < 0.8
        ]
        await s.exec(insert(OrgReport), params=confirmed)
    return camp.id


async def timed(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = await fn()
        best = min(best, time.perf_counter() - start)
    return best, result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temp SQLite file)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    store = Store(args.db or f"sqlite:///{tmp}/rollup.db")
    t0 = time.perf_counter()
    camp = await build(store, args.members)
    build_s = time.perf_counter() - t0
    async with store.read() as s:
        city = (await s.exec(select(Org).where(Org.full_name == CITY))).one()
        county = (await s.exec(select(Org).where(Org.full_name == COUNTY))).one()
        n_items = (await s.exec(text("SELECT count(*) FROM pledgeitem"))).one()[0]
    out = {"members": args.members, "items": n_items, "build_s": round(build_s, 2)}
    for label, org in (("city", city), ("county", county)):

        async def ours(org=org):
            async with store.read() as s:
                return await rollup.monthly_rollup(s, camp, org.id, MONTH, TODAY)

        async def raw(org=org):
            async with store.read() as s:
                row = (
                    await s.exec(
                        text(RAW).bindparams(
                            first=date(2027, 5, 1),
                            last=date(2027, 5, 31),
                            today=TODAY,
                            month=MONTH,
                            campaign=camp,
                            path=f"{org.path}%",
                        )
                    )
                ).one()
                return [int(x or 0) for x in row]

        t_ours, summary = await timed(ours, args.repeat)
        t_raw, figures = await timed(raw, args.repeat)
        f = summary["figures"]
        same = [
            f["items"],
            f["done"],
            f["done_month"],
            f["on_track"],
            f["blocked"],
            f["overdue"],
            f["unreported"],
        ] == figures
        print(
            f"{label:6} summary {t_ours * 1000:8.1f} ms   raw SQL figures {t_raw * 1000:8.1f} ms"
            f"   ratio {t_ours / t_raw:5.1f}x   items {f['items']}  units {summary['submitted']}"
            f"/{summary['expected']} submitted, {summary['idle']['count']} idle"
            f"  members {summary['members']['total']}  children {len(summary['children'])}"
            f"  figures equal: {same}"
        )
        out[f"{label}_ms"] = round(t_ours * 1000, 1)
        out[f"{label}_raw_ms"] = round(t_raw * 1000, 1)
        out[f"{label}_ratio"] = round(t_ours / t_raw, 2)
        out[f"{label}_figures_equal"] = same

        async def pledging(org=org):
            async with store.read() as s:
                campaign = await s.get(Campaign, camp)
                return await rollup.pledging_rollup(s, campaign, org.id, PLEDGING_DAY)

        async def phase_raw(org=org):
            async with store.read() as s:
                rows = await s.exec(text(PHASE_RAW).bindparams(campaign=camp, path=f"{org.path}%"))
                counts = dict.fromkeys(rollup.PHASES, 0)
                for status, n in rows.all():
                    counts[rollup.phase_of(status)] += n
                return counts

        t_phase, phases = await timed(pledging, args.repeat)
        t_phase_raw, raw_phases = await timed(phase_raw, args.repeat)
        same = phases["members"] == raw_phases
        print(
            f"{label:6} pledging {t_phase * 1000:7.1f} ms   raw SQL phases "
            f" {t_phase_raw * 1000:8.1f} ms   ratio {t_phase / t_phase_raw:5.1f}x"
            f"   units {phases['units']}"
            f"  members {phases['member_total']}  behind {phases['behind']['count']}"
            f"  phases equal: {same}"
        )
        out[f"{label}_pledging_ms"] = round(t_phase * 1000, 1)
        out[f"{label}_pledging_raw_ms"] = round(t_phase_raw * 1000, 1)
        out[f"{label}_pledging_ratio"] = round(t_phase / t_phase_raw, 2)
        out[f"{label}_phases_equal"] = same
    await store.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
