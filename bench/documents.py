"""Benchmark: the attachments and charts of a whole city, beside a plain CSV dump of the rows.

Builds a store with the Longnan demo roster (``--members``, default 100000), gives every member
a published pledge of two items and every branch its own pledge of two, and writes twelve
months of reports in bulk (some done, some with difficulty, some months not reported). Then, in
a fresh process (so the peak memory is the documents' own), it times:

* the city-wide attachment 4 (every member item, a sheet per county) and its peak RSS;
* the city-wide attachment 3, and attachment 5 for the city;
* each chart of the city (fulfilment by unit, the monthly trend, pledging by unit);

each beside the floor: the same rows read with one raw SQL query and written with the csv
module, and each with its CPU time (the process's, SQLite's thread included: on a shared machine
the wall time counts the neighbours too). Done items carry look-back rows (mostly consolidated),
so the ledgers' look-back column and attachment 5's look-back figures have something to read.
Prints the figures and ends with one line of JSON.

    .venv/bin/python bench/documents.py --members 20000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import insert, text
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaign.db import Store
from campaign.demo_data import CITY, load_demo
from campaign.setup import open_campaign
from models import Member, Org, OrgReport, OrgType, Pledge, PledgeItem, ProgressReport
from models.lookback import LookBack

YEAR = 2027
TODAY = date(YEAR, 12, 28)
MONTH = f"{YEAR}-12"
NOW = datetime(YEAR, 12, 28, 2, 0, tzinfo=UTC)
CHUNK = 5000
MONTHS = [f"{YEAR}-{m:02d}" for m in range(1, 13)]

LEDGER_SQL = """
SELECT o.full_name, m.name, p.post, i.content, i.deadline, p.published_at, i.done_on, r.months
FROM pledgeitem i
JOIN pledge p ON p.id = i.pledge_id
JOIN org o ON o.id = p.org_id
LEFT JOIN member m ON m.id = p.owner_member_id
LEFT JOIN (SELECT item_id, {agg} AS months FROM progressreport GROUP BY item_id) r
  ON r.item_id = i.id
WHERE p.campaign_id = :campaign AND p.status = 'published' AND p.owner_kind = :kind
ORDER BY o.path, p.id, i.seq
"""
FIGURES_SQL = """
SELECT o.path,
       count(i.id),
       sum(CASE WHEN i.done_on IS NOT NULL THEN 1 ELSE 0 END),
       sum(CASE WHEN r.status = 'on_track' THEN 1 ELSE 0 END),
       sum(CASE WHEN r.status = 'blocked' AND i.done_on IS NULL THEN 1 ELSE 0 END),
       sum(CASE WHEN i.done_on IS NULL AND i.deadline < :today THEN 1 ELSE 0 END),
       sum(CASE WHEN i.done_on IS NULL AND r.id IS NULL THEN 1 ELSE 0 END)
