"""/export's year of grades for the annual 民主评议党员: per member the quarters' grades, how
each was made up (sides, means, the rule's weights), the follow-ups; the look of the forms."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import openpyxl
import pytest
from sqlmodel import select

from campaign import evaluate
from campaign.access import load_actor
from campaign.documents import GRADES_FORM
from models import Account, Campaign, FollowUp, Member, Org, Side
from models.errors import DomainError
from reminders.jobs import Jobs
from reports.service import Reports
from tests.chat import SECRETARY, ChatBot
from tests.reminders.test_evaluate_jobs import (  # noqa: F401
    CODEC,
    E,
    F,
    G,
    at,
    evaluation_of,
    give,
    ratings,
    world,
)

NOW = datetime(2027, 7, 20, 2, tzinfo=UTC)
RISKY = "=HYPERLINK(1)"


@pytest.fixture
async def year(world):  # noqa: F811
    """Q1 graded, Q2 待评 but for one late 一般 with a follow-up; Q3 and Q4 not yet."""
    store, people = world
    async with store.write() as s:
        m4 = await s.get(Member, people.ids["m4"])
        m4.name = RISKY  # a name a spreadsheet would run as a formula
        s.add(m4)
    await Jobs(store, CODEC).tick(at(2027, 4, 1))

    def choose(rater, rating, ev):
        if rating.side is Side.ORG and ev.member_id == people.ids["peer"]:
            return F
        return {Side.SELF: E, Side.PEER: G, Side.ORG: G, Side.EVALUATOR: E, Side.UPPER: G}[
            rating.side
        ]

    await give(store, people, "2027Q1", choose)
    await Jobs(store, CODEC).tick(at(2027, 4, 15))
    await Jobs(store, CODEC).tick(at(2027, 7, 1))
    await Jobs(store, CODEC).tick(at(2027, 7, 15))
    late = [
        r
        for r, e in await ratings(store, "2027Q2", people.ids["secretary"])
        if r.side is Side.ORG and e.member_id == people.ids["member"]
    ]
    async with store.write() as s:
        sec = await load_actor(s, people.ids["secretary"])
        await evaluate.rate(s, sec, late[0].id, F, codec=CODEC)
    ev = await evaluation_of(store, "2027Q2", f"m:{people.ids['member']}")
    async with store.write() as s:
        await evaluate.record_follow_up(s, sec, ev.id, FollowUp.TALK)
    return store, people


async def export(store, people, org_key, actor_key, locale="zh_CN"):
    async with store.read() as s:
        camp = (await s.exec(select(Campaign))).one()
        org = await s.get(Org, people.orgs[org_key])
        actor = await load_actor(s, people.ids[actor_key]) if actor_key else None
        return await Reports().export(
            s, camp, org, GRADES_FORM, today=NOW.date(), now=NOW, locale=locale, actor=actor
        )


async def test_the_year_of_grades_per_member(year):
    store, people = year
    made = await export(store, people, "village", "secretary")
    assert made.name == "民主评议_年度等次_东江村党支部_2027年度.xlsx" and made.rows == 5
    wb = openpyxl.load_workbook(io.BytesIO(made.data))
    assert wb.sheetnames == ["民主评议"]
    ws = wb.active
    assert ws["A1"].value == "民主评议党员年度等次汇总表"
    assert any(str(r).startswith("A1:") for r in ws.merged_cells.ranges)
    assert ws.print_title_rows == "$1:$3"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9
    head = [c.value for c in ws[3]]
    assert head[:6] == [
        "序号",
        "党组织",
        "党员姓名",
        "2027年第1季度等次",
        "得分",
        "构成（平均分×权重）",
    ]
    assert head[6] == "2027年第2季度等次" and head[-1] == "后续处理"
    assert len(head) == 3 + 4 * 3 + 1  # four quarters of the campaign's year
    rows = {r[2]: r for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)}
    assert list(rows) == ["张建国", "李书记", "王党员", RISKY, "孙五"]  # record order, no ranking
    member = rows["张建国"]
    # Q1: self 100, peers 85, org 85, evaluator 100 → 91 优秀
    assert member[3:6] == (
        "优秀",
        91,
        "自评100.0分×10；互评85.0分×20；组织评价85.0分×40；评议员评价100.0分×30",
    )
    # Q2: only the secretary's late 一般 → 70 一般, followed up with a talk
    assert member[6:9] == (
        "一般",
        70,
        "自评未评×10；互评未评×20；组织评价70.0分×40；评议员评价未评×30",
    )
    assert member[-1] == "2027年第2季度谈话提醒"
    assert rows["王党员"][3:5] == ("良好", 85)
    assert rows["孙五"][6] == "待评" and rows["孙五"][-1] is None
    assert member[9:15] == (None,) * 6  # Q3 and Q4 not evaluated yet
    # the name that looks like a formula is text, shown as typed
    cell = next(c for c in ws["C"] if c.value == RISKY)
    assert cell.data_type == "s" and cell.quotePrefix
    notes = [r[0] for r in ws.iter_rows(min_row=9, values_only=True) if r[0]]
    assert any("评定规则" in str(n) for n in notes) and any("≥90优秀" in str(n) for n in notes)


async def test_offices_get_their_subtree_secretaries_their_branch_members_nothing(year):
    store, people = year
    made = await export(store, people, "county", "office", locale="en")
    wb = openpyxl.load_workbook(io.BytesIO(made.data))
    assert wb.sheetnames == ["城关镇"] and made.rows == 5  # one sheet per unit below
    assert wb.active["A1"].value == "Annual review of Party members: grades of the year"
    with pytest.raises(DomainError):
        await export(store, people, "village", "member")
    with pytest.raises(DomainError):
        await export(store, people, "county", "secretary")
    # /export offers it to the secretary with the other forms
    async with store.write() as s:
        s.add(
            Account(
                platform="test",
                external_id=SECRETARY,
                chat_id=SECRETARY,
                member_id=people.ids["secretary"],
            )
        )
    bot = ChatBot(store, people, lambda: NOW, documents=Reports())
    await bot.cmd(SECRETARY, "export")
    await bot.press(SECRETARY, "民主评议 年度等次")
    [sent] = [m.attachment for c, m in bot.messenger.sent if c == SECRETARY and m.attachment]
    assert sent["filename"] == "民主评议_年度等次_东江村党支部_2027年度.xlsx"
    assert "民主评议党员年度等次汇总表" in bot.last(SECRETARY)
