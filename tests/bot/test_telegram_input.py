"""The Telegram adapter turns content the bot cannot read, and edited messages, into events."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Update

from bot.telegram import ALLOWED_UPDATES, build_dispatcher, update_to_event
from handlers.events import TextReceived, Unsupported, UnsupportedReceived

FILE = {"file_id": "f", "file_unique_id": "u"}
CONTENT: dict[str, tuple[dict[str, Any], Unsupported]] = {
    "sticker": (
        {
            "sticker": {
                **FILE,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
        Unsupported.STICKER,
    ),
    "voice": ({"voice": {**FILE, "duration": 3}}, Unsupported.VOICE),
    "audio": ({"audio": {**FILE, "duration": 3}}, Unsupported.VOICE),
    "video": (
        {"video": {**FILE, "width": 1, "height": 1, "duration": 1}, "caption": "看"},
        Unsupported.VIDEO,
    ),
    "video_note": ({"video_note": {**FILE, "length": 1, "duration": 1}}, Unsupported.VIDEO),
    "document": ({"document": {**FILE, "file_name": "a.pdf"}}, Unsupported.DOCUMENT),
    "location": ({"location": {"latitude": 33.4, "longitude": 104.9}}, Unsupported.LOCATION),
    "poll": (
        {
            "poll": {
                "id": "p",
                "question": "?",
                "options": [
                    {"text": "a", "voter_count": 0, "persistent_id": "1"},
                    {"text": "b", "voter_count": 0, "persistent_id": "2"},
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
        Unsupported.POLL,
    ),
    "dice": ({"dice": {"emoji": "🎲", "value": 3}}, Unsupported.OTHER),
}


def _message(**extra: Any) -> dict[str, Any]:
    return {
        "message_id": 1,
        "date": 0,
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "A"},
        **extra,
    }


@pytest.mark.parametrize("name", list(CONTENT))
def test_each_kind_of_content_becomes_an_unsupported_event(name):
    payload, kind = CONTENT[name]
    event = update_to_event(
        Update.model_validate({"update_id": 3, "message": _message(**payload)})
    )
    assert isinstance(event, UnsupportedReceived)
    assert (event.kind, event.update_id, event.sender.user_id) == (kind, "3", "5")
    # a file keeps its id and name, for the one dialog that takes files (a notice)
    wanted = ("f", "a.pdf") if kind is Unsupported.DOCUMENT else (None, "")
    assert (event.file_id, event.file_name) == wanted


def test_an_edited_message_is_answered_not_ignored():
    update = Update.model_validate(
        {"update_id": 4, "edited_message": {**_message(text="改过"), "edit_date": 1}}
    )
    event = update_to_event(update)
    assert isinstance(event, UnsupportedReceived) and event.kind is Unsupported.EDITED
    assert "edited_message" in ALLOWED_UPDATES


def test_service_messages_stay_silent_and_text_is_text():
    joined = _message(new_chat_members=[{"id": 9, "is_bot": False, "first_name": "B"}])
    assert update_to_event(Update.model_validate({"update_id": 5, "message": joined})) is None
    text = update_to_event(Update.model_validate({"update_id": 6, "message": _message(text="x")}))
    assert isinstance(text, TextReceived)


def test_the_dispatcher_listens_for_edited_messages():
    class Handler:
        async def on_message(self, *a): ...
        async def on_edited(self, *a): ...
        async def on_callback(self, *a): ...
        async def on_poll(self, *a): ...
        async def on_error(self, *a): ...

    dispatcher = build_dispatcher(Handler())  # type: ignore[arg-type]
    assert "edited_message" in dispatcher.resolve_used_update_types()
