"""The drafting dialog without dead ends: few taps, only what changed, standing duties, units."""
# ruff: noqa: F811 — ``bot`` is the fixture imported from the dialog tests

from __future__ import annotations

from datetime import date

from campaign import fulfil, propose
from models import Campaign, PledgeItem, PledgeStatus
from tests.chat import MEMBER, SECRETARY
from tests.handlers.test_pledge_dialog import (  # noqa: F401 — the fixture
    ITEM_1,
    ITEM_2,
    bot,
    start_member_draft,
    write_item,
)


async def two_items(bot) -> None:
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await write_item(bot, MEMBER, ITEM_1)
    await bot.press(MEMBER, "添加一条")
    await write_item(bot, MEMBER, ITEM_2)


async def test_the_guidance_comes_once_per_pledge(bot):
    await two_items(bot)
    shown = [t for t in bot.messenger.texts(MEMBER) if "参考示例" in t]
    assert len(shown) == 1 and "第1条" in shown[0]


async def test_changing_one_field_takes_three_taps_and_sends_back_only_that_item(bot):
    await two_items(bot)
    taps = bot.taps
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "2. 为本组")
    await bot.press(MEMBER, "目标")
    assert bot.taps - taps == 3
    await bot.say(MEMBER, "每户每月上门2次，全年不少于192次")
    reply = bot.last(MEMBER)
    assert "✅ 第2条已修改" in reply and "全年不少于192次" in reply
    # Found: the whole form came back; now only the changed item, with the buttons.
    assert "申报表" not in reply.split("/pledge")[0] and ITEM_1["content"] not in reply
    assert {"➕ 添加一条", "✏️ 修改", "📤 提交审核"} <= set(bot.labels(MEMBER))
    # the 带头 of an item changes the same way, by its button
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, "1. 带领本组")
    await bot.press(MEMBER, "带头")
    await bot.press(MEMBER, "带头学习提高")
    reply = bot.last(MEMBER)
    assert "✅ 第1条已修改" in reply and "带头学习提高" in reply
    assert ITEM_2["content"] not in reply


