"""每季一评 in chat: the rater's card from the job, one-tap grades that edit the card, pages, a
comment, foreign and closed cards, /evaluate, and a follow-up that opens 限期整改."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from campaign import evaluate
from models import Evaluation, Grade, Pledge, PledgeItem, PledgeStatus, Rating
from models.pledge import OwnerKind
from models.progress import Rectification
from reminders.jobs import Jobs
from tests.chat import MEMBER, PEER, REVIEWER, SECRETARY, ChatBot
from tests.conftest import a_campaign, seed_people

CST = ZoneInfo("Asia/Shanghai")


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CST).astimezone(UTC)


class Bot(ChatBot):
    def __init__(self, store, people):
        self.now = at(2026, 7, 1)
        super().__init__(store, people, lambda: self.now, editing=True)

    def text_of(self, chat: str, label: str) -> str:
        _, message_id = self.find(chat, label)
        return self.messenger.sent[int(message_id) - 1][1].text

    async def tick(self, when):
        self.now = when
        queued = await Jobs(self.store, self.core.codec).tick(when)
        while await self.worker.run_once():
            pass
        return queued


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        camp = a_campaign(people, 2026)
        s.add(camp)
        await s.flush()
        for key in ("member", "peer", "secretary"):
            pledge = Pledge(
                campaign_id=camp.id,
                owner_kind=OwnerKind.MEMBER,
                org_id=people.orgs["village"],
                owner_member_id=people.ids[key],
                drafted_by=people.ids[key],
                status=PledgeStatus.PUBLISHED,
                published_at=at(2026, 4, 20),
            )
            s.add(pledge)
            await s.flush()
            s.add(PledgeItem(pledge_id=pledge.id, content="x", deadline=date(2026, 12, 1)))
    b = Bot(store, people)
    for chat in (MEMBER, SECRETARY, PEER, REVIEWER):
        await b.bind(chat)
    b.messenger.sent.clear()
    return b


async def test_one_tap_grades_edit_the_card(bot):
    await bot.tick(at(2026, 7, 1))
    card = bot.last(MEMBER)
    assert "2026年第2季度" in card and "张建国（自评）" in card and "推进中1项" in card
    await bot.press(MEMBER, "1 优秀")
    assert bot.toasts[-1] == "已评：张建国 优秀"
    assert "✓1 优秀" in bot.labels(MEMBER)
    assert "已评：优秀" in bot.text_of(MEMBER, "1 良好")
    # changing one's mind while open is one more tap, the last grade counts
    await bot.press(MEMBER, "1 良好")
    rows = await bot.rows(Rating, Rating.rater_id == bot.people.ids["member"])
    mine = [r for r in rows if r.grade is not None]
    assert [r.grade for r in mine] == [Grade.GOOD]
    # a short comment, optional
    await bot.press(MEMBER, "1 评语")
    await bot.say(MEMBER, "本季度按计划推进，群众反映好")
    assert "评语已保存" in bot.last(MEMBER)
    rows = await bot.rows(Rating, Rating.id == mine[0].id)
    assert rows[0].comment == "本季度按计划推进，群众反映好"


async def test_someone_elses_card_and_a_closed_quarter_change_nothing(bot):
    await bot.tick(at(2026, 7, 1))
    data, _ = bot.find(MEMBER, "1 优秀")
    await bot.press_data(PEER, data)
    assert "没有权限" in bot.toasts[-1]
    assert await bot.count(Rating, Rating.grade.is_not(None)) == 0
    await bot.tick(at(2026, 7, 15))
    await bot.press_data(MEMBER, data)
    assert "已截止" in bot.toasts[-1]
    assert await bot.count(Rating, Rating.grade.is_not(None)) == 0
    await bot.cmd(PEER, "evaluate")
    assert "没有需要您评议" in bot.last(PEER)


async def test_evaluate_shows_the_card_and_the_secretary_pages(bot, monkeypatch):
    monkeypatch.setattr(evaluate, "PAGE", 2)
    await bot.tick(at(2026, 7, 1))
    await bot.cmd(SECRETARY, "evaluate")
    first = bot.last(SECRETARY)
    assert "第1/" in first
    await bot.press(SECRETARY, "下一页")
    assert "第2/" in bot.text_of(SECRETARY, "上一页")
    await bot.press(SECRETARY, "3 一般")
    assert "✓3 一般" in bot.labels(SECRETARY)


async def test_a_poor_grade_is_followed_up_with_a_rectification(bot):
    await bot.tick(at(2026, 7, 1))
    # the secretary rates the member 差 for the organization; nobody else answers
    rows = await bot.rows(Rating, Rating.rater_id == bot.people.ids["secretary"])
    evs = {e.id: e for e in await bot.rows(Evaluation)}
    target = next(
        r
        for r in rows
        if r.side.value == "org" and evs[r.evaluation_id].member_id == bot.people.ids["member"]
    )
    await bot.press_data(
        SECRETARY, bot.core.codec.encode(evaluate.GradeCb(target.id, Grade.POOR, 0))
    )
    await bot.tick(at(2026, 7, 15))
    result = [t for t in bot.messenger.texts(MEMBER) if "评议结果" in t][-1]
    assert "差（50.0分）" in result and "自评：未评（不计入）" in result
    assert "评议结果待处理" in bot.last(SECRETARY)
    await bot.press(SECRETARY, "限期整改")
    assert "已记录：张建国 限期整改" in bot.toasts[-1]
    assert "请输入整改原因" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "本季度承诺事项逾期未完成，群众意见较大")
    await bot.say(SECRETARY, "2026-08-31")
    rects = await bot.rows(Rectification)
    assert len(rects) == 1 and rects[0].item_id is None
    assert rects[0].deadline == date(2026, 8, 31)
    # one follow-up per result
    await bot.press(SECRETARY, "谈话提醒")
    assert "已记录过后续处理" in bot.toasts[-1]
