"""先进典型 (S5): 优秀 in two quarters makes a candidate; an office names it with a leader from the
roster and a cultivation plan; the plan is prompted monthly, reminded once, its leader told."""

from __future__ import annotations

import pytest
from sqlmodel import select

from campaign import model_examples
from models import Account, Campaign, EvalStatus, Evaluation, Grade, ModelExample, ModelProgress
from models.pledge import OwnerKind
from models.progress import Progress
from tests.chat import MEMBER, PEER, REVIEWER, SECRETARY
from tests.conftest import a_campaign, seed_people
from tests.handlers.test_look_back import card_button
from tests.handlers.test_polls import Bot, at

OFFICE = "5"


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        camp = a_campaign(people, 2026)
        s.add(camp)
        await s.flush()
        for quarter, grade in (("2026Q1", Grade.EXCELLENT), ("2026Q2", Grade.EXCELLENT)):
            for key, g in (("member", grade), ("peer", Grade.GOOD)):
                s.add(
                    Evaluation(
                        campaign_id=camp.id,
                        quarter=quarter,
                        subject=f"m:{people.ids[key]}",
                        owner_kind=OwnerKind.MEMBER,
                        org_id=people.orgs["village"],
                        member_id=people.ids[key],
                        status=EvalStatus.GRADED,
                        grade=g,
                    )
                )
        s.add(
            Account(
                platform="test", external_id=OFFICE, chat_id=OFFICE, member_id=people.ids["office"]
            )
        )
    b = Bot(store, people)
    b.now = at(2026, 7, 15)
    for chat in (MEMBER, SECRETARY, PEER, REVIEWER):
        await b.bind(chat)
    async with store.write() as s:
        camp_row = await s.get(type(camp), camp.id)
        b.queued = await model_examples.tell_candidates(s, camp_row, codec=b.core.codec)
    while await b.worker.run_once():
        pass
    return b


async def test_a_candidate_is_named_and_its_plan_tracked_monthly(bot):
    # Only the member graded 优秀 twice is a candidate; the county office hears of it once.
    assert bot.queued == 1
    assert "【先进典型候选】张建国（东江村党支部）在2026年第1季度、2026年第2季度" in bot.last(
        OFFICE
    )
    async with bot.store.write() as s:
        camp = (await s.exec(select(Campaign))).one()
        assert await model_examples.tell_candidates(s, camp, codec=bot.core.codec) == 0

    # Someone who is not an office above it cannot name it.
    data, _ = bot.find(OFFICE, "命名先进典型")
    await bot.press_data(SECRETARY, data)
    assert "没有权限" in bot.toasts[-1]

    await bot.press(OFFICE, "命名先进典型")
    assert "负责领导的手机号" in bot.last(OFFICE)
    await bot.say(OFFICE, "13900000000")
    assert "花名册中没有" in bot.last(OFFICE)
    await bot.say(OFFICE, "13800000004")
    assert "负责领导：赵审核" in bot.last(OFFICE)
    await bot.say(OFFICE, "发展花椒合作社，带动全组增收")
    await bot.say(OFFICE, "县农技站结对指导，镇党委跟踪")
    await bot.say(OFFICE, "八月份注册合作社")
    assert "这一行看不懂" in bot.last(OFFICE)
    await bot.say(OFFICE, "2026-08 完成合作社注册\n2026年10月 带动10户增收")
    assert "已命名张建国为先进典型，负责领导赵审核" in bot.last(OFFICE)
    (model,) = await bot.rows(ModelExample)
    assert model.leader_id == bot.people.ids["reviewer"]
    assert model.milestones == [
        {"month": "2026-08", "text": "完成合作社注册"},
        {"month": "2026-10", "text": "带动10户增收"},
    ]
    assert "培养节点" in bot.last(MEMBER) and "培养节点" in bot.last(REVIEWER)
    await bot.press(OFFICE, "命名先进典型")
    assert "已命名为先进典型" in bot.toasts[-1]

    # August: the plan is prompted on the report day; one tap; the leader is told.
    await bot.tick(at(2026, 8, 20))
    assert "【先进典型·每月跟踪】2026年8月 张建国" in bot.last(MEMBER)
    assert "本月节点：完成合作社注册" in bot.last(MEMBER)
    await bot.press(MEMBER, "节点已完成")
    assert "已报送：节点已完成" in bot.toasts[-1]
    assert "2026年8月 培养计划进展：节点已完成" in bot.last(REVIEWER)
    await bot.tick(at(2026, 8, 25))
    assert not any("提醒】2026年8月" in t for t in bot.messenger.texts(MEMBER))
    # September: not reported, reminded once, never twice.
    await bot.tick(at(2026, 9, 20))
    await bot.tick(at(2026, 9, 25))
    await bot.tick(at(2026, 9, 26))
    reminders = [t for t in bot.messenger.texts(MEMBER) if "【先进典型·提醒】2026年9月" in t]
    assert len(reminders) == 1
    rows = await bot.rows(ModelProgress)
    assert [(r.month, r.status) for r in rows] == [("2026-08", Progress.DONE)]
    async with bot.store.read() as s:
        ledger = await model_examples.ledger(s, model.id)
    assert ledger["months"] == {"2026-08": "done"}
    # the card of a month that is over changes nothing
    await bot.press_data(MEMBER, card_button(bot, MEMBER, "每月跟踪】2026年8月", "按计划推进"))
    assert "过期" in bot.toasts[-1]
    assert await bot.count(ModelProgress) == 1

    # The ledger in chat (/models, "先进典型" on the menu): the office over it and the branch's
    # secretary see the plan, its milestones and each month reported; a plain member does not.
    await bot.cmd(OFFICE, "models")
    text = bot.last(OFFICE)
    assert "【先进典型台账】共1个" in text
    assert "1. 张建国（东江村党支部）负责领导：赵审核" in text
    assert "培养节点：2026年8月 完成合作社注册 ✓；2026年10月 带动10户增收" in text
    assert "每月进展：2026年8月节点已完成" in text
    await bot.cmd(SECRETARY, "models")
    assert "【先进典型台账】共1个" in bot.last(SECRETARY)
    await bot.cmd(PEER, "models")
    assert "先进典型台账" not in bot.last(PEER)
