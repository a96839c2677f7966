"""每月一报 in chat end to end: /report, the card's buttons, pauses, the 月报, the 台账, 限期整改.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture), through the core, the
outbox and a recording messenger that applies edits to the messages it sent. Buttons are
pressed by the data of the messages the bot actually sent, found by their rendered label.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from campaign import fulfil, propose, review
from campaign.access import load_actor
from campaign.monthly import ProgressCb, RestCb
from handlers.events import ContactShared
from models import Campaign, Outbox, PledgeItem
from models.pledge import OwnerKind, Verdict
from models.progress import (
    OrgReport,
    Pause,
    Progress,
    ProgressReport,
    Rectification,
    RectificationStatus,
)
from reminders.jobs import Jobs
from templates import catalog
from tests.chat import MEMBER, PHONES, REVIEWER, SECRETARY, ChatBot, sender
from tests.conftest import a_campaign, seed_people

CST = ZoneInfo("Asia/Shanghai")
ITEM_1 = "帮助本组5户困难群众发展花椒种植，户均增收2000元"
ITEM_2 = "为本组8户留守老人每月上门帮办代办一次"
MONTH = "2026-05"
TODAY = date(2026, 5, 20)


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CST).astimezone(UTC)


class Bot(ChatBot):
    """The chat harness on 20 May, with edits applied to the transcript."""

    def __init__(self, store, people):
        self.now = at(2026, 5, 20)
        super().__init__(store, people, lambda: self.now, editing=True)

    def text_of(self, chat: str, label: str) -> str:
        """Return the current text of the message that holds a button labelled ``label``."""
        _, message_id = self.find(chat, label)
        return self.messenger.sent[int(message_id) - 1][1].text


def render(key):
    return catalog().render(key, "zh_CN")


async def publish_member_pledge(store, people, codec) -> tuple[int, list[int]]:
    """Draft, submit and approve the member's pledge through the domain; return its item ids."""
    async with store.read() as s:
        me = await load_actor(s, people.ids["member"])
        sec = await load_actor(s, people.ids["secretary"])
    drafted = date(2026, 4, 10)
    async with store.write() as s:
        (target,) = [t for t in await propose.targets(s, me) if t.owner is OwnerKind.MEMBER]
        pledge = await propose.open_draft(s, me, target, today=drafted, render=render)
        for content, deadline in ((ITEM_1, "2026-05-15"), (ITEM_2, "2026-12-31")):
            item = await propose.add_item(s, me, pledge.id)
            for field, value in [
                ("content", content),
                ("goal", "年底前户均增收2000元，群众满意率90%以上"),
                ("measures", "联系县农技站开展3次技术培训，统一采购优质苗木"),
                ("deadline", deadline),
                ("vanguard", "serve"),
            ]:
                await propose.set_item_field(s, me, pledge.id, item.id, field, value, year=2026)
        await review.submit(s, me, pledge.id, today=drafted, codec=codec)
        pid = pledge.id
    async with store.write() as s:
        await review.decide(s, sec, pid, 1, Verdict.APPROVE, codec=codec, confirmed=True)
        items = await propose.items_of(s, pid)
    return pid, [i.id for i in items]


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    b = Bot(store, people)
    for chat in (MEMBER, SECRETARY, REVIEWER):
        await b.bind(chat)
    b.pledge_id, b.item_ids = await publish_member_pledge(store, people, b.core.codec)
    await b.worker.run_once()  # the approval's letters and notices
    b.messenger.sent.clear()
    b.messenger.edits.clear()
    return b


async def reports(bot: Bot) -> dict[int, ProgressReport]:
    rows = await bot.rows(ProgressReport, ProgressReport.month == MONTH)
    return {r.item_id: r for r in rows}


# --------------------------------------------------------------------------- /report