FROM pledgeitem i
JOIN pledge p ON p.id = i.pledge_id
JOIN org o ON o.id = p.org_id
LEFT JOIN progressreport r ON r.item_id = i.id AND r.month = :month
WHERE p.campaign_id = :campaign AND p.status = 'published'
GROUP BY o.path
"""


async def build(store: Store, members: int) -> int:
    """Load the roster and write the pledges and twelve months of reports in bulk."""
    await store.migrate()
    await load_demo(store, members)
    async with store.write() as s:
        camp = await open_campaign(s, CITY, YEAR, starts_on=date(YEAR, 1, 1))
        people = (await s.exec(select(Member.id, Member.org_id))).all()
        branches = (await s.exec(select(Org.id).where(Org.type != OrgType.LEVEL))).all()
    rng = random.Random(7)
    published = datetime(YEAR, 1, 20, 2, 0, tzinfo=UTC)
    owners = [("member", m, o) for m, o in people] + [("org", None, o) for o in branches]
    pledge_id = item_id = 0
    # what each branch's secretary confirmed month by month (the figures of its monthly report)
    confirmed_figures: dict[tuple[int, str], dict[str, int]] = {}
    for start in range(0, len(owners), CHUNK):
        pledges, items, reports, looks = [], [], [], []
        for kind, member, org in owners[start : start + CHUNK]:
            pledge_id += 1
            pledges.append(
                {
                    "id": pledge_id,
                    "campaign_id": camp.id,
                    "owner_kind": kind,
                    "org_id": org,
                    "owner_member_id": member,
                    "drafted_by": member or people[0][0],
                    "status": "published",
                    "version": 1,
                    "post": "村文书" if member else "",
                    "published_at": published,
                }
            )
            for k in range(2):
                item_id += 1
                done_month = rng.randint(2, 14)  # 13, 14: not done this year
                done = date(YEAR, done_month, 15) if done_month <= 12 else None
                items.append(
                    {
                        "id": item_id,
                        "pledge_id": pledge_id,
                        "seq": k,
                        "content": "帮助本组困难群众发展花椒种植，联系农技站来村培训",
                        "goal": "年底前户均增收2000元",
                        "measures": "每月走访一次",
                        "deadline": date(YEAR, rng.choice([6, 9, 12]), 28),
                        "basic": False,
                        "opinion_ids": [],
                        "done_on": done,
                    }
                )
                if done and done < date(YEAR, 11, 1):  # looked back on: mostly decided
                    looks.append(
                        {
                            "campaign_id": camp.id,
                            "item_id": item_id,
                            "pledge_id": pledge_id,
                            "org_id": org,
                            "started_on": done,
                            "state": rng.choice(["consolidated"] * 8 + ["rectify", "open"]),
                            "mechanism": "",
                            "cause": "",
                            "owner_note": "",
                            "created_at": published,
                        }
                    )
                for n, month in enumerate(MONTHS, 1):
                    if done and n > done.month:
                        break
                    if rng.random() < 0.12:
                        continue  # not reported that month
                    status = (
                        "done"
                        if done and n == done.month
                        else ("blocked" if rng.random() < 0.05 else "on_track")
                    )
                    reports.append(
                        {
                            "item_id": item_id,
                            "pledge_id": pledge_id,
                            "month": month,
                            "status": status,
                            "note": "资金未到位" if status == "blocked" else "",
                            "photos": [],
                            "reported_by": member or people[0][0],
                            "reported_at": published,
                        }
                    )
        async with store.write() as s:
            for table, rows in (
                (Pledge, pledges),
                (PledgeItem, items),
                (ProgressReport, reports),
                (LookBack, looks),
            ):
                for i in range(0, len(rows), CHUNK):
                    await s.exec(insert(table), params=rows[i : i + CHUNK])
    async with store.write() as s:
        confirmed = [
            {
                "campaign_id": camp.id,
                "org_id": org,
                "month": month,
                "figures": confirmed_figures.get((org, month), {}),
                "remarks": "",
                "confirmed_by": people[0][0],
                "confirmed_at": published,
            }
            for org in branches
            for month in MONTHS
            if rng.random() < 0.85
        ]
        for i in range(0, len(confirmed), CHUNK):
            await s.exec(insert(OrgReport), params=confirmed[i : i + CHUNK])
    if not store.is_sqlite:
        async with store.write() as s:
            # PostgreSQL's statistics after a bulk load, as autovacuum would leave them
            await s.exec(text("ANALYZE"))
    return camp.id


def _csv(rows) -> int:
    out = io.StringIO()
    writer = csv.writer(out)
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n


async def measure(url: str) -> dict:
    """Time each document in this process (attachment 4 first, for its peak memory)."""
    from models.campaign import Campaign
    from reports import charts, export
    from reports.common import Labels

    charts.register_font()
    store = Store(url)
    out: dict = {}
    async with store.read() as s:
        camp = (await s.exec(select(Campaign))).one()
        city = (await s.exec(select(Org).where(Org.full_name == CITY))).one()
        dialect = s.bind.dialect.name
    agg = (
        "string_agg(month || ':' || status, ',')"
        if dialect == "postgresql"
        else ("group_concat(month || ':' || status, ',')")
    )

    async def floor_ledger(kind: str) -> tuple[float, int]:
        start = time.perf_counter()
        async with store.read() as s:
            result = await s.exec(
                text(LEDGER_SQL.format(agg=agg)).bindparams(campaign=camp.id, kind=kind)
            )
            n = _csv(result.all())
        return time.perf_counter() - start, n

    async def floor_figures() -> float:
        start = time.perf_counter()
        async with store.read() as s:
            result = await s.exec(
                text(FIGURES_SQL).bindparams(campaign=camp.id, today=TODAY, month=MONTH)
            )
            _csv(result.all())
        return time.perf_counter() - start

    for form in (4, 3, 5):
        start, cpu = time.perf_counter(), time.process_time()
        async with store.read() as s:
            made = await export.build(
                s, camp, city, form, today=TODAY, now=NOW, locale="zh_CN", month=MONTH
            )
        took = time.perf_counter() - start
        out[f"att{form}_cpu_s"] = round(time.process_time() - cpu, 2)
        if form == 4:
            out["att4_peak_rss_mb"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            )
        if form in (3, 4):
            floor, rows = await floor_ledger("member" if form == 4 else "org")
        else:
            floor, rows = await floor_figures(), made.rows
        out[f"att{form}_s"] = round(took, 2)
        out[f"att{form}_csv_s"] = round(floor, 2)
        out[f"att{form}_ratio"] = round(took / floor, 1)
        out[f"att{form}_rows"] = made.rows
        out[f"att{form}_mb"] = round(len(made.data) / 1e6, 1)
        print(
            f"attachment {form}: {took:6.2f} s (CPU {out[f'att{form}_cpu_s']:5.2f} s)"
            f"  ({made.rows} rows, {len(made.data) / 1e6:.1f} MB)"
            f"   CSV floor {floor:6.2f} s ({rows} rows)   ratio {took / floor:5.1f}x",
            flush=True,
        )
    t = Labels("zh_CN")
    for key in ("fulfilment", "trend", "pledging"):
        start, cpu = time.perf_counter(), time.process_time()
        async with store.read() as s:
            [chart] = await charts.charts_of_level(
                s, camp, city, today=TODAY, locale="zh_CN", which=(key,)
            )
        took = time.perf_counter() - start
        out[f"chart_{key}_cpu_s"] = round(time.process_time() - cpu, 2)
        floor = await floor_figures()
        out[f"chart_{key}_s"] = round(took, 2)
        out[f"chart_{key}_csv_s"] = round(floor, 2)
        out[f"chart_{key}_ratio"] = round(took / floor, 1)
        print(
            f"chart {t(f'doc.chart.{key}')}: {took:6.2f} s"
            f" (CPU {out[f'chart_{key}_cpu_s']:5.2f} s, {len(chart.png) // 1024} KB)"
            f"   CSV floor {floor:6.2f} s   ratio {took / floor:5.1f}x",
            flush=True,
        )
    print(f"attachment 4 peak RSS {out['att4_peak_rss_mb']} MB", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f} (wall times count other work)")
    out["loadavg"] = round(os.getloadavg()[0], 1)
    await store.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temp SQLite file)")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print("RESULT " + json.dumps(asyncio.run(measure(args.measure))), flush=True)
        return
    url = args.db or f"sqlite:///{tempfile.mkdtemp()}/documents.db"
    store = Store(url)
    start = time.perf_counter()

    async def setup() -> None:
        try:
            await build(store, args.members)
        finally:
            await store.dispose()

    asyncio.run(setup())
    build_s = time.perf_counter() - start
    print(f"built {args.members} members, 12 months of reports in {build_s:.0f} s", flush=True)
    child = subprocess.run(
        [sys.executable, __file__, "--measure", url], capture_output=True, text=True, check=True
    )
    result = {}
    for line in child.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
        else:
            print(line)
    print(json.dumps({"members": args.members, "build_s": round(build_s, 1), **result}))


if __name__ == "__main__":
    main()
