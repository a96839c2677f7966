"""One table of what each update becomes: both Telegram runtimes give the same events.

The same raw updates (Bot API JSON) go to the aiogram runtime (its dispatcher and handler) and
to the python-telegram-bot runtime (its handler), each over a stand-in core that records the
event it is given; the events must be equal, and equal to ``bot.updates.update_event`` of the raw
JSON. A new kind of update or content is added to ``UPDATES`` once and checked on both.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aiogram import Bot as AiogramBot
from aiogram.types import Update as AiogramUpdate
from telegram import Bot as PtbBot
from telegram import Update as PtbUpdate

from bot import telegram as aiogram_runtime
from bot import telegram_ptb as ptb_runtime
from bot import updates
from bot.delivery import DeliveryError, RenderedMessage, RenderedPoll
from handlers.events import (
    ButtonPressed,
    CommandReceived,
    ContactShared,
    PhotoReceived,
    PollUpdated,
    TextReceived,
    Unsupported,
    UnsupportedReceived,
)
from tests.bot.ptb_request import TOKEN as PTB_TOKEN
from tests.bot.ptb_request import RecordingRequest
from tests.bot.test_telegram_adapter import TOKEN, RecordingSession
from tests.bot.test_telegram_input import CONTENT

USER = {"id": 5, "is_bot": False, "first_name": "A", "last_name": "B", "language_code": "en"}
PRIVATE = {"id": 5, "type": "private", "first_name": "A"}
GROUP = {"id": -100, "type": "supergroup", "title": "一支部"}
PHOTO = [
    {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
    {"file_id": "large", "file_unique_id": "l", "width": 800, "height": 800},
]


def _msg(chat: dict[str, Any] = PRIVATE, user: dict[str, Any] | None = USER, **extra) -> dict:
    m: dict[str, Any] = {"message_id": 11, "date": 1_700_000_000, "chat": chat, **extra}
    if user is not None:
        m["from"] = user
    return m


def _cmd(text: str) -> dict[str, Any]:
    length = len(text.split()[0])
    return {"text": text, "entities": [{"type": "bot_command", "offset": 0, "length": length}]}


def _query(**extra) -> dict[str, Any]:
    return {"id": "q1", "chat_instance": "ci", "from": USER, "data": "lang:en:sig", **extra}


POLL = {
    "id": "5512",
    "question": "测评",
    "options": [
        {"persistent_id": "0", "text": "满意", "voter_count": 3},
        {"persistent_id": "1", "text": "基本满意", "voter_count": 1},
    ],
    "total_voter_count": 4,
    "is_closed": True,
    "is_anonymous": True,
    "type": "regular",
    "allows_multiple_answers": False,
    "allows_revoting": True,
    "members_only": False,
}

#: name -> (the update's payload without its id, the type of event it becomes, or None)
UPDATES: dict[str, tuple[dict[str, Any], type | None]] = {
    "text": ({"message": _msg(text="你好")}, TextReceived),
    "command": ({"message": _msg(**_cmd("/start inv_abc-1"))}, CommandReceived),
    "command to us": ({"message": _msg(GROUP, **_cmd("/help@PledgeBot"))}, CommandReceived),
    "command to another bot": ({"message": _msg(GROUP, **_cmd("/help@OtherBot"))}, None),
    "bindgroup in a group": ({"message": _msg(GROUP, **_cmd("/bindgroup"))}, CommandReceived),
    "group text": ({"message": _msg(GROUP, text="大家好")}, TextReceived),
    "contact": (
        {
            "message": _msg(
                contact={"phone_number": "+8613800000001", "first_name": "A", "user_id": 5}
            )
        },
        ContactShared,
    ),
    "someone else's contact": (
        {"message": _msg(contact={"phone_number": "13800000002", "first_name": "C"})},
        ContactShared,
    ),
    "photo with caption": ({"message": _msg(photo=PHOTO, caption="现场")}, PhotoReceived),
    **{
        f"unsupported {name}": ({"message": _msg(**payload)}, UnsupportedReceived)
        for name, (payload, _) in CONTENT.items()
    },
    "service message": (
        {"message": _msg(new_chat_members=[{"id": 9, "is_bot": False, "first_name": "N"}])},
        None,
    ),
    "edited": (
        {"edited_message": {**_msg(text="改过"), "edit_date": 1_700_000_100}},
        UnsupportedReceived,
    ),
    "button": ({"callback_query": _query(message=_msg(text="卡片"))}, ButtonPressed),
    "button on an old card": (
        {"callback_query": _query(message={"message_id": 3, "date": 0, "chat": GROUP})},
        ButtonPressed,
    ),
    "button on an inline message": (
        {"callback_query": _query(inline_message_id="im1")},
        ButtonPressed,
    ),
    "poll": ({"poll": POLL}, PollUpdated),
    "a bot writes": (
        {"message": _msg(user={"id": 8, "is_bot": True, "first_name": "X"}, text="hi")},
        None,
    ),
    "channel post": (
        {"channel_post": _msg({"id": -200, "type": "channel"}, None, text="x")},
        None,
    ),
    "message in a channel": ({"message": _msg({"id": -200, "type": "channel"}, text="x")}, None),
    "poll answer (not asked for)": (
        {
            "poll_answer": {
                "poll_id": "5512",
                "user": USER,
                "option_ids": [0],
                "option_persistent_ids": ["0"],
            }
        },
        None,
    ),
}


class MemberSession(RecordingSession):
    """aiogram's stand-in Bot API, answering getChatMember: a plain member."""

    async def make_request(self, bot, method, timeout=None):
        if method.__api_method__ == "getChatMember":
            from aiogram.types import ChatMemberMember, User

            self.requests.append(("getChatMember", self.wire_params(bot, method)))
            return ChatMemberMember(user=User(id=5, is_bot=False, first_name="A"))
        return await super().make_request(bot, method, timeout)


