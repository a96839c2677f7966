"""No dead ends: the menu keyboard, plain requests and the 评议员's own menu, through the core."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.events import ContactShared
from handlers.menu import request_command
from models import Member, Pledge, Role, RoleGrant
from templates import catalog
from tests.chat import MEMBER, SECRETARY, ChatBot, sender
from tests.conftest import a_campaign, seed_people

NOW = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
EVALUATOR, EVALUATOR_PHONE = "8", "13800000008"


def msg(key: str, locale: str = "zh_CN", **context) -> str:
    return catalog().render(key, locale, **context)


def keyboard(bot: ChatBot, chat: str) -> list[str]:
    """Return the labels of the newest menu keyboard sent to ``chat``."""
    for c, message in reversed(bot.messenger.sent):
        if c == chat and message.keyboard == "menu":
            return [label for row in message.keyboard_rows for label in row]
    raise AssertionError(f"no menu keyboard in chat {chat}")


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        evaluator = Member(name="周德福", phone=EVALUATOR_PHONE, org_id=people.orgs["village"])
        s.add(evaluator)
        await s.flush()
        s.add(RoleGrant(member_id=evaluator.id, role=Role.EVALUATOR, org_id=evaluator.org_id))
    return ChatBot(store, people, lambda: NOW)


async def test_binding_shows_the_menu_by_role(bot):
    await bot.bind(MEMBER)
    member_menu = keyboard(bot, MEMBER)
    assert member_menu[:2] == [msg("menu.btn.pledge"), msg("menu.btn.mine")]
    assert msg("menu.btn.report") in member_menu and msg("menu.btn.help") in member_menu
    assert msg("menu.btn.review") not in member_menu
    await bot.bind(SECRETARY)
    secretary_menu = keyboard(bot, SECRETARY)
    assert {msg("menu.btn.review"), msg("menu.btn.ledger")} <= set(secretary_menu)
    # the share-contact keyboard is gone: the welcome itself carries the menu
    welcome = next(m for c, m in bot.messenger.sent if c == SECRETARY and "绑定成功" in m.text)
    assert welcome.keyboard == "menu"


async def test_unknown_text_gets_the_menu_not_a_dead_end(bot):
    await bot.bind(MEMBER)
    await bot.say(MEMBER, "今天天气不错")
    last = bot.messenger.sent[-1][1]
    assert last.text == msg("menu.unknown")
    assert "没有理解" not in last.text
    assert last.keyboard == "menu" and msg("menu.btn.pledge") in keyboard(bot, MEMBER)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("我要报进度", "report"),
        ("怎么写承诺", "pledge"),
        ("审核", "review"),
        ("报进度", "report"),
        ("待我审核", "review"),
        ("我的承诺", "mine"),
        ("I want to report progress", "report"),
        ("Write pledge", "pledge"),
        ("my pledges", "mine"),
        ("今天天气不错", None),
        ("帮助本组3户困难户发展花椒种植", None),
        ("审核人说要改", None),
        ("this is a long message about a report that is not a request at all", None),
        ("thistle", None),
    ],
)
def test_plain_requests_name_their_command(text, command):
    assert request_command(text) == command


async def test_a_plain_request_leads_where_the_command_does(bot):
    await bot.bind(MEMBER)
    await bot.cmd(MEMBER, "report")
    by_command = bot.messenger.texts(MEMBER)[-1]
    await bot.say(MEMBER, "我要报进度")
    assert bot.messenger.texts(MEMBER)[-1] == by_command
    await bot.say(MEMBER, "怎么写承诺")
    assert "申报表" in bot.last(MEMBER) or "类别" in bot.last(MEMBER)
    assert await bot.count(Pledge) == 1


async def test_a_menu_button_mid_dialog_is_a_command_other_text_an_answer(bot):
    await bot.bind(MEMBER)
    await bot.cmd(MEMBER, "pledge")
    await bot.press(MEMBER, "农村")
    await bot.say(MEMBER, "村文书")  # the post: the dialog goes on to the first item
    assert "1/5" in bot.last(MEMBER)
    await bot.say(MEMBER, msg("menu.btn.mine"))
    assert "1/5" not in bot.last(MEMBER)
    await bot.say(MEMBER, "帮助本组3户困难户发展花椒种植")  # not taken as an answer any more
    assert bot.messenger.sent[-1][1].text == msg("menu.unknown")


async def test_the_evaluator_gets_their_own_help_and_no_pledge_form(bot):
    await bot.send(
        ContactShared(sender=sender(EVALUATOR), phone=EVALUATOR_PHONE, contact_user_id=EVALUATOR)
    )
    assert msg("menu.help_evaluator") in bot.messenger.texts(EVALUATOR)
    assert keyboard(bot, EVALUATOR) == [
        msg("menu.btn.public"),
        msg("menu.btn.evaluate"),
        msg("menu.btn.help"),
    ]
    await bot.cmd(EVALUATOR, "pledge")
    assert bot.last(EVALUATOR) == msg("menu.not_yours")
    await bot.say(EVALUATOR, "我要写承诺")
    assert bot.last(EVALUATOR) == msg("menu.not_yours")
    await bot.cmd(EVALUATOR, "report")
    assert bot.last(EVALUATOR) == msg("menu.not_yours")
    assert await bot.count(Pledge) == 0
    await bot.cmd(EVALUATOR, "help")
    assert bot.last(EVALUATOR) == msg("menu.help_evaluator")


async def test_a_plain_request_is_read_at_the_drafts_overview(bot):
    await bot.bind(MEMBER)
    await bot.cmd(MEMBER, "pledge")
    await bot.press(MEMBER, "农村")
    await bot.say(MEMBER, "村文书")
    for text in (
        "帮助本组3户困难户发展花椒种植",
        "年底前户均增收2000元",
        "联系农技站培训2次",
        "年底",
    ):
        await bot.say(MEMBER, text)
    await bot.press(MEMBER, "带头服务群众")
    assert "📤 提交审核" in bot.labels(MEMBER)  # the overview: no question pending
    await bot.say(MEMBER, "这样行吗")  # not a request: the overview's hint and buttons
    assert "没有需要回答的问题" in bot.last(MEMBER)
    await bot.say(MEMBER, "我要报进度")
    assert bot.last(MEMBER) == msg("report.none")


def test_every_command_a_menu_can_show_has_a_label_in_both_languages():
    """A menu button without a label would make the whole reply undeliverable."""
    from campaign.access import Action
    from handlers.app import build_router
    from handlers.menu import NOT_ON_KEYBOARD
    from templates import catalog

    commands = set(build_router().commands)
    shown = {a.value for a in Action if a.value in commands} - NOT_ON_KEYBOARD
    for locale in ("zh_CN", "en"):
        missing = [
            c for c in sorted(shown | {"help"}) if f"menu.btn.{c}" not in catalog().keys(locale)
        ]
        assert not missing, (locale, missing)