async def test_report_shows_the_card_and_one_tap_reports_the_month(bot):
    await bot.cmd(MEMBER, "report")
    texts = bot.messenger.texts(MEMBER)
    card = texts[0]
    assert "每月一报" in card and "2026年5月" in card and MONTH not in card and "张建国" in card
    assert ITEM_1 in card and ITEM_2 in card and "已过完成时限" in card  # item 1 is past 5-15
    assert "暂停每月提醒" in texts[-1]
    labels = [b.text for row in bot.messenger.sent[0][1].buttons for b in row]
    assert "☐1 按计划" in labels and "☐2 有困难" in labels and "👍 全部按计划推进" in labels
    assert all(len(label) <= 12 for label in labels)

    await bot.press(MEMBER, "全部按计划推进")
    assert bot.taps == 1
    rows = await reports(bot)
    assert set(rows) == set(bot.item_ids)
    assert {r.status for r in rows.values()} == {Progress.ON_TRACK}
    # The card was edited in place: answered, marked, without the "all on track" button.
    assert len(bot.messenger.edits) == 1
    edited = bot.messenger.sent[0][1]
    assert "已报齐" in edited.text and "🟢 按计划推进" in edited.text
    edited_labels = [b.text for row in edited.buttons for b in row]
    assert "☑1 按计划" in edited_labels and not any("全部" in x for x in edited_labels)
    assert "已报送 2 项" in bot.toasts[-1]
    assert "进度已报齐" in bot.last(MEMBER) and "照片" in bot.last(MEMBER)

    # Optional evidence: a sentence and a photo are kept with this month's reports.
    await bot.say(MEMBER, "已联系农技站，5月12日完成第一次培训")
    assert "已补充说明" in bot.last(MEMBER)
    await bot.photo(MEMBER, "photo-file-1", caption="培训现场")
    assert "照片已收到" in bot.last(MEMBER)
    rows = await reports(bot)
    for r in rows.values():
        assert "第一次培训" in r.note and "培训现场" in r.note
        assert r.photos == ["photo-file-1"]
    # Another command leaves the note dialog; the chat is back to normal.
    await bot.cmd(MEMBER, "report")
    await bot.say(MEMBER, "你好")
    assert "/help" in bot.last(MEMBER)


async def test_the_prompt_from_the_job_is_answered_in_one_tap(bot):
    jobs = Jobs(bot.store, bot.core.codec)
    queued = await jobs.tick(at(2026, 5, 20, 10))
    assert queued["prompt"] == 1
    await bot.worker.run_once()
    prompt = [t for t in bot.messenger.texts(MEMBER) if "每月一报" in t]
    assert prompt and "全部按计划推进" in prompt[0] and "每月一报每季一评" in prompt[0]
    await bot.press(MEMBER, "全部按计划推进")
    assert bot.taps <= 3
    assert len(await reports(bot)) == 2
    async with bot.store.read() as s:
        camp = (await s.exec(select(Campaign))).one()
        assert await fulfil.due_reporters(s, camp, MONTH, TODAY) == []


async def test_done_crosses_off_and_blocked_asks_for_the_reason(bot):
    await bot.cmd(MEMBER, "report")
    await bot.press(MEMBER, "☐1 完成")
    assert "登记销号" in bot.toasts[-1]
    (item1,) = await bot.rows(PledgeItem, PledgeItem.id == bot.item_ids[0])
    assert item1.done_on == TODAY
    assert "☑1 完成" in [b.text for row in bot.messenger.sent[0][1].buttons for b in row]

    await bot.press(MEMBER, "☐2 有困难")
    assert "遇到了什么困难" in bot.last(MEMBER) and ITEM_2 in bot.last(MEMBER)
    await bot.say(MEMBER, "长" * 1001)
    assert "最多1000字" in bot.last(MEMBER)
    await bot.say(MEMBER, "苗木款未到位，推迟到6月采购")
    assert "已记录困难原因" in bot.last(MEMBER) and "已报齐" in bot.last(MEMBER)
    rows = await reports(bot)
    assert rows[bot.item_ids[0]].status is Progress.DONE
    assert rows[bot.item_ids[1]].status is Progress.BLOCKED
    assert rows[bot.item_ids[1]].note == "苗木款未到位，推迟到6月采购"
    assert bot.taps == 2
    # Still this month, an answer may be changed: done → on track un-crosses it.
    await bot.press(MEMBER, "1 按计划")
    (item1,) = await bot.rows(PledgeItem, PledgeItem.id == bot.item_ids[0])
    assert item1.done_on is None


