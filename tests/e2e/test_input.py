"""End to end: hostile text and content the bot cannot read, through the real process.

A lone surrogate arrives from Telegram as a JSON escape (``\\ud800``) and used to crash the
dialog step; a sticker or an edited message used to get no answer at all.
"""

from __future__ import annotations

import pytest

from tests.e2e.client import post_json
from tests.e2e.test_foundation import MEMBER, bind, db_rows, msg, open_campaign_in

pytestmark = pytest.mark.e2e


@pytest.mark.both_runtimes
def test_a_sticker_a_voice_note_and_an_edit_are_answered(main_bot, user_of):
    user = user_of(main_bot)
    bind(user, MEMBER)
    sticker = {
        "file_id": "stk",
        "file_unique_id": "stk-u",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    post_json(f"{user.url}/sendMessage", user._message(sticker=sticker))
    reply = user.wait_for_reply(msg("input.kind.sticker"))
    assert reply.text == msg("input.unsupported", kind="sticker", takes="commands")
    post_json(
        f"{user.url}/sendMessage",
        user._message(voice={"file_id": "v", "file_unique_id": "vu", "duration": 2}),
    )
    assert user.wait_for_reply(msg("input.kind.voice")).text == msg(
        "input.unsupported", kind="voice", takes="commands"
    )


def test_a_lone_surrogate_is_refused_and_the_dialog_keeps_its_place(start_bot, user_of):
    main_bot = start_bot(prepare=open_campaign_in)
    user = user_of(main_bot)
    bind(user, MEMBER)
    user.send_command("/pledge")
    user.wait_for_reply(lambda m: bool(m.buttons))  # the first question
    before = db_rows(
        main_bot,
        "SELECT dialog, step, data FROM dialogstate WHERE user_id = ?",
        str(user.user_id),
    )
    user.send_text("带领\ud800群众")
    assert user.wait_for_reply(msg("input.refused", in_dialog=True)[:10]).text == msg(
        "input.refused", in_dialog=True
    )
    after = db_rows(
        main_bot,
        "SELECT dialog, step, data FROM dialogstate WHERE user_id = ?",
        str(user.user_id),
    )
    assert after == before and after[0][0] == "pledge"
    assert msg("error.unexpected") not in [m.text for m in user.bot_messages()]
