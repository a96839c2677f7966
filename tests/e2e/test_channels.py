"""通知方式 in the real process: /channel offers the choice as buttons and keeps it (SMS on)."""

from __future__ import annotations

import pytest

from tests.e2e.test_foundation import MEMBER, bind, db_rows, msg

pytestmark = pytest.mark.e2e


def test_a_member_chooses_sms_with_a_button_and_the_choice_is_kept(start_bot, user_of):
    bot = start_bot(env={"SMS_ENABLED": "true"})
    member = user_of(bot)
    bind(member, MEMBER)
    member.send_command("/channel")
    chooser = member.wait_for_reply(msg("channel.name.auto"))
    assert [b["text"] for row in chooser.buttons for b in row] == [
        msg("channel.name.auto"),
        msg("channel.name.telegram"),
        msg("channel.name.sms"),
        msg("channel.name.none"),
    ]
    assert "0001" in chooser.text and "未开通" not in chooser.text  # SMS is on here
    member.press(msg("channel.name.sms"), chooser)
    done = member.wait_for_reply("通知方式已设为")
    assert msg("channel.name.sms") in done.text and "0001" in done.text
    assert db_rows(bot, "SELECT channel, channel_by FROM member WHERE phone = ?", MEMBER) == [
        ("sms", "person")
    ]
    audit = db_rows(bot, "SELECT kind FROM auditevent WHERE kind LIKE 'channel.%'")
    assert audit == [("channel.set",)]
    member.send_command("/channel 自动")
    assert "自动" in member.wait_for_reply("通知方式已设为").text
