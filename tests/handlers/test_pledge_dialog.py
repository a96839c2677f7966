"""The /pledge dialog end to end: through the core, the outbox and a recording messenger.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture). Buttons are pressed by the
data of the messages the bot actually sent, found by their rendered label.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from campaign import propose
from campaign import review as review_domain
from campaign.access import load_actor
from handlers import pledge as dialog
from handlers.app import build_core
from handlers.callbacks import MAX_BYTES
from models import (
    Campaign,
    Category,
    DialogState,
    Member,
    OwnerKind,
    PeerRequest,
    Pledge,
    PledgeItem,
    PledgeSnapshot,
    PledgeStatus,
)
from models.dialog import Outbox
from models.pledge import Criterion, Verdict
from tests.chat import MEMBER, PEER, REVIEWER, SECRET, SECRETARY, ChatBot
from tests.conftest import a_campaign, seed_people

NOW = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
HAN = re.compile(r"[\u4e00-\u9fff]")


class Bot(ChatBot):
    """The chat harness with the drafting dialog's lookups."""

    def __init__(self, store, people):
        super().__init__(store, people, lambda: NOW)

    async def pledge_of(self, member_key: str | None = None, org_key: str | None = None):
        async with self.store.read() as s:
            query = select(Pledge)
            if member_key:
                query = query.where(Pledge.owner_member_id == self.people.ids[member_key])
            else:
                query = query.where(
                    Pledge.owner_kind == OwnerKind.ORG,
                    Pledge.org_id == self.people.orgs[org_key],
                )
            return (await s.exec(query)).first()

    async def items(self, pledge_id: int) -> list[PledgeItem]:
        async with self.store.read() as s:
            return await propose.items_of(s, pledge_id)

    async def state(self, chat: str) -> DialogState | None:
        async with self.store.read() as s:
            return (await s.exec(select(DialogState).where(DialogState.user_id == chat))).first()


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        member = await s.get(Member, people.ids["member"])
        member.category = Category.RURAL
        member.post = "村文书"
        s.add(member)
    b = Bot(store, people)
    for chat in (MEMBER, SECRETARY, PEER, REVIEWER):
        await b.bind(chat)
    b.messenger.sent.clear()
    return b


ITEM_1 = {
    "content": "带领本组5户农户发展花椒种植",
    "goal": "年底前每户新栽花椒2亩，户均增收3000元",
    "measures": "联系镇农技站每季度来村培训1次，帮助联系收购商",
    "deadline": "12月底",
    "vanguard": "带头争创佳绩",
}
ITEM_2 = {
    "content": "为本组8户留守老人上门帮办代办",
    "goal": "每户每月上门1次，全年不少于96次",
    "measures": "建立联系卡，每月第一个周六上门，帮助代购、代缴、陪同就医",
    "deadline": "2026-11-30",
    "vanguard": "带头服务群众",
}


async def write_item(bot: Bot, chat: str, item: dict) -> None:
    """Answer the five questions of a new item (the content question is already asked)."""
    for field in ("content", "goal", "measures", "deadline"):
        await bot.say(chat, item[field])
    await bot.press(chat, item["vanguard"])


async def start_member_draft(bot: Bot) -> None:
    await bot.cmd(MEMBER, "pledge")
    assert "「农村」" in bot.last(MEMBER)
    await bot.press(MEMBER, "✓ 农村")
    assert "村文书" in bot.last(MEMBER) and "保持不变" in bot.labels(MEMBER)


# --------------------------------------------------------------------------- a member's pledge


