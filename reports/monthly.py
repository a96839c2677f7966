"""Attachment 5: the monthly report form (月报表) of a unit, as .xlsx.

The figures are the roll-up the bot shows in /summary (``campaign.rollup.monthly_rollup``),
never computed a second way, read once for the level and every sheet below it; beside them
the look-back figures (回头看: consolidated, rectifying after look-back, still to decide) of
``campaign.supervise.lookback_figures``, the counts of the ledger's look-back column. A
branch's report is one row; a level's lists each unit directly below it as a row with a total,
and adds one sheet per unit below that has units of its own (one more level down), so a city
clerk sees the counties and, sheet by sheet, their townships.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import rollup, supervise
from models.campaign import Campaign
from models.org import Org
from models.progress import OrgReport
from reports.common import Labels, local_stamp
from reports.sheet import Book, Percent

COLUMNS = (
    "items",
    "done",
    "done_month",
    "on_track",
    "blocked",
    "overdue",
    "unreported",
)


def _figures_row(figures: dict, looked: dict) -> list:
    items = figures["items"]
    rate = Percent(figures["done"] / items) if items else None
    return [figures[k] for k in COLUMNS] + [rate] + [looked[k] for k in LOOKBACK]


#: the look-back figures (回头看): consolidated, rectifying after look-back, still to decide
LOOKBACK = supervise.LOOKBACK_FIGURES


def _looked(figures: dict[str, dict], path: str, *, own: bool = False) -> dict:
    """Add up the look-back figures of the organizations at ``path`` (and below, unless own)."""
    out = dict.fromkeys(LOOKBACK, 0)
    for org_path, counts in figures.items():
        if org_path == path or (not own and org_path.startswith(path)):
            for k in LOOKBACK:
                out[k] += counts[k]
    return out


async def _remarks(session: AsyncSession, campaign_id: int, level: Org, month: str) -> dict:
    rows = await session.exec(
        select(OrgReport.org_id, OrgReport.remarks)
        .join(Org, col(Org.id) == OrgReport.org_id)
        .where(
            OrgReport.campaign_id == campaign_id,
            OrgReport.month == month,
            col(Org.path).startswith(level.path),
        )
    )
    return dict(rows.all())


async def monthly_xlsx(
    session: AsyncSession,
    campaign: Campaign,
    level: Org,
    month: str,
    *,
    today: date,
    now: datetime,
    locale: str,
) -> tuple[bytes, dict]:
    """Write attachment 5 of a unit for a month; return the file and the level's summary."""
    t = Labels(locale)
    head = [t("doc.col.n"), t("doc.col.unit")]
    head += [t(f"doc.col.{k}") for k in COLUMNS]
    head += [t("doc.col.rate")] + [t(f"doc.col.{k}") for k in LOOKBACK]
    head += [t("doc.col.submitted"), t("doc.col.remarks")]
    widths = [6, 24, 9, 8, 9, 8, 8, 7, 8, 8, 9, 9, 9, 9, 24]
    remarks = await _remarks(session, campaign.id, level, month)
    looked = await supervise.lookback_figures(session, campaign.id, level.path, today)
    book = Book(landscape=True)
    children = (
        await session.exec(select(Org).where(Org.parent_id == level.id).order_by(col(Org.id)))
    ).all()
    grand = (
        await session.exec(
            select(Org)
            .where(col(Org.parent_id).in_([c.id for c in children]))
            .order_by(col(Org.id))
        )
    ).all()
    # the level and every unit below it with units of its own: one reading of the subtree
    summary, parts = await rollup.monthly_rollup_below(
        session, campaign.id, level, list(children), month, today
    )
    out = (book, t, campaign, month, remarks, looked, head, widths, now)
    await _sheet(*out, level, summary, children)
    for child in children:
        below = [o for o in grand if o.parent_id == child.id]
        if not below or not parts[child.id]["figures"]["items"]:
            continue
        await _sheet(*out, child, parts[child.id], below)
    return book.close(), summary


async def _sheet(
    book, t, campaign, month, remarks, looked, head, widths, now, level, summary, children
):
    sheet = book.sheet(level.name, widths)
    sheet.title(
        t.form(5),
        t(
            "doc.subtitle",
            org=level.full_name,
            campaign=campaign.name,
            period_label=t("doc.period_month"),
            period=month,
        ),
    )
    sheet.header(head)
    names = {c.name: c for c in children}
    parts = summary["children"]
    if not parts:
        # a branch (or a level without units below): its own figures are its report
        remark = remarks.get(level.id)
        if remark is None:
            remark = t("doc.remark_unconfirmed") if summary["figures"]["items"] else ""
        sheet.write(
            [
                1,
                level.name,
                *_figures_row(summary["figures"], _looked(looked, level.path, own=True)),
                f"{summary['submitted']}/{summary['expected']}",
                remark,
            ]
        )
    for n, part in enumerate(parts, 1):
        child = names.get(part["org"])
        if part.get("own"):
            lb = _looked(looked, level.path, own=True)
        else:
            lb = _looked(looked, child.path) if child is not None else dict.fromkeys(LOOKBACK, 0)
        missing = part["expected"] - part["submitted"]
        if child is not None and child.id in remarks:
            remark = remarks[child.id]
        elif missing:
            remark = t("doc.remark_missing", n=missing)
        else:
            remark = ""
        sheet.write(
            [
                n,
                t("doc.own_level", org=part["org"]) if part.get("own") else part["org"],
                *_figures_row(part["figures"], lb),
                f"{part['submitted']}/{part['expected']}",
                remark,
            ]
        )
    if parts:
        missing = summary["expected"] - summary["submitted"]
        sheet.write(
            [
                "",
                t("doc.total"),
                *_figures_row(summary["figures"], _looked(looked, level.path)),
                f"{summary['submitted']}/{summary['expected']}",
                t("doc.remark_missing", n=missing) if missing else "",
            ],
            bold=True,
        )
    sheet.note(t("doc.generated", at=local_stamp(campaign, now)))
