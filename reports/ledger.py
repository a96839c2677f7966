"""Attachments 3 and 4: the ledgers (台账) of organization and member pledge items, as .xlsx.

One row per item: registered date, a column per month of the campaign with the state reported
that month, the date it was crossed off, its status, its look-back (回头看) and remarks. A
branch gets one sheet; a level gets one sheet per unit directly below it (named after the
unit), so a county clerk can print one township at a time. Rows stream from
``campaign.supervise.ledger_rows`` (the reader /ledger uses too) into a streaming workbook: a
city-wide ledger never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import supervise
from campaign.fulfil import month_of
from models.campaign import Campaign
from models.org import Org
from models.pledge import OwnerKind
from reports.common import Labels, campaign_months, local_stamp
from reports.sheet import Book

KIND_OF_FORM = {3: OwnerKind.ORG, 4: OwnerKind.MEMBER}


def _group_of(level: Org, org: Org) -> str:
    """Return the path of the unit directly below ``level`` that ``org`` belongs to."""
    if org.path == level.path:
        return level.path
    rest = org.path[len(level.path) :].strip("/").split("/")
    return f"{level.path}{rest[0]}/"


def _relative(level: Org, org: Org) -> str:
    if org.id == level.id:
        return org.name
    return org.full_name[len(level.full_name) :].lstrip("/") or org.name


async def ledger_xlsx(
    session: AsyncSession,
    campaign: Campaign,
    level: Org,
    form: int,
    *,
    today: date,
    now: datetime,
    locale: str,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[bytes, int]:
    """Write attachment 3 or 4 of a subtree; return the file and its number of item rows.

    ``progress`` is called with (organizations done, organizations in all) as rows stream.
    """
    kind = KIND_OF_FORM[form]
    t = Labels(locale)
    months = campaign_months(campaign)
    this_month = month_of(today)
    orgs = await supervise.ledger_orgs(session, campaign.id, level.path, kind)
    member = kind is OwnerKind.MEMBER
    head = [t("doc.col.n"), t("doc.col.org")]
    widths = [6, 18]
    if member:
        head += [t("doc.col.owner"), t("doc.col.post")]
        widths += [10, 12]
    head += [t("doc.col.content"), t("doc.col.deadline"), t("doc.col.registered")]
    widths += [40, 11, 11]
    head += [
        t.month(m) if m[:4] == str(campaign.year) else t("doc.month_year", y=m[:4], m=int(m[5:]))
        for m in months
    ]
    widths += [7] * len(months)
    head += [t("doc.col.crossed"), t("doc.col.state"), t("doc.col.lookback"), t("doc.col.remarks")]
    widths += [11, 8, 10, 24]
    progress_label = {k: t(f"doc.progress.{k}") for k in ("on_track", "done", "blocked")}
    missing = t("doc.progress.missing")
    states = {k: t(f"doc.state.{k}") for k in supervise.LEDGER_STATES}
    looked = {k: t(f"doc.lookback.{k}") for k in supervise.LOOKBACK_STATES}
    looked[""] = None
    column = {m: i for i, m in enumerate(months)}
    bases: dict[tuple, list] = {}
    subtitle = t(
        "doc.subtitle",
        org=level.full_name,
        campaign=campaign.name,
        period_label=t("doc.period_asof"),
        period=today.isoformat(),
    )
    groups = {_group_of(level, o) for o in orgs}
    by_path = {o.path: o for o in orgs}
    book = Book(landscape=True)
    sheet = None
    current_group = None
    rows = n = done_orgs = 0
    last_org = None
    org_by_id = {o.id: o for o in orgs}
    where: dict[int, tuple[str, str]] = {}
    async for row in supervise.ledger_rows(
        session, campaign.id, level.path, today, kind=kind, orgs=orgs
    ):
        org = org_by_id[row.org_id]
        placed = where.get(org.id)
        if placed is None:
            placed = where[org.id] = (_group_of(level, org), _relative(level, org))
        group, relative = placed
        if sheet is None or group != current_group:
            if sheet is not None:
                sheet.note(t("doc.generated", at=local_stamp(campaign, now)))
            current_group = group
            name = t("doc.sheet_ledger")
            if len(groups) > 1 or group != level.path:
                unit = by_path.get(group)
                name = unit.name if unit else await _name_of(session, group, name)
            sheet = book.sheet(name, widths)
            sheet.title(t.form(form), subtitle)
            sheet.header(head)
            n = 0
        if org.id != last_org:
            last_org = org.id
            done_orgs += 1
            if progress is not None:
                progress(done_orgs, len(orgs))
        n += 1
        rows += 1
        # the months not reported: 未报 while it was owed, blank before and after (by its days)
        days = (row.registered, row.done_on)
        blank = bases.get(days)
        if blank is None:
            first = month_of(row.registered) if row.registered else None
            crossed = month_of(row.done_on) if row.done_on else None
            blank = bases[days] = [
                missing
                if first and first <= m <= this_month and (crossed is None or m <= crossed)
                else None
                for m in months
            ]
        cells = blank.copy()
        for m, state in row.months.items():
            at = column.get(m)
            if at is not None:
                cells[at] = progress_label.get(state, state)
        remarks = row.note
        if row.rect_deadline is not None:
            rect = t("doc.remark_rect", deadline=row.rect_deadline.isoformat())
            remarks = t("doc.remark_join", a=rect, b=remarks) if remarks else rect
        values: list = [n, relative]
        if member:
            values += [row.owner, row.post]
        values += [row.content, row.deadline, row.registered, *cells]
        values += [row.done_on, states[row.state], looked[row.lookback], remarks]
        sheet.write(values)
    if sheet is None:
        sheet = book.sheet(t("doc.sheet_ledger"), widths)
        sheet.title(t.form(form), subtitle)
        sheet.header(head)
    sheet.note(t("doc.generated", at=local_stamp(campaign, now)))
    return book.close(), rows


async def _name_of(session: AsyncSession, path: str, default: str) -> str:
    org_id = int(path.strip("/").split("/")[-1])
    org = await session.get(Org, org_id)
    return org.name if org else default
