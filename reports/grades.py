"""The year's grades per member for the annual 民主评议党员 (.xlsx), from 每季一评's records.

One row per member evaluated in the campaign: for each quarter the grade (or 待评 / 评议中),
the score and how it was made up — each side's mean and the rule's weight, as the result
message showed it — then the follow-ups recorded (谈话提醒 / 批评教育 / 限期整改). Members are
listed in the order of the organization tree and by name's record, never by grade. The rule
(weights, points, thresholds) is printed under the table. A branch gets one sheet; a level one
sheet per unit directly below it, as the ledgers do. Rows stream from the database a few
hundred organizations at a time into a streaming workbook.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign.documents import GRADES_FORM
from campaign.evaluate import rule_context
from models.campaign import Campaign
from models.evaluation import EvalStatus, Evaluation, default_rule
from models.org import Member, Org
from models.pledge import OwnerKind
from reports.common import Labels, local_stamp
from reports.ledger import _group_of, _name_of, _relative
from reports.sheet import Book
from templates import catalog

#: organizations read per query
CHUNK = 300


def quarters_of(campaign: Campaign, found: set[str]) -> list[str]:
    """Return the quarter keys of the campaign's year, and any other quarter evaluated."""
    count = len(set(campaign.quarter_starts)) or 4
    return sorted({f"{campaign.year}Q{i + 1}" for i in range(count)} | found)


def made_up(t: Labels, ev: Evaluation) -> str:
    """Return how a grade was made up: each side's mean and weight, in the result's words."""
    parts = []
    for p in ev.result.get("parts", []):
        side = t(f"eval.side.member.{p['side']}")
        if p.get("mean") is None:
            parts.append(t("eval_form.part_missing", side=side, weight=p["weight"]))
        else:
            parts.append(t("eval_form.part", side=side, mean=p["mean"], weight=p["weight"]))
    return t("eval_form.sep").join(parts)


def grade_text(t: Labels, ev: Evaluation | None) -> str | None:
    """Return a quarter's grade as the form shows it (待评, 评议中), or None if not evaluated."""
    if ev is None:
        return None
    if ev.grade is not None:
        return t(f"eval.grade.{ev.grade.value}")
    return t("eval_form.pending" if ev.status is EvalStatus.PENDING else "eval_form.open")


async def grades_xlsx(
    session: AsyncSession,
    campaign: Campaign,
    level: Org,
    *,
    today: date,
    now: datetime,
    locale: str,
) -> tuple[bytes, int]:
    """Write the year's grades of the members of a subtree; return the file and its rows."""
    t = Labels(locale)
    org_rows = (
        await session.exec(
            select(Org)
            .where(
                col(Org.path).startswith(level.path),
                col(Org.id).in_(
                    select(Evaluation.org_id).where(
                        Evaluation.campaign_id == campaign.id,
                        Evaluation.owner_kind == OwnerKind.MEMBER,
                    )
                ),
            )
            .order_by(col(Org.path), col(Org.id))
        )
    ).all()
    found = (
        await session.exec(
            select(Evaluation.quarter).where(Evaluation.campaign_id == campaign.id).distinct()
        )
    ).all()
    quarters = quarters_of(campaign, set(found))
    head = [t("doc.col.n"), t("doc.col.org"), t("doc.col.owner")]
    widths = [6, 18, 10]
    for q in quarters:
        head += [
            t("eval_form.col.grade", quarter=q),
            t("eval_form.col.score"),
            t("eval_form.col.made_up"),
        ]
        widths += [8, 7, 30]
    head.append(t("eval_form.col.follow_up"))
    widths.append(24)
    subtitle = t(
        "doc.subtitle",
        org=level.full_name,
        campaign=campaign.name,
        period_label=t("eval_form.period_label"),
        period=t("eval_form.year", y=campaign.year),
    )
    groups = {_group_of(level, o) for o in org_rows}
    by_path = {o.path: o for o in org_rows}
    book = Book(landscape=True)
    sheet = None
    current = None
    rows = n = 0
    rule: dict | None = None

    def close_sheet() -> None:
        text = catalog().render("eval.rule_text", locale, kind="member", rule=rule_ctx())
        for line in text.strip().splitlines():
            sheet.note(line)
        sheet.note(t("doc.generated", at=local_stamp(campaign, now)))

    def rule_ctx() -> dict:
        return rule_context(rule or campaign.grade_rule or default_rule(), OwnerKind.MEMBER)

    for start in range(0, len(org_rows), CHUNK):
        chunk = org_rows[start : start + CHUNK]
        evs = (
            await session.exec(
                select(Evaluation, Member)
                .join(Member, col(Member.id) == Evaluation.member_id)
                .where(
                    Evaluation.campaign_id == campaign.id,
                    Evaluation.owner_kind == OwnerKind.MEMBER,
                    col(Evaluation.org_id).in_([o.id for o in chunk]),
                )
                .order_by(col(Evaluation.org_id), col(Member.id), col(Evaluation.quarter))
            )
        ).all()
        per_org: dict[int, dict[int, tuple[Member, dict[str, Evaluation]]]] = defaultdict(dict)
        for ev, member in evs:
            entry = per_org[ev.org_id].setdefault(member.id, (member, {}))
            entry[1][ev.quarter] = ev
            rule = rule or ev.rule or None
        for org in chunk:
            group = _group_of(level, org)
            if sheet is None or group != current:
                if sheet is not None:
                    close_sheet()
                current = group
                name = t("eval_form.sheet")
                if len(groups) > 1 or group != level.path:
                    unit = by_path.get(group)
                    name = unit.name if unit else await _name_of(session, group, name)
                sheet = book.sheet(name, widths)
                sheet.title(t.form(GRADES_FORM), subtitle)
                sheet.header(head)
                n = 0
            relative = _relative(level, org)
            for member, by_quarter in per_org.get(org.id, {}).values():
                n += 1
                rows += 1
                values: list = [n, relative, member.name]
                follow = []
                for q in quarters:
                    ev = by_quarter.get(q)
                    values += [
                        grade_text(t, ev),
                        ev.result.get("score") if ev is not None else None,
                        made_up(t, ev) if ev is not None and ev.result else None,
                    ]
                    if ev is not None and ev.follow_up is not None:
                        follow.append(
                            t(
                                "eval_form.follow_up",
                                quarter=q,
                                action=t(f"eval.follow.{ev.follow_up.value}"),
                            )
                        )
                values.append(t("eval_form.sep").join(follow) or None)
                sheet.write(values)
    if sheet is None:
        sheet = book.sheet(t("eval_form.sheet"), widths)
        sheet.title(t.form(GRADES_FORM), subtitle)
        sheet.header(head)
    close_sheet()
    return book.close(), rows
