"""Attachments 1, 2, 6 and 7 as Word documents (python-docx), ready to print on A4.

1 and 2 are the application forms (申报表): one form per pledge, in the version last
submitted, with the peers' opinions and the decision with its date once decided; several
pledges make one file with a form per page. 6 and 7 are the display tables (公示表) of the
published pledges, for the bulletin board: landscape, one table per organization, the header
row repeated on every page, and each item's state beside it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import cards, propose, supervise
from models.campaign import Campaign
from models.org import Member, Org, Role, RoleGrant
from models.pledge import OwnerKind, Pledge, PledgeSnapshot, PledgeStatus
from reports.common import Labels, local_stamp
from templates import catalog

FONT = "SimSun"
TITLE_FONT = "SimHei"
A4 = (Cm(21.0), Cm(29.7))


def _font(run, name: str = FONT, size: float | None = None, bold: bool = False) -> None:
    run.font.name = name
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), name)
    if size:
        run.font.size = Pt(size)
    run.bold = bold or None


def _new_document(*, landscape: bool) -> Document:
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(10.5)
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)
    section = doc.sections[0]
    width, height = A4
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = height, width
    else:
        section.page_width, section.page_height = width, height
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.8))
    section.top_margin = section.bottom_margin = Cm(1.6)
    return doc


def _para(doc, text: str, *, size=None, bold=False, center=False, font=FONT):
    p = doc.add_paragraph()
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _font(p.add_run(text), font, size, bold)
    return p


def _cell(cell, text: str, *, bold: bool = False, center: bool = False) -> None:
    cell.text = ""
    p = cell.paragraphs[0]
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    lines = (text or "").split("\n")
    for i, line in enumerate(lines):
        run = p.add_run(line)
        _font(run, bold=bold)
        if i < len(lines) - 1:
            run.add_break()


def _repeat_header(row) -> None:
    """Mark a table row as a header row, repeated at the top of every printed page."""
    tr_pr = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)


def _no_split(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    cant = OxmlElement("w:cantSplit")
    cant.set(qn("w:val"), "true")
    tr_pr.append(cant)


def _table(doc, head: Sequence[str], widths: Sequence[float]):
    table = doc.add_table(rows=1, cols=len(head))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for i, label in enumerate(head):
        _cell(table.rows[0].cells[i], label, bold=True, center=True)
    _repeat_header(table.rows[0])
    for i, w in enumerate(widths):
        for c in table.columns[i].cells:
            c.width = Cm(w)
    return table


def _add_row(table, values: Sequence[str], widths: Sequence[float]) -> None:
    cells = table.add_row().cells
    for i, value in enumerate(values):
        _cell(cells[i], value, center=i == 0)
        cells[i].width = Cm(widths[i])
    _no_split(table.rows[-1])


def _save(doc) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# -- attachments 1 and 2 ------------------------------------------------------------------------


async def _snapshot_items(session: AsyncSession, pledge: Pledge) -> tuple[list[dict], int, date]:
    """Return the items of the version last submitted (or the draft's), its number and date."""
    snap = (
        await session.exec(
            select(PledgeSnapshot)
            .where(PledgeSnapshot.pledge_id == pledge.id)
            .order_by(col(PledgeSnapshot.version).desc())
            .limit(1)
        )
    ).first()
    if snap is not None:
        return snap.items, snap.version, snap.submitted_at.date()
    items = [propose.item_snapshot(i) for i in await propose.items_of(session, pledge.id)]
    return items, pledge.version, None


async def _org_facts(session: AsyncSession, org_id: int, sep: str) -> tuple[str, int]:
    names = (
        await session.exec(
            select(Member.name)
            .join(RoleGrant, col(RoleGrant.member_id) == Member.id)
            .where(
                RoleGrant.role == Role.SECRETARY,
                RoleGrant.org_id == org_id,
                Member.active == True,  # noqa: E712
            )
            .order_by(col(Member.id))
        )
    ).all()
    count = (
        await session.exec(
            select(func.count(func.distinct(RoleGrant.member_id)))
            .join(Member, col(Member.id) == RoleGrant.member_id)
            .where(
                RoleGrant.role == Role.MEMBER,
                RoleGrant.org_id == org_id,
                Member.active == True,  # noqa: E712
            )
        )
    ).one()
    return sep.join(names), int(count)


async def application_docx(
    session: AsyncSession,
    campaign: Campaign,
    pledges: Sequence[Pledge],
    *,
    locale: str,
) -> bytes:
    """Write attachment 1 (organization pledges) or 2 (members'): one form per pledge."""
    t = Labels(locale)
    sep = t("doc.sep")
    doc = _new_document(landscape=False)
    widths = (1.2, 6.2, 3.6, 4.0, 2.4)
    for index, pledge in enumerate(pledges):
        if index:
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        form = 1 if pledge.owner_kind is OwnerKind.ORG else 2
        org = await session.get(Org, pledge.org_id)
        items, version, submitted = await _snapshot_items(session, pledge)
        _para(doc, t.form(form), size=16, bold=True, center=True, font=TITLE_FONT)
        _para(doc, t("doc.app.subtitle", campaign=campaign.name, version=version), center=True)
        facts = doc.add_table(rows=0, cols=4)
        facts.style = "Table Grid"
        if form == 1:
            secretary, members = await _org_facts(session, pledge.org_id, sep)
            pairs = [
                (t("doc.app.org"), org.full_name if org else ""),
                (t("doc.app.secretary"), secretary),
                (t("doc.app.members"), str(members)),
                (t("doc.app.submitted"), submitted.isoformat() if submitted else ""),
            ]
        else:
            member = await session.get(Member, pledge.owner_member_id)
            category = pledge.category or (member.category.value if member.category else "")
            pairs = [
                (t("doc.app.member"), member.name if member else ""),
                (t("doc.app.member_org"), org.full_name if org else ""),
                (t("doc.app.post"), pledge.post or (member.post if member else "")),
                (t("doc.app.category"), t(f"category.{category}") if category else ""),
                (t("doc.app.submitted"), submitted.isoformat() if submitted else ""),
                (t("doc.app.status"), t(f"status.{pledge.status.value}")),
            ]
        if form == 1:
            pairs.append((t("doc.app.status"), t(f"status.{pledge.status.value}")))
            pairs.append(("", ""))
        for i in range(0, len(pairs), 2):
            cells = facts.add_row().cells
            for j, (label, value) in enumerate(pairs[i : i + 2]):
                _cell(cells[2 * j], label, bold=True, center=True)
                _cell(cells[2 * j + 1], value)
        for row in facts.rows:
            for c, w in zip(row.cells, (2.6, 6.0, 2.6, 6.2), strict=True):
                c.width = Cm(w)
        _para(doc, t("doc.app.items"), bold=True)
        table = _table(
            doc,
            [
                t("doc.col.n"),
                t("doc.col.content"),
                t("doc.col.goal"),
                t("doc.col.measures"),
                t("doc.col.deadline"),
            ],
            widths,
        )
        if not items:
            _add_row(table, ["", t("doc.none"), "", "", ""], widths)
        for n, it in enumerate(items, 1):
            content = it.get("content") or ""
            if it.get("basic"):
                content += t("doc.app.basic")
            _add_row(
                table,
                [
                    str(n),
                    content,
                    it.get("goal") or "",
                    it.get("measures") or "",
                    it.get("deadline") or "",
                ],
                widths,
            )
        if form == 2:
            peers = await cards.peer_opinions(session, pledge.id, version)
            if peers:
                _para(doc, t("doc.app.peers"), bold=True)
                for p in peers:
                    verdict = t(f"doc.verdict.{p['verdict']}") if p["verdict"] else ""
                    _para(
                        doc,
                        t(
                            "doc.app.peer_line",
                            name=p["name"],
                            verdict=verdict,
                            opinion=p["opinion"] or "",
                        ),
                    )
        _para(doc, t("doc.app.decision", kind=pledge.owner_kind.value), bold=True)
        decision = await cards.decision_of(session, pledge.id, version)
        if decision is None:
            _para(doc, t("doc.app.undecided"))
        else:
            verdict = t(f"doc.verdict.{decision['verdict']}")
            _para(doc, t("doc.app.decision_line", verdict=verdict, opinion=decision["opinion"]))
            if decision["criteria"]:
                names = sep.join(t(f"criterion_full.{c}") for c in decision["criteria"])
                _para(doc, t("doc.app.criteria", criteria=names))
            if decision["reasons"]:
                _para(doc, t("doc.app.reasons", reasons=sep.join(decision["reasons"])))
            _para(doc, t("doc.app.decided_by", by=decision["by"], at=decision["at"][:10]))
        if pledge.published_at is not None:
            _para(doc, t("doc.app.published", at=local_stamp(campaign, pledge.published_at)[:10]))
        doc.add_paragraph()
        _para(doc, t("doc.app.signature"))
    return _save(doc)


# -- attachments 6 and 7 ------------------------------------------------------------------------


async def published_pledges(
    session: AsyncSession, campaign: Campaign, level: Org, kind: OwnerKind
) -> list[Pledge]:
    """Return the published pledges of a subtree of one kind, organization by organization."""
    rows = (
        await session.exec(
            select(Pledge)
            .join(Org, col(Org.id) == Pledge.org_id)
            .where(
                Pledge.campaign_id == campaign.id,
                Pledge.status == PledgeStatus.PUBLISHED,
                Pledge.owner_kind == kind,
                col(Org.path).startswith(level.path),
            )
            .order_by(col(Org.path), col(Pledge.published_at), col(Pledge.id))
        )
    ).all()
    return list(rows)


async def display_docx(
    session: AsyncSession,
    campaign: Campaign,
    level: Org,
    form: int,
    *,
    today: date,
    now: datetime,
    locale: str,
    pledges: Sequence[Pledge] | None = None,
) -> tuple[bytes, int]:
    """Write attachment 6 or 7 of a unit's published pledges; return it and the item count.

    ``pledges`` limits the table to those (the printable version of one display post).
    """
    t = Labels(locale)
    kind = OwnerKind.ORG if form == 6 else OwnerKind.MEMBER
    if pledges is None:
        pledges = await published_pledges(session, campaign, level, kind)
    states = {
        row.item_id: row.state
        async for row in supervise.ledger_rows(session, campaign.id, level.path, today, kind=kind)
    }
    doc = _new_document(landscape=True)
    _para(doc, t.form(form), size=18, bold=True, center=True, font=TITLE_FONT)
    _para(doc, t("doc.display.subtitle", org=level.full_name, campaign=campaign.name), center=True)
    _para(doc, t("doc.display.intro"))
    widths = (1.2, 4.0, 8.0, 5.0, 5.0, 2.4, 2.0)
    head = [
        t("doc.col.n"),
        t("doc.display.col_owner"),
        t("doc.col.content"),
        t("doc.col.goal"),
        t("doc.col.measures"),
        t("doc.col.deadline"),
        t("doc.display.col_state"),
    ]
    table = _table(doc, head, widths)
    count = 0
    for pledge in pledges:
        org = await session.get(Org, pledge.org_id)
        owner = await cards.owner_name(session, pledge)
        who = t(
            "doc.display.pledge_of",
            kind=pledge.owner_kind.value,
            org=org.name if org else "",
            owner=owner,
            post=pledge.post,
        )
        if level.id != pledge.org_id and kind is OwnerKind.MEMBER:
            who = f"{who}\n{org.name}" if org else who
        for item in await propose.items_of(session, pledge.id):
            count += 1
            state = states.get(item.id, "unreported")
            _add_row(
                table,
                [
                    str(count),
                    who,
                    item.content,
                    item.goal,
                    item.measures,
                    item.deadline.isoformat() if item.deadline else "",
                    t(f"doc.state.{state}"),
                ],
                widths,
            )
    if not count:
        _add_row(table, ["", t("doc.none"), "", "", "", "", ""], widths)
    doc.add_paragraph()
    _para(doc, t("doc.display.footer", at=today.isoformat()))
    return _save(doc), count


async def letter_docx(
    session: AsyncSession, campaign: Campaign, pledge: Pledge, *, locale: str
) -> bytes:
    """Write the pledge letter (承诺书) of a published pledge, to sign and post."""
    t = Labels(locale)
    ctx = await cards.pledge_context(session, pledge, snapshot=True)
    at = pledge.published_at or pledge.updated_at
    ctx["published_at"] = local_stamp(campaign, at)[:10]
    doc = _new_document(landscape=False)
    _para(doc, t("print.letter_title"), size=22, bold=True, center=True, font=TITLE_FONT)
    doc.add_paragraph()
    body = catalog().render("publish.letter", locale, **ctx).splitlines()[1:]
    for line in body:
        p = _para(doc, line.strip(), size=12)
        p.paragraph_format.first_line_indent = Pt(24) if not line.startswith(" ") else None
    doc.add_paragraph()
    _para(doc, t("doc.app.signature"), size=12)
    return _save(doc)