async def test_a_new_item_resumed_skips_what_is_already_answered(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    await bot.say(MEMBER, ITEM_1["content"])
    await bot.say(MEMBER, ITEM_1["goal"])
    await bot.cmd(MEMBER, "cancel")
    await bot.cmd(MEMBER, "pledge")
    assert "3/5" in bot.last(MEMBER)  # the measures: the next question nobody answered
    await bot.say(MEMBER, ITEM_1["measures"])
    assert "4/5" in bot.last(MEMBER)


async def test_only_standing_duties_may_be_kept_standing(bot):
    await start_member_draft(bot)
    await bot.press(MEMBER, "保持不变")
    for field in ("content", "goal", "measures"):
        await bot.say(MEMBER, ITEM_1[field])
    assert "长期坚持" not in bot.labels(MEMBER)
    await bot.say(MEMBER, "长期")
    assert "只有基本承诺中长期坚持的事项" in bot.last(MEMBER)
    pledge = await bot.pledge_of("member")
    (item,) = await bot.items(pledge.id)
    assert item.deadline is None and not item.standing


async def test_standing_duties_of_the_basic_pledge_and_no_doubled_units(bot):
    await bot.cmd(SECRETARY, "pledge")
    await bot.press(SECRETARY, "「东江村党支部」的承诺")
    await bot.press(SECRETARY, "完善基本承诺")
    answers = iter(["每月", "村委会公开栏", "5天", "2天", "周一至周五，村干部轮流坐班"])
    phones = iter(["张三13900000001", "李四13900000002", "0939-1234567"])
    standing_offered = 0
    for _ in range(20):
        text = bot.last(SECRETARY)
        if "请填写【" in text:
            reply = next(answers) if "村干部姓名" not in text and "电话" not in text else None
            await bot.say(SECRETARY, reply or next(phones))
        elif "还没有完成时限" in text:
            standing_offered += "♾ 长期坚持" in bot.labels(SECRETARY)
            if standing_offered == 1:
                await bot.press(SECRETARY, "长期坚持")
            else:
                await bot.say(SECRETARY, "长期")
        else:
            break
    assert standing_offered == 3  # 公开村务, 到村坐班, 公示电话 are all standing duties
    overview = bot.last(SECRETARY)
    assert "✅ 基本承诺已完善" in overview and "待完善" not in overview
    assert overview.count("完成时限：长期") == 3
    pledge = await bot.pledge_of(org_key="village")
    items = await bot.items(pledge.id)
    assert all(i.standing and i.deadline is None for i in items)
    # Found: "5" typed as "5天" into "【…】天" gave "5天天".
    assert "每周到村坐班5天，" in items[1].goal and "天天" not in items[1].goal
    assert "每周到村坐班2天" in items[1].goal

    await bot.press(SECRETARY, "提交审核")
    assert "已提交审核" in bot.last(SECRETARY)  # no "还没有完成时限" for a standing duty

    # Published and a year later: a standing duty is never overdue.
    async with bot.store.write() as s:
        stored = await s.get(type(pledge), pledge.id)
        stored.status = PledgeStatus.PUBLISHED
        s.add(stored)
        camp = await s.get(Campaign, pledge.campaign_id)
        assert await fulfil.overdue_items(s, camp, date(2027, 6, 1)) == []
        first = await s.get(PledgeItem, items[0].id)
        first.standing, first.deadline = False, date(2026, 6, 30)
        s.add(first)
        await s.flush()
        assert [i.id for i, _ in await fulfil.overdue_items(s, camp, date(2027, 6, 1))] == [
            first.id
        ]


def test_fill_placeholder_keeps_one_unit():
    text = "村干部每周到村坐班【天数】天，驻村干部每周【次数】次"
    assert (
        propose.fill_placeholder(text, "天数", "5天")
        == "村干部每周到村坐班5天，驻村干部每周【次数】次"
    )
    assert (
        propose.fill_placeholder(text, "天数", "5")
        == "村干部每周到村坐班5天，驻村干部每周【次数】次"
    )
    assert propose.fill_placeholder(text, "次数", "3 次").endswith("每周3次")
    assert propose.fill_placeholder("【周期】公开一次", "周期", "每月") == "每月公开一次"
    assert propose.fill_placeholder("第【号】号", "号", "1") == "第1号"


def test_deadline_words_in_both_languages():
    for text in ("end of June", "the end of june", "by the end of June", "June end", "6月底"):
        assert propose.parse_deadline(text, 2027) == date(2027, 6, 30), text
    assert propose.parse_deadline("June 15th", 2027) == date(2027, 6, 15)
    assert propose.parse_deadline("15 June 2028", 2027) == date(2028, 6, 15)
    assert propose.parse_deadline("end of year", 2027) == date(2027, 12, 31)
    assert propose.parse_deadline("年底前", 2027) == date(2027, 12, 31)
    assert propose.parse_deadline("10月底前", 2027) == date(2027, 10, 31)
    assert propose.parse_deadline("end of Juneish", 2027) is None
    assert propose.parse_deadline("February 30", 2027) is None
    assert propose.means_standing("长期") and propose.means_standing(" Ongoing ")
    assert not propose.means_standing("长期以来坚持")


async def test_filling_the_basic_pledge_resumes_at_the_next_blank(bot):
    await bot.cmd(SECRETARY, "pledge")
    await bot.press(SECRETARY, "「东江村党支部」的承诺")
    await bot.cmd(SECRETARY, "cancel")
    await bot.cmd(SECRETARY, "pledge")
    await bot.press(SECRETARY, "「东江村党支部」的承诺")
    assert "申报表" in bot.last(SECRETARY)  # nothing filled yet: the form with its todo
    await bot.press(SECRETARY, "完善基本承诺")
    await bot.say(SECRETARY, "每月")
    await bot.say(SECRETARY, "村委会公开栏")
    assert "还没有完成时限" in bot.last(SECRETARY)
    await bot.cmd(SECRETARY, "cancel")
    await bot.cmd(SECRETARY, "pledge")
    await bot.press(SECRETARY, "「东江村党支部」的承诺")
    assert "接着上次" in bot.messenger.texts(SECRETARY)[-2]
    assert "还没有完成时限" in bot.last(SECRETARY)
