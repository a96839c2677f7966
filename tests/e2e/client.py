"""A Telegram user for the e2e tests, talking to the bot through the emulator's client API."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WAIT = 5.0


def post_json(url: str, payload: dict[str, Any], timeout: float = 10.0) -> Any:
    """POST JSON and return the decoded answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


@dataclass(frozen=True)
class BotMessage:
    """A message the bot sent to a chat, as the emulator holds it (edits applied)."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """Return the inline keyboard's rows, if any."""
        if not self.reply_markup:
            return []
        return self.reply_markup.get("inline_keyboard") or []

    @property
    def keyboard(self) -> list[list[dict[str, Any]]]:
        """Return the reply keyboard's rows (such as the request_contact button), if any."""
        if not self.reply_markup:
            return []
        return self.reply_markup.get("keyboard") or []


class TelegramUser:
    """One person in a private chat (or a group) with the bot under test."""

    def __init__(
        self,
        emulator_url: str,
        token: str,
        user_id: int,
        *,
        first_name: str = "测试用户",
        language: str | None = "zh-hans",
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> None:
        self.url = emulator_url.rstrip("/")
        self.token = token
        self.user_id = user_id
        self.first_name = first_name
        self.language = language
        self.chat_id = chat_id if chat_id is not None else user_id
        self.chat_type = chat_type
        self.chat_title = chat_title
        self.cursor = max((m.message_id for m in self.bot_messages()), default=0)
        self.last_reply: BotMessage | None = None

    # -- what the user does --------------------------------------------------------------------

    def _from(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.language:
            user["language_code"] = self.language
        return user

    def _chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.chat_id, "type": self.chat_type}
        if self.chat_type == "private":
            chat["first_name"] = self.first_name
        else:
            chat["title"] = self.chat_title or "测试群"
        return chat

    def _message(self, **fields: Any) -> dict[str, Any]:
        return {
            "botToken": self.token,
            "from": self._from(),
            "chat": self._chat(),
            "date": int(time.time()),
            **fields,
        }

    def send_text(self, text: str) -> None:
        """Send plain text."""
        post_json(f"{self.url}/sendMessage", self._message(text=text))

    def send_command(self, text: str) -> None:
        """Send a command such as ``/start inv_xyz``, with its bot_command entity."""
        assert text.startswith("/")
        length = len(text.split(maxsplit=1)[0])
        entities = [{"type": "bot_command", "offset": 0, "length": length}]
        post_json(f"{self.url}/sendCommand", self._message(text=text, entities=entities))

    def share_contact(self, phone: str, user_id: int | None = None) -> None:
        """Share a contact card: the user's own by default, as the request_contact button does."""
        contact = {
            "phone_number": phone,
            "first_name": self.first_name,
            "user_id": self.user_id if user_id is None else user_id,
        }
        post_json(f"{self.url}/sendMessage", self._message(contact=contact))

    def send_callback(self, data: str, message: BotMessage | None = None) -> None:
        """Press a button carrying ``data`` (made up or real) on ``message``."""
        on = message or self.last_reply
        message_id = on.message_id if on is not None else 1
        card = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(),
            "text": on.text if on is not None else "",
        }
        if on is not None and on.reply_markup and "inline_keyboard" in on.reply_markup:
            card["reply_markup"] = on.reply_markup
        payload = {
            "botToken": self.token,
            "from": self._from(),
            "message": card,
            "data": data,
            "date": int(time.time()),
        }
        post_json(f"{self.url}/sendCallback", payload)

    def press(self, label: str, message: BotMessage | None = None) -> None:
        """Press the inline button whose text is ``label`` on ``message`` (default: last reply)."""
        on = message or self.last_reply
        assert on is not None, "no message to press a button on"
        for row in on.buttons:
            for button in row:
                if button.get("text") == label:
                    self.send_callback(button["callback_data"], on)
                    return
        raise AssertionError(f"no button {label!r} on {on.text!r}: {on.buttons}")

    # -- what the bot said ------------------------------------------------------------------------

    def bot_messages(self) -> list[BotMessage]:
        """Return every message the bot sent to this chat, oldest first."""
        history = post_json(f"{self.url}/getUpdatesHistory", {"token": self.token}) or {}
        out = []
        for item in history.get("result", []):
            msg = item.get("message") or {}
            if "chat_id" not in msg or str(msg["chat_id"]) != str(self.chat_id):
                continue  # a user's message, or another chat
            markup = msg.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            out.append(
                BotMessage(
                    message_id=int(item["messageId"]),
                    chat_id=int(msg["chat_id"]),
                    text=str(msg.get("text", "")),
                    reply_markup=markup,
                )
            )
        return sorted(out, key=lambda m: m.message_id)

    def wait_for_reply(
        self,
        predicate: Callable[[BotMessage], bool] | str | None = None,
        timeout: float = WAIT,
    ) -> BotMessage:
        """Wait for the next new message from the bot (matching ``predicate``, or containing it).

        Messages before the match are skipped; the next wait starts after the match.
        """
        if isinstance(predicate, str):
            needle = predicate
            predicate = lambda m: needle in m.text  # noqa: E731
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            seen = []
            for message in self.bot_messages():
                if message.message_id <= self.cursor:
                    continue
                seen.append(message.text)
                if predicate is None or predicate(message):
                    self.cursor = message.message_id
                    self.last_reply = message
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching reply within {timeout}s; new messages: {seen}")
            time.sleep(0.03)

    def wait_for_edit(
        self, message: BotMessage, predicate: Callable[[BotMessage], bool], timeout: float = WAIT
    ) -> BotMessage:
        """Wait until the bot's ``message`` (a card) has been edited to match ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            for current in self.bot_messages():
                if current.message_id == message.message_id and predicate(current):
                    return current
            if time.monotonic() > deadline:
                raise AssertionError(f"message {message.message_id} not edited within {timeout}s")
            time.sleep(0.03)

    def expect_silence(self, within: float = 0.6) -> None:
        """Assert that the bot sends nothing new to this chat for ``within`` seconds."""
        time.sleep(within)
        new = [m.text for m in self.bot_messages() if m.message_id > self.cursor]
        assert not new, f"unexpected messages: {new}"

    def last_buttons(self) -> list[list[dict[str, Any]]]:
        """Return the inline buttons of the bot's latest message to this chat."""
        messages = self.bot_messages()
        return messages[-1].buttons if messages else []
