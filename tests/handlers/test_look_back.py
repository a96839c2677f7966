"""回头看 with a controlled clock, in chat: started at an item's deadline or when crossed off,
the owner's one tap and note, two branch-mates' opinions, one group poll per organization per
week, and a decision that consolidates (长效机制 in the group) or opens 限期整改."""

from __future__ import annotations

from datetime import date

import pytest

from campaign import look_back
from models import (
    GroupLink,
    LookBack,
    LookBackOpinion,
    LookBackState,
    Outbox,
    OwnerAnswer,
    Pledge,
    PledgeItem,
    PledgeStatus,
    Poll,
    PollStatus,
)
from models.lookback import satisfied
from models.pledge import OwnerKind
from models.progress import Rectification
from tests.chat import MEMBER, PEER, SECRETARY
from tests.conftest import a_campaign, seed_people
from tests.handlers.test_polls import GROUP, Bot, at


@pytest.mark.parametrize(
    ("owner", "votes", "ok"),
    [
        (OwnerAnswer.YES, {"satisfied": 2, "basic": 0, "dissatisfied": 1}, True),  # 2/3 exactly
        (OwnerAnswer.YES, {"satisfied": 1, "basic": 0, "dissatisfied": 1}, False),
        (OwnerAnswer.PARTLY, {"satisfied": 0, "basic": 4, "dissatisfied": 2}, True),
        (OwnerAnswer.NO, {"satisfied": 9, "basic": 0, "dissatisfied": 0}, False),
        (OwnerAnswer.YES, {}, True),
        (None, {}, False),
    ],
)
def test_the_satisfied_rule(owner, votes, ok):
    assert satisfied("2/3", owner, votes)[0] is ok


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        camp = a_campaign(people, 2027, date(2027, 1, 10))
        s.add(camp)
        await s.flush()
        s.add(
            GroupLink(
                platform="test",
                chat_id=GROUP,
                org_id=people.orgs["village"],
                linked_by=people.ids["secretary"],
            )
        )
        ids = {}
        for key, items in (
            ("member", [("A", date(2027, 3, 15), None), ("D", date(2027, 3, 16), None)]),
            ("peer", [("C", date(2027, 6, 30), date(2027, 3, 10))]),
        ):
            pledge = Pledge(
                campaign_id=camp.id,
                owner_kind=OwnerKind.MEMBER,
                org_id=people.orgs["village"],
                owner_member_id=people.ids[key],
                drafted_by=people.ids[key],
                status=PledgeStatus.PUBLISHED,
                published_at=at(2027, 2, 1),
            )
            s.add(pledge)
            await s.flush()
            for content, deadline, done in items:
                item = PledgeItem(
                    pledge_id=pledge.id, content=f"事项{content}", deadline=deadline, done_on=done
                )
                s.add(item)
                await s.flush()
                ids[content] = item.id
    b = Bot(store, people)
    b.items = ids
    for chat in (MEMBER, SECRETARY, PEER):
        await b.bind(chat)
    b.messenger.sent.clear()
    return b


async def lookback_of(bot, item_key):
    (lb,) = await bot.rows(LookBack, LookBack.item_id == bot.items[item_key])
    return lb