async def test_member_drafts_two_items_and_submits(bot):
    await bot.cmd(MEMBER, "pledge")
    text = bot.last(MEMBER)
    assert "党员公开承诺申报表" in text and "「农村」" in text
    assert "✓ 农村" in bot.labels(MEMBER) and "社区" in bot.labels(MEMBER)
    await bot.press(MEMBER, "社区")  # the roster is out of date: change it …
    await bot.cmd(MEMBER, "pledge")  # … and back, from the resumed post question
    assert "接着上次" in bot.messenger.texts(MEMBER)[-2]
    assert "保持不变" in bot.labels(MEMBER)
    await bot.press_data(MEMBER, bot.button(MEMBER, "保持不变"))
    ask = bot.last(MEMBER)
    assert "带头致富" not in ask  # category is 社区 now: its guidance, not the rural one
    assert "服务社区群众" in ask and "参考示例" in ask and "第1条" in ask
    # Back to 农村 through 修改 → 类别和岗位 later; first write the items.
    await write_item(bot, MEMBER, ITEM_1)
    overview = bot.last(MEMBER)
    assert "✅ 第1条已写好" in overview
    assert "带领本组5户农户发展花椒种植" in overview and "2026年12月31日" in overview
    assert "带头争创佳绩" in overview and "村文书" in overview and "张建国" in overview
    assert {"➕ 添加一条", "✏️ 修改", "🗑 删除", "📤 提交审核"} <= set(bot.labels(MEMBER))

    await bot.press(MEMBER, "添加一条")
    assert "第2条" in bot.last(MEMBER) and "参考示例" not in bot.last(MEMBER)  # guidance once
    await write_item(bot, MEMBER, ITEM_2)
    assert "✅ 第2条已写好" in bot.last(MEMBER) and "2026年11月30日" in bot.last(MEMBER)

    # Category and post through 修改
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "类别和岗位")
    assert "✓ 社区" in bot.labels(MEMBER)
    await bot.press(MEMBER, "农村")
    await bot.say(MEMBER, "村文书兼网格员")
    assert "类别和岗位已更新" in bot.last(MEMBER)
    assert "村文书兼网格员" in bot.last(MEMBER) and "类别：农村" in bot.last(MEMBER)

    pledge = await bot.pledge_of("member")
    assert pledge.category == "rural" and pledge.post == "村文书兼网格员"
    items = await bot.items(pledge.id)
    assert [i.content for i in items] == [ITEM_1["content"], ITEM_2["content"]]
    assert items[0].deadline == date(2026, 12, 31) and items[0].vanguard == "achieve"
    assert items[1].deadline == date(2026, 11, 30) and items[1].vanguard == "serve"

    await bot.press(MEMBER, "提交审核")
    text = bot.last(MEMBER)
    assert (
        "已提交审核" in text
        and "已送东江村党支部书记审核" in text
        and "党支部」党组织" not in text
    )
    assert "1名同支部党员互审" in text

    pledge = await bot.pledge_of("member")
    assert pledge.status is PledgeStatus.SUBMITTED
    assert await bot.count(PledgeSnapshot, PledgeSnapshot.pledge_id == pledge.id) == 1
    assert await bot.count(PeerRequest, PeerRequest.pledge_id == pledge.id) == 1
    # The cards were queued for the secretary and the peer, and go out with the outbox.
    cards = await bot.count(Outbox, Outbox.chat_id == SECRETARY, Outbox.dedup_key.like("card:%"))
    peers = await bot.count(Outbox, Outbox.chat_id == PEER, Outbox.dedup_key.like("peer:%"))
    assert cards == 1 and peers == 1
    await bot.worker.run_once()
    assert any("张建国" in t for t in bot.messenger.texts(SECRETARY))
    assert any("张建国" in t for t in bot.messenger.texts(PEER))
    state = await bot.state(MEMBER)
    assert state.dialog is None

    # /pledge now only says who reviews it.
    await bot.cmd(MEMBER, "pledge")
    assert "正在由东江村党支部书记审核" in bot.last(MEMBER)
    assert not bot.labels(MEMBER)