async def test_stale_and_foreign_cards_change_nothing(bot):
    codec = bot.core.codec
    item = bot.item_ids[1]
    last_month = codec.encode(ProgressCb(item, 202604, Progress.ON_TRACK))
    await bot.press_data(MEMBER, last_month, "1")
    assert "已截止" in bot.toasts[-1]
    await bot.press_data(MEMBER, codec.encode(RestCb(bot.pledge_id, 202604)), "1")
    assert "已截止" in bot.toasts[-1]
    # The secretary may not answer for the member.
    this_month = codec.encode(ProgressCb(item, 202605, Progress.DONE))
    await bot.press_data(SECRETARY, this_month, "1")
    assert len(bot.toasts) == 3
    assert await bot.count(ProgressReport) == 0
    assert bot.messenger.sent == [] and bot.messenger.edits == []
    (row,) = await bot.rows(PledgeItem, PledgeItem.id == item)
    assert row.done_on is None


async def test_nothing_to_report_without_a_published_pledge(bot):
    await bot.cmd(REVIEWER, "report")
    assert "没有需要报送进度的承诺" in bot.last(REVIEWER)


# --------------------------------------------------------------------------- pauses


async def test_pause_stops_the_member_being_due_and_resume_restores_it(bot):
    async def due() -> set[int]:
        async with bot.store.read() as s:
            camp = (await s.exec(select(Campaign))).one()
            return {d.member_id for d in await fulfil.due_reporters(s, camp, MONTH, TODAY)}

    member = bot.people.ids["member"]
    assert member in await due()
    await bot.cmd(MEMBER, "report")
    await bot.press(MEMBER, "暂停提醒")
    assert "原因" in bot.last(MEMBER)
    await bot.press(MEMBER, "外出务工")
    assert "暂停到哪一天" in bot.last(MEMBER)
    await bot.say(MEMBER, "过几天吧")
    assert "没看懂" in bot.last(MEMBER)
    await bot.say(MEMBER, "2028-01-01")  # more than a year ahead
    assert "一年以内" in bot.last(MEMBER)
    await bot.say(MEMBER, "8月31日")
    assert "已暂停提醒至2026年8月31日" in bot.last(MEMBER) and "外出务工" in bot.last(MEMBER)
    (pause,) = await bot.rows(Pause)
    assert pause.ends_on == date(2026, 8, 31) and pause.reason.value == "migrant"
    assert member not in await due()

    # /report still works while paused, and says so.
    await bot.cmd(MEMBER, "report")
    assert "已暂停提醒至2026年8月31日" in bot.last(MEMBER)
    await bot.press(MEMBER, "恢复提醒")
    assert "已恢复" in bot.toasts[-1]
    assert member in await due()


# --------------------------------------------------------------------------- 月报


async def test_secretary_confirms_the_month_and_the_township_sees_it(bot):
    await bot.cmd(MEMBER, "summary")
    assert "没有相应职责" in bot.last(MEMBER)

    await bot.cmd(REVIEWER, "summary")
    roll_up = bot.last(REVIEWER)
    assert "城关镇" in roll_up and "月报尚未上报：东江村党支部" in roll_up

    await bot.cmd(SECRETARY, "summary")
    card = bot.last(SECRETARY)
    assert "东江村党支部" in card and "未报：张建国" in card and "确认上报" in card
    taps = bot.taps
    await bot.press(SECRETARY, "确认上报")
    assert bot.taps - taps == 1
    (row,) = await bot.rows(OrgReport)
    assert row.month == MONTH and row.figures["missing"] == 1 and row.figures["items"] == 2
    assert "已确认" in bot.toasts[-1]
    card = next(t for t in bot.messenger.texts(SECRETARY) if "公开承诺事项进度月报" in t)
    assert "✅ 已确认" in card  # the card, edited
    labels = [b.text for _, m in bot.messenger.sent for row in m.buttons for b in row]
    assert "🔄 重新确认" in labels
    # Confirming while someone owes the month says how many and offers the reminder.
    assert "本月还有 1 人 2 项未报送" in bot.last(SECRETARY)
    assert bot.labels(SECRETARY) == ["🔔 提醒未报的人"]

    await bot.cmd(REVIEWER, "summary")
    roll_up = bot.last(REVIEWER)
    assert "月报尚未上报" not in roll_up and "已确认上报 1 个" in roll_up