async def test_a_look_back_consolidates_or_rectifies(bot):
    # 12 March: the crossed-off item C starts its look-back and goes into this week's poll.
    await bot.tick(at(2027, 3, 12))
    assert "事项C" in bot.last(PEER) and "做到了吗" in bot.last(PEER)
    c = await lookback_of(bot, "C")
    opinions = await bot.rows(LookBackOpinion, LookBackOpinion.lookback_id == c.id)
    assert {o.member_id for o in opinions} == {
        bot.people.ids["member"],
        bot.people.ids["secretary"],
    }
    (poll,) = await bot.rows(Poll)
    assert poll.purpose == "lookback" and poll.item_ids == [bot.items["C"]]
    # the owner: one tap and a note; the branch-mates: one tap each
    await bot.press(PEER, "做到了")
    assert "已记录：做到了" in bot.toasts[-1]
    await bot.say(PEER, "已帮助5户销售花椒3吨")
    assert "已记录，谢谢" in bot.last(PEER)
    for chat in (MEMBER, SECRETARY):
        await bot.press(chat, "基本满意")
    assert "已记录您的意见" in bot.toasts[-1]
    # the public votes in the group's poll (anonymous totals, as the platform reports them)
    (sent,) = await bot.rows(Outbox, Outbox.dedup_key == f"poll:{poll.id}:send")
    await bot.poll_update(sent.sent_message_id.split(":")[1], (2, 1, 0))

    # 15 March (a new week): item A is due; one poll for the organization this week …
    await bot.tick(at(2027, 3, 15))
    a = await lookback_of(bot, "A")
    polls = await bot.rows(Poll)
    assert len(polls) == 2 and polls[1].item_ids == [bot.items["A"]]
    # … so item D, due on the 16th, waits for next week's poll
    await bot.tick(at(2027, 3, 16))
    d = await lookback_of(bot, "D")
    assert d.poll_id is None and len(await bot.rows(Poll)) == 2
    # A's owner answers 没做到 (and adds nothing)
    await bot.press_data(MEMBER, card_button(bot, MEMBER, "事项A", "没做到"))
    await bot.cmd(MEMBER, "cancel")
    await bot.tick(at(2027, 3, 22))
    d = await lookback_of(bot, "D")
    assert d.poll_id is not None and len(await bot.rows(Poll)) == 3

    # C's poll has had its seven days and was closed; by the tick of the 22nd the decision
    # cards of C and A are with the secretary.
    await bot.poll_update("not-ours", (2, 1, 0))
    rows = await bot.rows(Poll, Poll.id == c.poll_id)
    assert rows[0].status is PollStatus.CLOSED
    cards = [t for t in bot.messenger.texts(SECRETARY) if "回头看·请决定" in t]
    assert any("事项C" in t and "按规则为“满意”" in t for t in cards)
    assert any("事项C" in t and "满意2、基本满意3、不满意0" in t for t in cards)
    await bot.press_data(SECRETARY, card_button(bot, SECRETARY, "事项C", "巩固销号"))
    await bot.say(SECRETARY, "每月第一个周六固定回访，纳入村规民约")
    assert "已巩固销号" in bot.last(SECRETARY)
    c = await lookback_of(bot, "C")
    assert c.state is LookBackState.CONSOLIDATED and c.mechanism.startswith("每月第一个周六")
    assert any("长效机制：每月第一个周六固定回访" in t for t in bot.messenger.texts(GROUP))
    states = await _states(bot)
    assert states[bot.items["C"]]["state"] == "consolidated"

    # Item A: the owner says 没做到 → not satisfied; the secretary records the cause and the
    # rectification opens through the existing flow.
    card = [t for t in bot.messenger.texts(SECRETARY) if "事项A" in t and "请决定" in t]
    assert card and "本人：没做到" in card[-1] and "按规则为“不满意”" in card[-1]
    await bot.press_data(SECRETARY, card_button(bot, SECRETARY, "事项A", "限期整改"))
    await bot.say(SECRETARY, "销路未落实，群众意见较大")
    assert "整改期限" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "2027-04-30")
    (rect,) = await bot.rows(Rectification)
    assert rect.item_id == bot.items["A"] and rect.reason == "销路未落实，群众意见较大"
    a = await lookback_of(bot, "A")
    assert a.state is LookBackState.RECTIFY
    # decided: further taps change nothing
    await bot.press_data(SECRETARY, card_button(bot, SECRETARY, "事项A", "巩固销号"))
    assert "已经处理过了" in bot.toasts[-1]
    # nothing is asked twice after a re-run or a restart
    before = len(bot.messenger.sent)
    await bot.tick(at(2027, 3, 23, 15))
    assert len(bot.messenger.sent) == before


async def _states(bot):
    async with bot.store.read() as s:
        return await look_back.states(s, list(bot.items.values()))


def card_button(bot, chat, needle, label):
    """Return the data of the button ``label`` on the newest message in ``chat`` with ``needle``."""
    for c, message in reversed(bot.messenger.sent):
        if c == chat and needle in message.text:
            for row in message.buttons:
                for b in row:
                    if label in b.text:
                        return b.data
    raise AssertionError(f"no {label!r} on a message with {needle!r}")