async def test_incomplete_and_slogan_items_are_refused_or_warned_then_fixed(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await bot.say(MEMBER, "爱岗敬业，无私奉献，全心全意为人民服务")
    await bot.say(MEMBER, "群众满意")
    await bot.say(MEMBER, "认真学习，努力工作，服务群众")
    assert "4/5" in bot.last(MEMBER)
    await bot.say(MEMBER, "尽快吧")
    assert "没看懂“尽快吧”" in bot.last(MEMBER)
    await bot.say(MEMBER, "2027年3月1日")
    assert "须在本年度公开承诺期间内" in bot.last(MEMBER)
    # Leave before the deadline is given: the draft stays as it is.
    await bot.cmd(MEMBER, "cancel")
    assert "草稿仍然保留" in bot.last(MEMBER)
    pledge = await bot.pledge_of("member")
    (item,) = await bot.items(pledge.id)
    assert item.deadline is None and item.goal == "群众满意"

    # Found: /pledge after /cancel showed the whole form; it goes on at the next question.
    await bot.cmd(MEMBER, "pledge")
    assert "接着上次" in bot.messenger.texts(MEMBER)[-2]
    assert "4/5 完成时限" in bot.last(MEMBER) and "申报表" not in bot.last(MEMBER)
    await bot.press(MEMBER, "返回申报表")
    overview = bot.last(MEMBER)
    assert "待完善：完成时限" in overview and "爱岗敬业" in overview
    await bot.press(MEMBER, "提交审核")
    blocked = bot.last(MEMBER)
    assert "必须修改" in blocked and "还没有完成时限" in blocked
    assert "口号" in blocked  # warnings are listed too
    assert (await bot.pledge_of("member")).status is PledgeStatus.DRAFT

    # Fix the deadline through 修改 → item → field.
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "1. 爱岗敬业")
    assert set(bot.labels(MEMBER)) >= {"承诺内容", "目标", "措施", "完成时限", "带头"}
    await bot.press(MEMBER, "完成时限")
    await bot.say(MEMBER, "6月30日")
    assert "✅ 第1条已修改" in bot.last(MEMBER) and "2026年6月30日" in bot.last(MEMBER)

    # Only warnings are left: the drafter may go back or submit anyway.
    await bot.press(MEMBER, "提交审核")
    warned = bot.last(MEMBER)
    assert "口号" in warned and "不好考核" in warned
    assert bot.labels(MEMBER) == ["仍然提交", "返回修改"]
    await bot.press(MEMBER, "返回修改")
    assert "党员创先争优活动公开承诺申报表" in bot.last(MEMBER)
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "1. 爱岗敬业")
    await bot.press(MEMBER, "承诺内容")
    assert "爱岗敬业" in bot.last(MEMBER)  # the current text is shown
    await bot.say(MEMBER, "帮助本组3户困难户发展养殖")
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "1. 帮助本组")
    await bot.press(MEMBER, "目标")
    await bot.say(MEMBER, "年底前每户出栏生猪5头，户均增收2000元")
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "1. 帮助本组")
    await bot.press(MEMBER, "措施")
    await bot.say(MEMBER, "每月上门1次，联系畜牧站免费防疫")
    await bot.press(MEMBER, "提交审核")
    assert "已提交审核" in bot.last(MEMBER)
    pledge = await bot.pledge_of("member")
    assert pledge.status is PledgeStatus.SUBMITTED