class RecordingCore:
    """Stands in for the core: records the event, queues nothing."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def handle(self, event):
        from handlers.core import Handled

        self.events.append(event)
        return Handled()


async def _through_aiogram(raw: dict[str, Any]) -> Any:
    core = RecordingCore()
    bot = AiogramBot(TOKEN, session=MemberSession())
    handler = aiogram_runtime.UpdateHandler(core, worker=None, bot_username="PledgeBot")  # type: ignore[arg-type]
    dispatcher = aiogram_runtime.build_dispatcher(handler)
    update = AiogramUpdate.model_validate(copy.deepcopy(raw), context={"bot": bot})
    await dispatcher.feed_update(bot, update)
    assert len(core.events) <= 1
    return core.events[0] if core.events else None


async def _through_ptb(raw: dict[str, Any]) -> Any:
    core = RecordingCore()
    bot = PtbBot(PTB_TOKEN, request=RecordingRequest())
    handler = ptb_runtime.PtbUpdateHandler(core, None, bot, bot_username="PledgeBot")  # type: ignore[arg-type]
    await handler.feed(PtbUpdate.de_json(copy.deepcopy(raw), bot))
    assert len(core.events) <= 1
    return core.events[0] if core.events else None


@pytest.mark.parametrize("name", list(UPDATES))
async def test_both_runtimes_make_the_same_event_of_each_update(name):
    payload, kind = UPDATES[name]
    raw = {"update_id": 41, **payload}
    expected = updates.update_event(raw, bot_username="PledgeBot")
    assert (type(expected) if expected is not None else None) is kind
    via_aiogram = await _through_aiogram(raw)
    via_ptb = await _through_ptb(raw)
    if expected is not None and updates.needs_admin_check(expected):
        expected = updates.with_admin_status(expected, "member")  # both stand-ins say so
    assert via_aiogram == via_ptb == expected
    # and the functions tests and benchmarks call directly agree as well
    mapped = updates.update_event(raw, bot_username="PledgeBot")
    assert (
        aiogram_runtime.update_to_event(
            AiogramUpdate.model_validate(copy.deepcopy(raw)), bot_username="PledgeBot"
        )
        == mapped
    )
    assert (
        ptb_runtime.update_to_event(
            PtbUpdate.de_json(copy.deepcopy(raw), None), bot_username="PledgeBot"
        )
        == mapped
    )


def test_the_table_names_what_each_event_carries():
    def event(name):
        payload, _ = UPDATES[name]
        return updates.update_event({"update_id": 41, **payload}, bot_username="PledgeBot")

    command = event("command")
    assert (command.command, command.args, command.update_id) == ("start", "inv_abc-1", "41")
    assert (command.sender.display_name, command.sender.language) == ("A B", "en")
    group = event("group text").sender
    assert (group.chat_id, group.chat_title, group.chat_type.value) == ("-100", "一支部", "group")
    assert event("photo with caption").file_id == "large"
    assert event("someone else's contact").contact_user_id is None
    assert event("edited").kind is Unsupported.EDITED
    inline = event("button on an inline message")
    assert (inline.sender.chat_id, inline.message_id) == ("5", None)
    poll = event("poll")
    assert (poll.poll_id, poll.counts, poll.closed) == ("5512", (3, 1), True)
    assert set(updates.ALLOWED_UPDATES) == set(updates.UPDATE_KINDS)
    assert aiogram_runtime.ALLOWED_UPDATES is ptb_runtime.ALLOWED_UPDATES


def test_a_webhook_body_is_an_update_only_with_an_integer_id():
    assert updates.is_update({"update_id": 1, "message": _msg(text="x")})
    for body in (
        [1, 2],
        {"update_id": "x"},
        {"update_id": True},
        {},
        {"update_id": 1, "message": 3},
    ):
        assert not updates.is_update(body)


@pytest.mark.parametrize("runtime", ["aiogram", "ptb"])
async def test_stopping_a_poll_already_closed_counts_as_done(runtime):
    """Found: Telegram says "poll has already been closed"; the check looked for "already closed"."""
    stop = RenderedMessage(text="", poll=RenderedPoll(("a", "b"), stop=True), edit_message_id="7")
    if runtime == "aiogram":
        from aiogram.exceptions import TelegramBadRequest

        session = RecordingSession()
        messenger: Any = aiogram_runtime.TelegramMessenger(AiogramBot(TOKEN, session=session))
        closed = TelegramBadRequest(
            method=None, message="Bad Request: poll has already been closed"
        )
        other = TelegramBadRequest(
            method=None, message="Bad Request: message with poll to stop not found"
        )
        session.failures["stopPoll"] = closed
        await messenger.edit("-100", stop)
        session.failures["stopPoll"] = other
    else:
        request = RecordingRequest()
        messenger = ptb_runtime.PtbMessenger(PtbBot(PTB_TOKEN, request=request))
        request.failures["stopPoll"] = (400, "Bad Request: poll has already been closed", None)
        await messenger.edit("-100", stop)
        request.failures["stopPoll"] = (
            400,
            "Bad Request: message with poll to stop not found",
            None,
        )
    with pytest.raises(DeliveryError) as caught:
        await messenger.edit("-100", stop)
    assert caught.value.permanent