async def test_a_correction_is_shown_before_a_separate_confirm(bot):
    await bot.cmd(SECRETARY, "summary")
    await bot.press(SECRETARY, "补充更正")
    assert "补充说明或更正" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "张建国外出务工，下月补报")
    # Nothing is submitted yet: the report is shown as it will go up.
    assert await bot.count(OrgReport) == 0
    preview = bot.last(SECRETARY)
    assert "尚未上报" in preview and "备注：张建国外出务工，下月补报" in preview
    assert bot.labels(SECRETARY) == ["✅ 确认上报", "✏️ 重新填写"]
    # Typing again replaces the remark.
    await bot.say(SECRETARY, "张建国外出务工，6月补报")
    assert "6月补报" in bot.last(SECRETARY) and await bot.count(OrgReport) == 0
    await bot.press(SECRETARY, "✅ 确认上报")
    (row,) = await bot.rows(OrgReport)
    assert row.remarks == "张建国外出务工，6月补报"
    assert any("已连同补充说明确认上报" in t for t in bot.messenger.texts(SECRETARY))
    edited = [t for t in bot.messenger.texts(SECRETARY) if "备注：张建国外出务工" in t]
    assert edited, "the summary card was edited to show the remark"


async def test_a_preview_left_behind_submits_nothing(bot):
    await bot.cmd(SECRETARY, "summary")
    await bot.press(SECRETARY, "补充更正")
    await bot.say(SECRETARY, "补充说明")
    await bot.cmd(SECRETARY, "ledger")  # leaves the dialog
    await bot.press(SECRETARY, "✅ 确认上报")
    assert "重新点「补充更正」" in bot.toasts[-1]
    assert await bot.count(OrgReport) == 0


async def test_remind_the_unreported_once_as_the_calendar_would(bot):
    await bot.cmd(SECRETARY, "summary")
    await bot.press(SECRETARY, "确认上报")
    await bot.press(SECRETARY, "提醒未报的人")
    assert "已提醒 1 人" in bot.last(SECRETARY)
    assert any("温馨提醒" in t for t in bot.messenger.texts(MEMBER))
    await bot.press(SECRETARY, "提醒未报的人")
    assert "1 人本月已提醒过" in bot.last(SECRETARY)
    # The calendar's reminder of the month is the same one: not sent a second time.
    queued = await Jobs(bot.store, bot.core.codec).tick(at(2026, 5, 25, 10))
    assert queued.get("remind", 0) == 0
    assert await bot.count(Outbox, Outbox.dedup_key.like("reminder:%")) == 1
    assert len([t for t in bot.messenger.texts(MEMBER) if "温馨提醒" in t]) == 1


async def test_the_summary_card_sent_by_the_job_confirms_in_one_tap(bot):
    jobs = Jobs(bot.store, bot.core.codec)
    await jobs.tick(at(2026, 5, 28, 10))
    await bot.worker.run_once()
    assert any("公开承诺事项进度月报" in t for t in bot.messenger.texts(SECRETARY))
    await bot.press(SECRETARY, "确认上报")
    assert await bot.count(OrgReport) == 1
    assert bot.taps == 1


# --------------------------------------------------------------------------- 台账 and 限期整改


