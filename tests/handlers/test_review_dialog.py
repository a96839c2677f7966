"""The review dialogs through the core, the outbox and an editing transcript.

A card's questions (are the five criteria met? what is the reason?) are asked once, on the card
itself; the long card's 全文 sends the whole form; /mine shows times in the campaign's zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from campaign import propose
from campaign import review as review_domain
from campaign.access import load_actor
from models import Member, OwnerKind, Pledge, PledgeSnapshot, PledgeStatus, Review, Role, RoleGrant
from tests.chat import MEMBER, PEER, SECRETARY, ChatBot
from tests.conftest import a_campaign, seed_people

NOW = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
ITEM = {
    "content": "为本组8户留守老人上门帮办代办",
    "goal": "每户每月上门1次，全年不少于96次",
    "measures": "建立联系卡，每月第一个周六上门，帮助代购、代缴、陪同就医",
    "deadline": "2026-11-30",
}
ALL_FIVE = ["sci", "adv", "use", "post", "pub"]


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        fourth = Member(name="刘桂兰", phone="13800000009", org_id=people.orgs["village"])
        s.add(fourth)
        await s.flush()
        people.ids["fourth"] = fourth.id
        s.add(RoleGrant(member_id=fourth.id, role=Role.MEMBER, org_id=people.orgs["village"]))
    b = ChatBot(store, people, lambda: NOW, editing=True)
    for chat in (MEMBER, SECRETARY, PEER):
        await b.bind(chat)
    return b


async def submit(bot: ChatBot, key: str, items: list[dict] | None = None) -> int:
    """Submit the pledge of the member ``key`` through the domain; return its id."""
    async with bot.store.write() as s:
        actor = await load_actor(s, bot.people.ids[key])
        (target,) = [t for t in await propose.targets(s, actor) if t.owner is OwnerKind.MEMBER]
        pledge = await propose.open_draft(s, actor, target, today=NOW.date(), render=str)
        for fields in items or [ITEM]:
            item = await propose.add_item(s, actor, pledge.id)
            for name, value in fields.items():
                await propose.set_item_field(s, actor, pledge.id, item.id, name, value, year=2026)
        await review_domain.submit(s, actor, pledge.id, today=NOW.date(), codec=bot.core.codec)
        pledge_id = pledge.id
    await bot.worker.run_once()
    return pledge_id


async def status(bot: ChatBot, pledge_id: int) -> PledgeStatus:
    async with bot.store.read() as s:
        return (await s.get(Pledge, pledge_id)).status


def secretary_messages(bot: ChatBot) -> int:
    return sum(1 for c, _ in bot.messenger.sent if c == SECRETARY)


async def test_approve_without_ticks_asks_once_then_approves(bot):
    pid = await submit(bot, "member")
    sent = secretary_messages(bot)
    await bot.press(SECRETARY, "通过")
    card = bot.last(SECRETARY)
    assert card.count("五项标准都符合吗？") == 1 and "☐符合科学发展观要求" in card
    assert bot.labels(SECRETARY) == ["✅ 符合，通过", "⬅️ 返回"]
    assert secretary_messages(bot) == sent  # the card was edited; nothing else was said
    assert await status(bot, pid) is PledgeStatus.SUBMITTED
    await bot.press(SECRETARY, "返回")  # back to the card, nothing decided
    assert "通过" in " ".join(bot.labels(SECRETARY)) and "五项标准" not in bot.last(SECRETARY)
    await bot.press(SECRETARY, "✅ 通过")
    await bot.press(SECRETARY, "符合，通过")
    assert bot.toasts[-1] == "已确认，承诺将予以公示。"
    assert await status(bot, pid) is PledgeStatus.PUBLISHED
    card = [t for t in bot.messenger.texts(SECRETARY) if t.startswith("【承诺审核】")][-1]
    assert re.search(r"✅ 已确认：李书记，\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}\n", card + "\n")
    (decision,) = await bot.rows(Review, Review.kind == "decision")
    assert decision.criteria == ALL_FIVE
    assert secretary_messages(bot) - sent == 1  # the 公示群 hint only; the card was edited


async def test_five_ticks_approve_in_one_tap(bot):
    pid = await submit(bot, "member")
    for label in ("科学发展", "先进性", "有利于工作", "岗位职责", "群众意愿"):
        await bot.press(SECRETARY, label)
    await bot.press(SECRETARY, "✅ 通过")
    assert await status(bot, pid) is PledgeStatus.PUBLISHED


async def test_the_reason_is_asked_once_and_must_say_something(bot):
    pid = await submit(bot, "member")
    await bot.press(SECRETARY, "科学发展")  # ticked as met: not offered as a reason
    sent = secretary_messages(bot)
    await bot.press(SECRETARY, "退回修改")
    assert secretary_messages(bot) == sent  # asked on the card only
    assert bot.last(SECRETARY).count("退回理由") == 1 and "请选择不符合的标准" in bot.last(
        SECRETARY
    )
    assert "不符合科学发展观要求" not in bot.labels(SECRETARY)
    assert "先进性不够，等同一般工作要求" in bot.labels(SECRETARY)
    await bot.say(SECRETARY, "不行")
    assert "至少写4个字" in bot.last(SECRETARY)
    assert await status(bot, pid) is PledgeStatus.SUBMITTED
    await bot.say(SECRETARY, "请写明每月上门的具体时间")
    assert bot.last(SECRETARY) == "已退回修改，理由已转告承诺人。"
    assert await status(bot, pid) is PledgeStatus.RETURNED
    notice = bot.last(MEMBER)
    assert "被退回修改" in notice and "请写明每月上门的具体时间" in notice
    (decision,) = await bot.rows(Review, Review.kind == "decision")
    assert decision.opinion == "请写明每月上门的具体时间" and decision.criteria == ["sci"]


async def test_a_long_cards_full_text_sends_the_whole_form(bot):
    long = {
        "content": "组织本组党员开展花椒种植技术培训" * 60,
        "goal": "全年培训不少于12次，覆盖本组全部农户" * 40,
        "measures": "联系镇农技站技术员来村授课并上门指导" * 90,
        "deadline": "2026-11-30",
    }
    await submit(bot, "member", [long, long])
    card = bot.last(SECRETARY)
    assert len(card) <= 4096 and "…" in card and "📄 全文" in bot.labels(SECRETARY)
    sent = secretary_messages(bot)
    await bot.press(SECRETARY, "全文")
    (full,) = bot.messenger.texts(SECRETARY)[sent:]  # ordinary messages: the adapter splits
    assert "党员创先争优活动公开承诺申报表" in full
    assert full.count(long["measures"]) == 2 and full.count(long["content"]) == 2
    assert not [m for c, m in bot.messenger.sent[-1:] if m.buttons]
    # someone who was never shown the pledge cannot have it sent
    async with bot.store.read() as s:
        pledge = (await s.exec(select(Pledge))).one()
        stranger = await load_actor(s, bot.people.ids["fourth"])
        assert not await review_domain.may_read(s, stranger, pledge, 1)
        secretary = await load_actor(s, bot.people.ids["secretary"])
        assert await review_domain.may_read(s, secretary, pledge, 1)


async def test_mine_shows_times_in_the_campaigns_zone(bot):
    pid = await submit(bot, "member")
    async with bot.store.write() as s:
        snap = (await s.exec(select(PledgeSnapshot).where(PledgeSnapshot.pledge_id == pid))).one()
        snap.submitted_at = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)  # 3 Dec, 01:05 in Shanghai
        s.add(snap)
    await bot.cmd(MEMBER, "mine")
    text = bot.last(MEMBER)
    assert "第1版 2026年12月3日 01:05 提交" in text and "2026-" not in text
    assert "2026年11月30日前" in text


async def test_a_secretary_reviews_three_pledges(bot):
    """The figures for the issue: taps and messages of a secretary approving three pledges."""
    for key in ("member", "peer", "fourth"):
        await submit(bot, key)
    mark, edits, bot.taps = len(bot.messenger.sent), len(bot.messenger.edits), 0
    await bot.cmd(SECRETARY, "review")
    await bot.worker.run_once()
    cards = [
        str(i + 1)
        for i, (c, m) in enumerate(bot.messenger.sent)
        if i >= mark and c == SECRETARY and m.text.startswith("【承诺审核】")
    ]
    assert len(cards) == 3
    for message_id in cards:
        data = next(
            b.data
            for row in bot.messenger.sent[int(message_id) - 1][1].buttons
            for b in row
            if "通过" in b.text
        )
        await bot.press_data(SECRETARY, data, message_id)
        confirm, asked = bot.find(SECRETARY, "符合，通过")
        assert asked == message_id  # the question is the card itself
        await bot.press_data(SECRETARY, confirm, asked)
        await bot.worker.run_once()
    sent = [m.text for c, m in bot.messenger.sent[mark:] if c == SECRETARY]
    edited = [m for c, m in bot.messenger.edits[edits:] if c == SECRETARY]
    print(
        f"\nreview of 3 pledges: {bot.taps} taps, {len(sent)} messages to the secretary "
        f"({sum(t.startswith('【承诺审核】') for t in sent)} cards), {len(edited)} edits"
    )
    assert bot.taps == 6 and sum(t.startswith("【承诺审核】") for t in sent) == 3
    assert len(await bot.rows(Review, Review.kind == "decision")) == 3
