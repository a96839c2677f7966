"""Native polls on Telegram: sendPoll with the rendered options, stopPoll, poll updates as events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Chat, Message, Poll, PollOption, Update

from bot.delivery import poll_ids, render_reply
from bot.telegram import TelegramMessenger, update_to_event
from campaign.polls import OPTIONS
from handlers.events import PollUpdated
from models.reply import PollSpec, Reply
from tests.bot.test_telegram_adapter import TOKEN, RecordingSession


def _poll(poll_id: str, counts: tuple[int, ...], closed: bool = False) -> Poll:
    options = [
        PollOption(persistent_id=str(i), text=t, voter_count=n)
        for i, (t, n) in enumerate(zip(("满意", "基本满意", "不满意"), counts, strict=True))
    ]
    return Poll(
        id=poll_id,
        question="q",
        options=options,
        total_voter_count=sum(counts),
        is_closed=closed,
        is_anonymous=True,
        type="regular",
        allows_multiple_answers=False,
        allows_revoting=True,
        members_only=False,
    )


class PollSession(RecordingSession):
    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout=None) -> Any:
        name = method.__api_method__
        if name == "sendPoll":
            params = self.wire_params(bot, method)
            self.requests.append((name, params))
            return Message(
                message_id=77,
                date=datetime.now(UTC),
                chat=Chat(id=int(params["chat_id"]), type="group", title="g"),
                poll=_poll("5512", (0, 0, 0)),
            )
        if name == "stopPoll":
            self.requests.append((name, self.wire_params(bot, method)))
            return _poll("5512", (3, 1, 0), closed=True)
        return await super().make_request(bot, method, timeout)


async def test_a_poll_is_sent_natively_and_stopped():
    session = PollSession()
    messenger = TelegramMessenger(Bot(TOKEN, session=session))
    reply = Reply(
        "eval.poll_question",
        {"org": "东江村党支部", "quarter": "2027Q1", "days": 7},
        poll=PollSpec(OPTIONS, ref=3),
    )
    message = render_reply(Reply.from_payload(reply.to_payload()), "zh_CN")
    sent = await messenger.send("-1001", message)
    assert poll_ids(sent) == ("77", "5512")
    (call,) = session.calls("sendPoll")
    assert call["chat_id"] == -1001 and "东江村党支部" in call["question"]
    assert [o if isinstance(o, str) else o["text"] for o in call["options"]] == [
        "满意",
        "基本满意",
        "不满意",
    ]
    assert call["is_anonymous"] in (True, "true")
    assert session.calls("sendMessage") == []
    stop = Reply("eval.poll_closed", edit_message_id="77", poll=PollSpec(OPTIONS, stop=True))
    await messenger.edit("-1001", render_reply(Reply.from_payload(stop.to_payload()), "zh_CN"))
    (call,) = session.calls("stopPoll")
    assert call["message_id"] == 77
    assert session.calls("editMessageText") == []


def test_a_poll_update_becomes_an_event():
    update = Update(update_id=991, poll=_poll("5512", (2, 1, 4), closed=True))
    event = update_to_event(update)
    assert isinstance(event, PollUpdated)
    assert (event.poll_id, event.counts, event.closed, event.update_id) == (
        "5512",
        (2, 1, 4),
        True,
        "991",
    )


def test_other_runtimes_show_a_numbered_vote():
    reply = Reply(
        "eval.poll_question", {"org": "x", "quarter": "2027Q1", "days": 7}, poll=PollSpec(OPTIONS)
    )
    message = render_reply(reply, "en")
    shown = message.poll.numbered(message.text)
    assert shown.endswith("1. satisfied\n2. basically satisfied\n3. dissatisfied")
