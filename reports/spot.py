"""The spot check (抽查) and the self-check (自查) as a table and as a short message."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import spotcheck
from models.campaign import Campaign
from models.org import Org
from reports.common import Labels, file_name, local_stamp
from reports.sheet import Book

#: organizations named in the message
WORST = 5


async def spotcheck_xlsx(
    session: AsyncSession,
    campaign: Campaign,
    level: Org,
    *,
    today: date,
    now: datetime,
    locale: str,
) -> tuple[str, bytes, dict]:
    """Check a subtree; return the file name, the .xlsx and the message's context."""
    t = Labels(locale)
    rows = await spotcheck.check(session, campaign, level, today)
    book = Book(landscape=True)
    head = [t("doc.col.n"), t("doc.col.org")]
    head += [t(f"doc.spot.{g}") for g in spotcheck.GAPS]
    head += [t("doc.spot.gaps"), t("doc.col.remarks")]
    widths = [6, 34, *[10] * len(spotcheck.GAPS), 8, 12]
    sheet = book.sheet(t("doc.sheet_spotcheck"), widths)
    sheet.title(
        t("doc.spot.title"),
        t(
            "doc.subtitle",
            org=level.full_name,
            campaign=campaign.name,
            period_label=t("doc.period_asof"),
            period=today.isoformat(),
        ),
    )
    sheet.header(head)
    for n, row in enumerate(rows, 1):
        relative = row.full_name[len(level.full_name) :].lstrip("/") or row.name
        counts = [row.counts.get(g) or None for g in spotcheck.GAPS]
        sheet.write(
            [n, relative, *counts, len(row.gaps), t("doc.spot.ok") if not row.gaps else ""]
        )
    sheet.note(t("doc.generated", at=local_stamp(campaign, now)))
    worst = [
        {"org": w.name, "gaps": [_gap_label(t, w, g) for g in w.gaps]}
        for w in spotcheck.worst(rows, WORST)
    ]
    counts = [
        {"label": t(f"doc.spot.{g}"), "n": n}
        for g in spotcheck.GAPS
        if (n := sum(1 for r in rows if r.counts.get(g)))
    ]
    context = {
        "org": level.name,
        "period": today.isoformat(),
        "total": len(rows),
        "complete": len([r for r in rows if not r.gaps]),
        "gaps": len([r for r in rows if r.gaps]),
        "worst": worst,
        "counts": counts,
    }
    name = file_name(t, "spotcheck", org=level.name, period=today.isoformat())
    return name, book.close(), context


def _gap_label(t: Labels, row: spotcheck.OrgGaps, gap: str) -> str:
    if gap == "reports_missing":
        months = t("doc.spot.missing_months", n=row.counts[gap])
        return t("doc.spot.with_months", label=t("doc.spot.reports_missing"), months=months)
    return t(f"doc.spot.{gap}")


async def selfcheck(
    session: AsyncSession, campaign: Campaign, org: Org, *, today: date, locale: str
) -> dict:
    """Return the self-check of one branch: its gaps, each with what to do next."""
    t = Labels(locale)
    rows = [r for r in await spotcheck.check(session, campaign, org, today) if r.org_id == org.id]
    gaps = rows[0].gaps if rows else list(spotcheck.GAPS[:1])
    return {
        "org": org.name,
        "period": today.isoformat(),
        "gaps": [
            {
                "label": _gap_label(t, rows[0], g) if rows else t(f"doc.spot.{g}"),
                "todo": t(f"selfcheck.todo.{g}"),
            }
            for g in gaps
        ],
    }
