"""Attachment 5: the monthly report form (月报表) of a unit, as .xlsx.

The figures are the roll-up the bot shows in /summary (``campaign.rollup.monthly_rollup``),
never computed a second way. A branch's report is one row; a level's lists each unit directly
below it as a row with a total, and adds one sheet per unit below that has units of its own
(one more level down), so a city clerk sees the counties and, sheet by sheet, their townships.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import rollup
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


def _figures_row(figures: dict) -> list:
    items = figures["items"]
    return [figures[k] for k in COLUMNS] + [Percent(figures["done"] / items) if items else None]


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
    head += [t("doc.col.rate"), t("doc.col.submitted"), t("doc.col.remarks")]
    widths = [6, 24, 9, 8, 9, 8, 8, 7, 8, 8, 9, 24]
    remarks = await _remarks(session, campaign.id, level, month)
    book = Book(landscape=True)
    summary = await rollup.monthly_rollup(session, campaign.id, level.id, month, today)
    children = (
        await session.exec(select(Org).where(Org.parent_id == level.id).order_by(col(Org.id)))
    ).all()
    await _sheet(book, t, campaign, level, month, summary, children, remarks, head, widths, now)
    for child in children:
        has_units = (
            await session.exec(select(Org.id).where(Org.parent_id == child.id).limit(1))
        ).first()
        if not has_units:
            continue
        part = await rollup.monthly_rollup(session, campaign.id, child.id, month, today)
        if not part["figures"]["items"]:
            continue
        below = (
            await session.exec(select(Org).where(Org.parent_id == child.id).order_by(col(Org.id)))
        ).all()
        await _sheet(book, t, campaign, child, month, part, below, remarks, head, widths, now)
    return book.close(), summary


async def _sheet(book, t, campaign, level, month, summary, children, remarks, head, widths, now):
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
                *_figures_row(summary["figures"]),
                f"{summary['submitted']}/{summary['expected']}",
                remark,
            ]
        )
    for n, part in enumerate(parts, 1):
        child = names.get(part["org"])
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
                *_figures_row(part["figures"]),
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
                *_figures_row(summary["figures"]),
                f"{summary['submitted']}/{summary['expected']}",
                t("doc.remark_missing", n=missing) if missing else "",
            ],
            bold=True,
        )
    sheet.note(t("doc.generated", at=local_stamp(campaign, now)))