async def test_rectification_opened_from_the_ledger_claimed_and_closed(bot):
    await bot.cmd(MEMBER, "ledger")
    assert "书记" in bot.last(MEMBER)

    await bot.cmd(SECRETARY, "ledger")
    ledger, people = bot.messenger.texts(SECRETARY)[-2:]
    assert "台账" in ledger and "张建国" in ledger and "超期" in ledger
    assert "登记 2026年" in ledger and "时限 2026年5月15日" in ledger and "2026-" not in ledger
    assert "本月未报（1 人）：张建国" in people  # and the list of who has not reported
    labels = [b.text for row in bot.messenger.sent[-2][1].buttons for b in row]
    assert labels == ["🔧 限期整改 1"]  # item 2 is on course: no button

    await bot.press(SECRETARY, "限期整改 1")
    assert "整改原因" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "事项已超期未完成，群众有意见")
    assert "整改期限" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "尽快")
    assert "没看懂" in bot.last(SECRETARY)
    # A past date is refused and the question stays.
    await bot.say(SECRETARY, "2026-05-01")
    assert "须在今天以后" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "6月30日")
    assert "已对张建国提出限期整改" in bot.last(SECRETARY)
    rects = await bot.rows(Rectification)
    rect = next(r for r in rects if r.deadline == date(2026, 6, 30))
    assert rect.item_id == bot.item_ids[0] and rect.status is RectificationStatus.OPEN
    assert await bot.count(Outbox, Outbox.dedup_key.like(f"rect:{rect.id}:open:%")) == 1

    # The owner is told, with the claim button, and reports it done with a note.
    await bot.worker.run_once()
    assert any("限期整改" in t and "2026年6月30日" in t for t in bot.messenger.texts(MEMBER))
    data, message_id = bot.find(MEMBER, "整改完成")
    await bot.press_data(MEMBER, data, message_id)
    assert "说明整改情况" in bot.last(MEMBER)
    await bot.say(MEMBER, "5户苗木已全部栽植，照片已在群里公示")
    assert "等待李书记确认" in bot.last(MEMBER)
    (rect,) = await bot.rows(Rectification, Rectification.id == rect.id)
    assert rect.status is RectificationStatus.CLAIMED and "苗木" in rect.claim_note
    assert "等待李书记确认" in bot.messenger.sent[int(message_id) - 1][1].text
    # The old claim button is stale now.
    await bot.press_data(MEMBER, data, message_id)
    assert "过期" in bot.toasts[-1]

    # The opener confirms; the member is told.
    await bot.worker.run_once()
    assert "报告已整改完成" in bot.text_of(SECRETARY, "确认整改到位")
    await bot.press(SECRETARY, "确认整改到位")
    assert "已确认整改到位" in bot.toasts[-1]
    (rect,) = await bot.rows(Rectification, Rectification.id == rect.id)
    assert rect.status is RectificationStatus.CLOSED and rect.closed_at is not None
    await bot.worker.run_once()
    assert "限期整改已确认到位" in bot.last(MEMBER)
    notices = await bot.rows(Outbox, Outbox.chat_id == MEMBER, Outbox.dedup_key.like("rect:%"))
    assert len(notices) == 2  # opened, closed


async def test_a_rectification_sent_back_can_be_claimed_again(bot):
    await bot.cmd(SECRETARY, "ledger")
    await bot.press(SECRETARY, "限期整改 1")
    await bot.say(SECRETARY, "超期未完成")
    await bot.say(SECRETARY, "2026-06-30")
    await bot.worker.run_once()
    await bot.press(MEMBER, "整改完成")
    await bot.say(MEMBER, "已完成")
    await bot.worker.run_once()
    await bot.press(SECRETARY, "退回继续整改")
    (rect,) = await bot.rows(Rectification)
    assert rect.status is RectificationStatus.OPEN
    await bot.worker.run_once()
    assert "被退回" in bot.last(MEMBER)
    assert bot.find(MEMBER, "整改完成")[1] == str(len(bot.messenger.sent))  # on the notice
    # Open rectifications are also listed under /report, with their button.
    await bot.cmd(MEMBER, "report")
    assert any("请按期整改" in t for t in bot.messenger.texts(MEMBER)[-3:])
    await bot.press(MEMBER, "整改完成")
    await bot.say(MEMBER, "已补栽2户")
    (rect,) = await bot.rows(Rectification)
    assert rect.status is RectificationStatus.CLAIMED and rect.claim_note == "已补栽2户"
    await bot.cmd(SECRETARY, "ledger")
    assert "整改中" in bot.messenger.texts(SECRETARY)[-2]
    assert not bot.messenger.sent[-2][1].buttons  # no second rectification on the same item


async def test_someone_bound_after_the_prompt_is_told_once_where_to_report(bot):
    await Jobs(bot.store, bot.core.codec).tick(at(2026, 5, 20, 10))
    await bot.send(ContactShared(sender=sender("9"), phone=PHONES[MEMBER], contact_user_id="9"))
    hint = catalog().render("report.after_binding", "zh_CN", month=MONTH)
    assert hint in bot.messenger.texts("9")
    # the binding moved to account 9 (one active account per person and platform)
    await bot.cmd("9", "report")
    await bot.press("9", "全部按计划推进")
    await bot.send(ContactShared(sender=sender("8"), phone=PHONES[MEMBER], contact_user_id="8"))
    assert hint not in bot.messenger.texts("8")
