"""End to end: nobody must know slash commands (the menu keyboard and plain requests)."""

from __future__ import annotations

import pytest

from templates import catalog
from tests.e2e.test_foundation import bind

pytestmark = pytest.mark.e2e

MEMBER = "13800000001"  # 张建国, 党员
SECRETARY = "13800000002"  # 李秀英, 党员、书记


def msg(key: str, locale: str = "zh_CN", **context) -> str:
    return catalog().render(key, locale, **context)


def labels(message) -> list[str]:
    return [button["text"] for row in message.keyboard for button in row]


@pytest.mark.both_runtimes
def test_binding_shows_the_menu_keyboard_by_role(main_bot, user_of):
    member, secretary = user_of(main_bot), user_of(main_bot)
    member.share_contact(MEMBER)
    welcome = member.wait_for_reply(msg("bind.done", name="", org="")[:4])
    assert welcome.reply_markup["is_persistent"] is True
    assert welcome.reply_markup["resize_keyboard"] is True
    assert labels(welcome)[:3] == [msg(f"menu.btn.{c}") for c in ("pledge", "mine", "public")]
    assert msg("menu.btn.report") in labels(welcome)
    assert msg("menu.btn.review") not in labels(welcome)
    secretary.share_contact(SECRETARY)
    welcome = secretary.wait_for_reply(msg("bind.done", name="", org="")[:4])
    assert {msg("menu.btn.review"), msg("menu.btn.ledger")} <= set(labels(welcome))


def test_unknown_text_gets_the_menu_and_plain_requests_reach_their_command(main_bot, user_of):
    user = user_of(main_bot)
    bind(user, MEMBER)
    user.send_text("今天天气不错")
    reply = user.wait_for_reply()
    assert reply.text == msg("menu.unknown") and "没有理解" not in reply.text
    assert msg("menu.btn.pledge") in labels(reply)

    user.send_command("/report")
    by_command = user.wait_for_reply().text
    user.send_text("我要报进度")
    assert user.wait_for_reply().text == by_command

    # a button of the menu keyboard sends its label: it leads where the command does
    user.send_command("/pledge")
    by_command = user.wait_for_reply().text
    user.send_text(msg("menu.btn.pledge"))
    assert user.wait_for_reply().text == by_command
    user.send_text("怎么写承诺")
    assert user.wait_for_reply().text == by_command
