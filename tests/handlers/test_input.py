"""Input at the boundary, through the core: normalized text, refusals, content the bot can't read.

Each "Found:" of the issue has a test here that failed before the normalizer existed: a lone
surrogate at a dialog step (the apology, and the person lost their place), NUL (a crash on
PostgreSQL, stored on SQLite), and invisible or control characters stored as they came.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from handlers.events import (
    ChatType,
    CommandReceived,
    PhotoReceived,
    TextReceived,
    Unsupported,
    UnsupportedReceived,
)
from models import Category, DialogState, Member, Pledge, PledgeItem
from templates import catalog
from tests.chat import MEMBER, PEER, REVIEWER, SECRETARY, ChatBot, sender
from tests.conftest import a_campaign, seed_people
from tests.garbage import garbage

NOW = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
APOLOGY = catalog().render("error.unexpected", "zh_CN")


def refused_text() -> str:
    return catalog().render("input.refused", "zh_CN", in_dialog=True)


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        member = await s.get(Member, people.ids["member"])
        member.category = Category.RURAL
        member.post = "村文书"
        s.add(member)
    b = ChatBot(store, people, lambda: NOW)
    for chat in (MEMBER, SECRETARY, PEER, REVIEWER):
        await b.bind(chat)
    b.messenger.sent.clear()
    return b


async def place(bot: ChatBot, chat: str) -> tuple:
    async with bot.store.read() as s:
        row = (await s.exec(select(DialogState).where(DialogState.user_id == chat))).first()
    return (row.dialog, row.step, row.data) if row else (None, None, None)


async def at_content_step(bot: ChatBot) -> None:
    """Bring the member to the question for a new item's content."""
    await bot.cmd(MEMBER, "pledge")
    await bot.press(MEMBER, "✓ 农村")
    await bot.press(MEMBER, "保持不变")
    assert (await place(bot, MEMBER))[1] == "field"


async def item_rows(bot: ChatBot) -> list[PledgeItem]:
    return await bot.rows(PledgeItem)


@pytest.mark.parametrize(
    "text",
    ["\ud800", "带领\udc00群众", "\ud83d种花椒", "a\x00b", "\x00"],
    ids=["lone-high", "lone-low-inside", "half-emoji", "nul-inside", "nul"],
)
async def test_lone_surrogates_and_nul_are_refused_and_the_dialog_stays(bot, text):
    await at_content_step(bot)
    before = await place(bot, MEMBER)
    bot.messenger.sent.clear()
    await bot.say(MEMBER, text)
    said = bot.messenger.texts(MEMBER)
    assert said == [refused_text()]
    assert APOLOGY not in said
    assert await place(bot, MEMBER) == before
    assert await item_rows(bot) == []
    # and the same question is still open: the next answer is taken
    await bot.say(MEMBER, "带领本组5户农户发展花椒种植")
    (item,) = await item_rows(bot)
    assert item.content == "带领本组5户农户发展花椒种植"


async def test_a_refused_command_argument_is_answered_plainly(bot):
    bot.messenger.sent.clear()
    await bot.cmd(MEMBER, "start", "inv_\ud800")
    assert bot.messenger.texts(MEMBER) == [
        catalog().render("input.refused", "zh_CN", in_dialog=False)
    ]


async def test_in_a_group_only_a_group_command_hears_about_refused_text(bot):
    group = dataclasses.replace(sender(SECRETARY), chat_id="-7", chat_type=ChatType.GROUP)
    for i, event in enumerate(
        (
            TextReceived(sender=group, text="\ud800"),
            CommandReceived(sender=group, command="pledge", args="\x00"),
            CommandReceived(sender=group, command="help", args="\x00"),
        )
    ):
        await bot.send(dataclasses.replace(event, update_id=f"g{i}"))
    assert bot.messenger.texts("-7") == [
        catalog().render("input.refused", "zh_CN", in_dialog=False)
    ]


async def test_invisible_and_control_characters_are_never_stored(bot):
    await at_content_step(bot)
    await bot.say(MEMBER, "\u200b\u200c\u2060\ufeff")  # zero-width only: empty
    assert "不能为空" in bot.last(MEMBER)
    assert await item_rows(bot) == []
    await bot.say(MEMBER, "\x1b[31m带领\u202e本组5户\u200b农户发展花椒种植\x1b[0m")
    await bot.say(MEMBER, "年底前每户新栽花椒2亩\u2066，户均增收3000元\r\n（按户统计）")
    await bot.say(MEMBER, "联系镇农技站\x07每季度来村培训1次\u00ad，帮助联系收购商")
    (item,) = await item_rows(bot)
    assert item.content == "[31m带领本组5户农户发展花椒种植[0m"
    assert item.goal == "年底前每户新栽花椒2亩，户均增收3000元\n（按户统计）"
    assert item.measures == "联系镇农技站每季度来村培训1次，帮助联系收购商"
    assert await garbage(bot.store) == []


async def test_display_names_and_captions_are_cleaned(bot):
    weird = sender(MEMBER)
    weird = dataclasses.replace(weird, display_name="\u202e张\x00三\ud800")
    await bot.send(TextReceived(sender=weird, text="你好", update_id="dn-1"))
    assert APOLOGY not in bot.messenger.texts(MEMBER)
    await bot.send(PhotoReceived(sender=weird, file_id="p", caption="\u200b", update_id="dn-2"))
    assert APOLOGY not in bot.messenger.texts(MEMBER)
    assert await garbage(bot.store) == []


@pytest.mark.parametrize("kind", list(Unsupported))
async def test_content_the_bot_cannot_read_gets_an_answer_saying_what_it_takes(bot, kind):
    event = UnsupportedReceived(sender=sender(MEMBER), kind=kind, update_id=f"k-{kind}")
    await bot.send(event)
    idle = catalog().render("input.unsupported", "zh_CN", kind=kind.value, takes="commands")
    assert bot.last(MEMBER) == idle
    await at_content_step(bot)
    before = await place(bot, MEMBER)
    await bot.send(UnsupportedReceived(sender=sender(MEMBER), kind=kind, update_id=f"t-{kind}"))
    assert bot.last(MEMBER) == catalog().render(
        "input.unsupported", "zh_CN", kind=kind.value, takes="text"
    )
    assert await place(bot, MEMBER) == before


async def test_a_button_step_says_to_tap_a_button(bot):
    await bot.cmd(MEMBER, "pledge")  # the category question waits on buttons
    await bot.send(
        UnsupportedReceived(sender=sender(MEMBER), kind=Unsupported.VOICE, update_id="v1")
    )
    assert "点上面卡片上的按钮" in bot.last(MEMBER)


async def test_unbound_people_sending_a_sticker_are_told_how_to_bind(bot):
    await bot.send(
        UnsupportedReceived(sender=sender("999"), kind=Unsupported.STICKER, update_id="s1")
    )
    assert bot.messenger.texts("999") == [catalog().render("bind.needed", "zh_CN")]


async def test_pledges_untouched_by_refusals(bot):
    await at_content_step(bot)
    for i, text in enumerate(("\x00", "\ud800", "\udfff\x00")):
        await bot.send(TextReceived(sender=sender(MEMBER), text=text, update_id=f"r{i}"))
    (pledge,) = await bot.rows(Pledge)
    assert pledge.version == 1 and await item_rows(bot) == []