async def test_a_restart_resumes_at_the_pending_question(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await bot.say(MEMBER, ITEM_1["content"])
    assert "2/5 目标" in bot.last(MEMBER)

    fresh = Bot(bot.store, bot.people)  # a new process: nothing kept in memory
    await fresh.cmd(MEMBER, "pledge")
    texts = fresh.messenger.texts(MEMBER)
    assert "接着上次" in texts[-2] and "2/5 目标" in texts[-1]
    await fresh.say(MEMBER, ITEM_1["goal"])
    assert "3/5 措施" in fresh.last(MEMBER)

    again = Bot(bot.store, bot.people)  # and once more, answering straight away
    await again.say(MEMBER, ITEM_1["measures"])
    assert "4/5 完成时限" in again.last(MEMBER)
    pledge = await bot.pledge_of("member")
    (item,) = await bot.items(pledge.id)
    assert (item.content, item.goal, item.measures) == (
        ITEM_1["content"],
        ITEM_1["goal"],
        ITEM_1["measures"],
    )


async def test_cancel_keeps_the_draft_and_pledge_resumes_at_the_overview(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await write_item(bot, MEMBER, ITEM_1)
    await bot.press(MEMBER, "添加一条")
    await bot.cmd(MEMBER, "cancel")
    assert (await bot.state(MEMBER)).dialog is None
    pledge = await bot.pledge_of("member")
    assert len(await bot.items(pledge.id)) == 1  # no empty item was left behind

    await bot.say(MEMBER, "你好")  # outside the dialog: the general hint
    assert "/help" in bot.last(MEMBER)
    await bot.cmd(MEMBER, "pledge")
    assert "党员创先争优活动公开承诺申报表" in bot.last(MEMBER) and ITEM_1["content"] in bot.last(
        MEMBER
    )
    # Text typed while looking at the overview: a short hint and the buttons again.
    await bot.say(MEMBER, "这样行吗")
    assert "没有需要回答的问题" in bot.last(MEMBER)
    assert "📤 提交审核" in bot.labels(MEMBER)

    # Removing an item asks first, then removes it.
    await bot.press(MEMBER, "删除")
    await bot.press(MEMBER, "1. 带领本组")
    assert "确定删除第1条" in bot.last(MEMBER)
    await bot.press(MEMBER, "确定删除")
    assert "已删除第1条" in bot.last(MEMBER) and "还没有承诺事项" in bot.last(MEMBER)
    assert await bot.items(pledge.id) == []


async def test_oversize_and_empty_text_are_refused_and_nothing_is_written(bot):
    await start_member_draft(bot)
    await bot.say(MEMBER, "岗" * 129)
    assert "最多128字" in bot.last(MEMBER)
    await bot.say(MEMBER, "   ")
    assert "不能为空" in bot.last(MEMBER)
    await bot.press(MEMBER, "保持不变")
    await bot.say(MEMBER, "长" * 2001)
    assert "最多2000字" in bot.last(MEMBER)
    pledge = await bot.pledge_of("member")
    assert pledge.post == "村文书"
    assert await bot.items(pledge.id) == []
    await bot.say(MEMBER, ITEM_1["content"])
    await bot.say(MEMBER, "标" * 1001)
    assert "最多1000字" in bot.last(MEMBER)
    (item,) = await bot.items(pledge.id)
    assert item.goal == ""
    assert "2/5 目标" not in bot.last(MEMBER)
    await bot.say(MEMBER, ITEM_1["goal"])
    assert "3/5 措施" in bot.last(MEMBER)


# --------------------------------------------------------------------------- stale buttons


async def test_a_button_from_an_older_version_is_refused_and_changes_nothing(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await write_item(bot, MEMBER, ITEM_1)
    await write_item_via_add(bot, ITEM_2)
    old_add = bot.button(MEMBER, "添加一条")
    old_remove = bot.button(MEMBER, "删除")
    await bot.press(MEMBER, "提交审核")
    pledge = await bot.pledge_of("member")
    assert pledge.status is PledgeStatus.SUBMITTED and pledge.version == 1

    # Submitted: the old overview's buttons do nothing.
    outbox_before = await bot.count(Outbox)
    await bot.press_data(MEMBER, old_add)
    assert "已过期" in bot.toasts[-1]
    assert await bot.count(Outbox) == outbox_before
    assert (await bot.state(MEMBER)).dialog is None

    # The secretary returns it; /pledge reopens it as version 2.
    async with bot.store.write() as s:
        actor = await load_actor(s, bot.people.ids["secretary"])
        await review_domain.decide(
            s,
            actor,
            pledge.id,
            1,
            Verdict.RETURN,
            codec=bot.core.codec,
            reasons=[Criterion.ADVANCED],
        )
    await bot.cmd(MEMBER, "pledge")
    assert "第2版" in bot.last(MEMBER)
    pledge = await bot.pledge_of("member")
    assert (pledge.status, pledge.version) == (PledgeStatus.DRAFT, 2)

    # A draft again, but the version-1 buttons stay refused.
    state_before = await bot.state(MEMBER)
    for data in (old_add, old_remove):
        await bot.press_data(MEMBER, data)
        assert "已过期" in bot.toasts[-1]
    state_after = await bot.state(MEMBER)
    assert (state_after.step, state_after.data) == (state_before.step, state_before.data)
    assert len(await bot.items(pledge.id)) == 2

    # The current buttons work.
    await bot.press(MEMBER, "添加一条")
    assert "第3条" in bot.last(MEMBER)


async def write_item_via_add(bot: Bot, item: dict) -> None:
    await bot.press(MEMBER, "添加一条")
    await write_item(bot, MEMBER, item)


async def test_a_button_for_a_removed_item_is_refused(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await write_item(bot, MEMBER, ITEM_1)
    await bot.press(MEMBER, "修改")
    pick = bot.button(MEMBER, "1. 带领本组")
    await bot.press(MEMBER, "删除")
    await bot.press(MEMBER, "1. 带领本组")
    await bot.press(MEMBER, "确定删除")
    await bot.press_data(MEMBER, pick)
    assert "已过期" in bot.toasts[-1]


# --------------------------------------------------------------------------- an organization's


async def test_village_secretary_completes_the_basic_pledge_before_submitting(bot):
    await bot.cmd(SECRETARY, "pledge")
    assert set(bot.labels(SECRETARY)) == {"我本人的承诺", "「东江村党支部」的承诺"}
    await bot.say(SECRETARY, "组织的")
    assert "请点击下方按钮选择" in bot.last(SECRETARY)
    await bot.press(SECRETARY, "「东江村党支部」的承诺")
    overview = bot.last(SECRETARY)
    assert "基层党组织创先争优活动公开承诺申报表" in overview
    assert "书记：李书记" in overview and "党员人数：3名" in overview
    assert overview.count("（基本承诺）") == 3 and "待完善" in overview
    assert "请先完善基本承诺" in overview
    labels = bot.labels(SECRETARY)
    assert "📝 完善基本承诺" in labels and "🗑 删除" not in labels

    pledge = await bot.pledge_of(org_key="village")
    items = await bot.items(pledge.id)
    assert [i.basic for i in items] == [True, True, True]

    # Not before the blanks are filled.
    await bot.press(SECRETARY, "提交审核")
    assert "待填写的内容" in bot.last(SECRETARY)
    assert (await bot.pledge_of(org_key="village")).status is PledgeStatus.DRAFT

    # Basic items cannot be removed, nor their content changed, even with a well-formed button.
    codec = bot.core.codec
    for cb in (
        dialog.DraftCb(dialog.Act.PICK_REMOVE, pledge.id, pledge.version, items[0].id),
        dialog.DraftCb(dialog.Act.CONFIRM_REMOVE, pledge.id, pledge.version, items[1].id),
        dialog.FieldCb(pledge.id, pledge.version, items[2].id, dialog.ItemField.CONTENT),
    ):
        await bot.press_data(SECRETARY, codec.encode(cb))
        assert "基本承诺" in bot.toasts[-1] and "不能删除" in bot.toasts[-1]
    assert len(await bot.items(pledge.id)) == 3
    assert "🗑 删除" not in bot.labels(SECRETARY)
    await bot.press_data(
        SECRETARY, codec.encode(dialog.DraftCb(dialog.Act.REMOVE, pledge.id, pledge.version))
    )
    assert "没有可以删除的事项" in bot.last(SECRETARY)

    # Fill every blank, one question at a time.
    await bot.press(SECRETARY, "完善基本承诺")
    answers = iter(["每月", "村委会公开栏", "5", "2", "周一至周五，村干部轮流坐班"])
    phones = iter(["张三13900000001", "李四13900000002", "0939-1234567"])
    for _ in range(20):
        text = bot.last(SECRETARY)
        if "请填写【" in text:
            reply = next(answers) if "村干部姓名" not in text and "电话" not in text else None
            await bot.say(SECRETARY, reply or next(phones))
        elif "还没有完成时限" in text:
            await bot.say(SECRETARY, "年底")
        else:
            break
    overview = bot.last(SECRETARY)
    assert "✅ 基本承诺已完善" in overview and "待完善" not in overview
    assert "每月公开一次村务" in overview and "0939-1234567" in overview
    items = await bot.items(pledge.id)
    assert all("【" not in i.goal + i.measures for i in items)
    assert all(i.deadline == date(2026, 12, 31) for i in items)

    await bot.press(SECRETARY, "提交审核")
    text = bot.last(SECRETARY)
    assert "已提交审核" in text and "已送上级党组织（城关镇）审核" in text
    assert "审核人审核" not in text
    pledge = await bot.pledge_of(org_key="village")
    assert pledge.status is PledgeStatus.SUBMITTED and pledge.review_role == "reviewer"
    assert await bot.count(Outbox, Outbox.chat_id == REVIEWER, Outbox.dedup_key.like("card:%"))


async def test_secretary_own_pledge_is_separate(bot):
    await bot.cmd(SECRETARY, "pledge")
    await bot.press(SECRETARY, "我本人的承诺")
    assert "党员公开承诺申报表" in bot.last(SECRETARY) and "没有您的类别" in bot.last(SECRETARY)
    own = await bot.pledge_of("secretary")
    assert own.owner_kind is OwnerKind.MEMBER
    assert await bot.pledge_of(org_key="village") is None


# --------------------------------------------------------------------------- languages, codec


async def test_the_dialog_in_english(bot):
    await bot.cmd(MEMBER, "lang", "en")
    await bot.cmd(MEMBER, "pledge")
    await bot.press(MEMBER, "✓ Rural")
    await bot.press(MEMBER, "Keep it")
    assert "Example" in bot.last(MEMBER)
    await bot.say(MEMBER, "Teach 5 households to grow pepper")
    await bot.say(MEMBER, "Each household plants 2 mu more by the end of the year")
    await bot.say(MEMBER, "Training once a quarter with the township technicians")
    # Found: "end of June" was not understood like "end of year".
    await bot.say(MEMBER, "end of june")
    assert "could not read" not in bot.last(MEMBER)
    await bot.press(MEMBER, "Lead in achievement")
    pledge = await bot.pledge_of("member")
    (item,) = await bot.items(pledge.id)
    assert item.deadline == date(2026, 6, 30)
    await bot.press(MEMBER, "Submit for review")
    texts = bot.messenger.texts(MEMBER)
    assert "Submitted for review" in texts[-1]
    for text in texts:
        # Only names from the roster and the campaign are Chinese.
        rest = text
        for name in (
            "武都区城关镇东江村党支部",
            "东江村党支部",
            "张建国",
            "2026年度公开承诺",
        ):
            rest = rest.replace(name, "")
        rest = rest.replace("村文书", "")
        assert not HAN.search(rest), text


async def test_a_member_without_a_campaign_is_told(bot):
    async with bot.store.write() as s:
        for camp in (await s.exec(select(Campaign))).all():
            camp.active = False
            s.add(camp)
    await bot.cmd(MEMBER, "pledge")
    assert "没有进行中的公开承诺活动" in bot.last(MEMBER)
    assert await bot.count(Pledge) == 0


def test_callback_data_fits_with_large_ids():
    big = 2**40
    codec = build_core(None, secret=SECRET).codec
    for cb in (
        dialog.TargetCb(OwnerKind.MEMBER, big),
        dialog.DraftCb(dialog.Act.CONFIRM_REMOVE, big, 999, big),
        dialog.FieldCb(big, 999, big, dialog.ItemField.MEASURES),
        dialog.CategoryCb(big, 999, Category.ENTERPRISE),
        dialog.VanguardCb(big, 999, big, dialog.Vanguard.ACHIEVE),
    ):
        data = codec.encode(cb)
        assert len(data.encode()) <= MAX_BYTES
        assert codec.decode(data) == cb


def test_the_dialog_knows_the_domain_vocabulary():
    assert tuple(v.value for v in dialog.Vanguard) == propose.VANGUARDS
    assert {f.value for f in dialog.ItemField} == {*propose.ITEM_FIELDS, "deadline", "vanguard"}


async def test_a_published_pledge_is_shown_not_reopened(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await write_item(bot, MEMBER, ITEM_1)
    await bot.press(MEMBER, "提交审核")
    pledge = await bot.pledge_of("member")
    async with bot.store.write() as s:
        actor = await load_actor(s, bot.people.ids["secretary"])
        await review_domain.decide(
            s, actor, pledge.id, 1, Verdict.APPROVE, codec=bot.core.codec, confirmed=True
        )
    await bot.cmd(MEMBER, "pledge")
    text = bot.last(MEMBER)
    assert "已公示" in text and ITEM_1["content"] in text and "2026年12月31日" in text
    assert not bot.labels(MEMBER)
    pledge = await bot.pledge_of("member")
    assert (pledge.status, pledge.version) == (PledgeStatus.PUBLISHED, 1)
