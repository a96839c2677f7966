"""A Bot API proxy between the bot under test and the telegram-test-api emulator.

The emulator is good enough to hold chats but answers in shapes a real Bot API never uses
(see shared/NOTES.md). This proxy, test code only, makes it look like Telegram to aiogram:

* ``getMe`` gains ``is_bot``; callback queries gain ``chat_instance``;
* ``sendMessage`` answers a proper Message: date in seconds, ``from`` the bot, the chat's
  real type (negative ids are groups); edits answer a Message instead of ``null``;
* ``getUpdates`` honours ``offset`` as Telegram does: updates are kept until the bot confirms
  them (the emulator forgets an update once fetched), so an update the bot did not confirm
  comes again, also to the next process; an empty answer is held a moment so polling does not
  spin;
* methods the emulator lacks (setMyCommands, sendPhoto, …) get plausible answers, photos and
  documents still show in the chat as text;
* ``getChatMember`` and ``getChatAdministrators`` answer from ``set_chat_admins`` (a group
  nobody set is one where every member administers it);
* multipart uploads (sendDocument, sendPhoto, sendMediaGroup) are parsed and their files kept
  (``uploads()``), so a test can open what the bot sent;
* ``setWebhook`` is pointed at a relay here that adds the secret header the emulator never
  sends, so webhook mode runs through the emulator as well; like Telegram, the relay sends an
  update the bot answered with an error (or did not answer) again, in order, with backoff. The
  emulator answers its client before the webhook post returns and numbers updates only after,
  so updates sent while the bot is slow share one ``update_id``: the relay renumbers them so
  that ids keep increasing, as Telegram's do.
* the emulator has no polls: ``sendPoll`` shows the poll in the chat as a numbered vote and
  answers a proper Message with its Poll; tests vote with ``vote()`` and the bot gets ``poll``
  updates (anonymous totals) as from Telegram, by getUpdates or posted to its webhook;
  ``stopPoll`` closes it.

Every call the bot makes is recorded (token, method, parameters) for tests to assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

HOLD_EMPTY_UPDATES = 0.4
EMULATOR_POLL = 0.05
#: the relay waits this long for the bot before answering the emulator (its client waits 10 s)
RELAY_WAIT = 3.0
#: Telegram-like redelivery of a webhook update: first delay, longest delay, give up after
REDELIVER_FIRST = 0.5
REDELIVER_MAX = 4.0
REDELIVER_GIVE_UP = 180.0
JSON_PARAMS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "commands",
    "scope",
    "allowed_updates",
    "menu_button",
    "link_preview_options",
    "reply_parameters",
    "media",
    "options",
}
INT_PARAMS = {"chat_id", "message_id", "user_id", "offset", "limit", "timeout", "cache_time"}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded: to which chat, by which method, under which name."""

    token: str
    method: str
    chat_id: Any
    field: str
    filename: str
    data: bytes
    caption: str | None = None


@dataclass(frozen=True)
class Call:
    """One Bot API call the bot made."""

    token: str
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    seq: int = 0


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )


def _decode(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and key in JSON_PARAMS:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        elif isinstance(value, str) and key in INT_PARAMS and re.fullmatch(r"-?\d+", value):
            value = int(value)
        elif isinstance(value, str) and value in ("true", "false"):
            value = value == "true"
        out[key] = value
    return out


class BotApiProxy:
    """Serve a fixed-up Bot API on 127.0.0.1 in a thread of its own."""

    def __init__(self, emulator_url: str) -> None:
        self.emulator_url = emulator_url.rstrip("/")
        self.port: int | None = None
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None
        self._webhooks: dict[str, tuple[str, str | None]] = {}
        self._texts: dict[tuple[str, int, int], str] = {}
        self._menus: dict[tuple[str, str, str], list] = {}
        self._fake_ids = 10_000_000
        self._unconfirmed: dict[str, list[dict[str, Any]]] = {}
        self._relay_queues: dict[str, asyncio.Queue] = {}
        self._relay_tasks: dict[str, asyncio.Task] = {}
        self._relay_last: dict[str, int] = {}
        self.webhook_answers: list[tuple[str, int, int]] = []  # (token, update_id, status)
        #: group chat id -> its administrators' user ids (set by tests); a chat not set here
        #: is one where every member administers the group
        self._admins: dict[int, list[int]] = {}
        self._polls: dict[str, dict[str, Any]] = {}
        self._injected: dict[str, list[dict[str, Any]]] = {}
        self._update_ids: dict[str, int] = {}
        self._seen_updates: dict[str, set] = {}
        self._uploads: list[Upload] = []
        #: (token, chat id) of people who blocked the bot: Telegram answers 403 to a send
        self._blocked: set[tuple[str, int]] = set()

    # -- life cycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL the bot should use as TELEGRAM_API_BASE."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotApiProxy:
        """Start serving; return self."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _start(self) -> None:
        self._http = ClientSession(timeout=ClientTimeout(total=30))
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_post("/_relay/{token}", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        for task in self._relay_tasks.values():
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    # -- what tests read ---------------------------------------------------------------------

    def mark(self) -> int:
        """Return a position in the record; ``calls(after=...)`` returns what came later."""
        with self._lock:
            return self._seq

    def calls(
        self, method: str | None = None, *, token: str | None = None, after: int = 0
    ) -> list[Call]:
        """Return the recorded calls, optionally of one method, one bot, after a mark."""
        with self._lock:
            return [
                c
                for c in self._calls
                if c.seq > after
                and (method is None or c.method == method)
                and (token is None or c.token == token)
            ]

    def wait_for_call(
        self,
        method: str,
        *,
        token: str | None = None,
        after: int = 0,
        where=None,
        timeout: float = 5.0,
    ) -> Call:
        """Wait until the bot makes a matching call; return it."""
        deadline = time.monotonic() + timeout
        while True:
            for call in self.calls(method, token=token, after=after):
                if where is None or where(call):
                    return call
            if time.monotonic() > deadline:
                seen = [c.method for c in self.calls(token=token, after=after)]
                raise AssertionError(f"no {method} call within {timeout}s; saw {seen}")
            time.sleep(0.02)

    def set_chat_admins(self, chat_id: int, user_ids: list[int]) -> None:
        """Say who administers a group chat (getChatMember, getChatAdministrators)."""
        self._admins[int(chat_id)] = [int(u) for u in user_ids]

    def _chat_member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        user = {"id": user_id, "is_bot": False, "first_name": f"user {user_id}"}
        admins = self._admins.get(chat_id)
        if admins is not None and user_id not in admins:
            return {"status": "member", "user": user}
        if admins and user_id == admins[0]:
            return {"status": "creator", "user": user, "is_anonymous": False}
        rights = (
            "can_be_edited is_anonymous can_manage_chat can_delete_messages can_manage_video_chats "
            "can_restrict_members can_promote_members can_change_info can_invite_users "
            "can_post_stories can_edit_stories can_delete_stories can_send_welcome_messages"
        )
        return {"status": "administrator", "user": user, **dict.fromkeys(rights.split(), False)}

    def polls(self, token: str) -> list[dict[str, Any]]:
        """Return the polls a bot sent: id, chat_id, message_id, question, options, counts."""
        with self._lock:
            return [dict(p) for p in self._polls.values() if p["token"] == token]

    def vote(self, token: str, poll_id: str, option: int, times: int = 1) -> None:
        """Cast anonymous votes for one option; the bot gets a ``poll`` update as from Telegram.

        In polling mode the update comes with the next getUpdates; in webhook mode it is posted
        to the bot's webhook through the relay (in order with the emulator's updates, numbered
        after them, sent again while the bot does not accept it).
        """
        with self._lock:
            poll = self._polls[poll_id]
            assert poll["token"] == token and not poll["closed"], "no open poll of that bot"
            poll["counts"][option] += times
            update = {"poll": self._poll_object(poll)}
            if token not in self._webhooks:
                self._inject(token, update)
                return

        async def post() -> None:
            self._relay_injected(token, update)

        asyncio.run_coroutine_threadsafe(post(), self._loop).result(10)

    def _relay_injected(self, token: str, update: dict[str, Any]) -> None:
        """Queue a made-up update (a poll's) for the webhook; call it in the proxy's loop."""
        uid = self._relay_last.get(token, 0) + 1
        self._relay_last[token] = uid
        self._enqueue_relay(token, json.dumps({**update, "update_id": uid}).encode())

    def _inject(self, token: str, update: dict[str, Any]) -> None:
        self._injected.setdefault(token, []).append(dict(update))

    def _next_update_id(self, token: str) -> int:
        self._update_ids[token] = self._update_ids.get(token, 0) + 1
        return self._update_ids[token]

    @staticmethod
    def _poll_object(poll: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": poll["id"],
            "question": poll["question"],
            "options": [
                {"persistent_id": str(i), "text": text, "voter_count": n}
                for i, (text, n) in enumerate(zip(poll["options"], poll["counts"], strict=True))
            ],
            "total_voter_count": sum(poll["counts"]),
            "is_closed": poll["closed"],
            "is_anonymous": poll["anonymous"],
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": True,
            "members_only": False,
        }

    def uploads(
        self, chat_id: Any = None, *, token: str | None = None, after: int = 0
    ) -> list[Upload]:
        """Return the files the bot uploaded, oldest first (optionally to one chat)."""
        with self._lock:
            found = list(self._uploads[after:])
        return [
            u
            for u in found
            if (chat_id is None or str(u.chat_id) == str(chat_id))
            and (token is None or u.token == token)
        ]

    def wait_for_upload(
        self, chat_id: Any, *, token: str | None = None, count: int = 1, timeout: float = 10.0
    ) -> list[Upload]:
        """Wait until the bot has uploaded ``count`` files to a chat; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.uploads(chat_id, token=token)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} uploads to {chat_id} in {timeout}s")
            time.sleep(0.05)

    def _record(self, token: str, method: str, params: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._calls.append(Call(token, method, params, seq=self._seq))

    # -- the Bot API -------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                files = []
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        params[key] = f"<file {value.filename}>"
                        files.append((key, value.filename or key, value.file.read()))
                    else:
                        params[key] = value
                if files:
                    token = request.match_info["token"]
                    method = request.match_info["method"]
                    with self._lock:
                        for key, name, data in files:
                            self._uploads.append(
                                Upload(
                                    token,
                                    method,
                                    params.get("chat_id"),
                                    key,
                                    name,
                                    data,
                                    params.get("caption"),
                                )
                            )
        return _decode(params)

    async def _emulator(self, token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        async with self._http.post(f"{self.emulator_url}/bot{token}/{method}", json=params) as r:
            try:
                data = await r.json(content_type=None)
            except ValueError:
                data = None
            if r.status != 200 or not isinstance(data, dict):
                text = data.get("message") if isinstance(data, dict) else str(data)
                return {"ok": False, "error_code": r.status, "description": text}
            return data

    def _bot_user(self, token: str) -> dict[str, Any]:
        return {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "PledgeBot (test)",
            "username": "TestNameBot",
        }

    def _message(self, token: str, chat_id: Any, message_id: int, **fields: Any) -> dict:
        chat = int(chat_id) if re.fullmatch(r"-?\d+", str(chat_id)) else chat_id
        is_group = isinstance(chat, int) and chat < 0
        msg = {
            "message_id": int(message_id),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "group" if is_group else "private"},
            "from": self._bot_user(token),
        }
        if is_group:
            msg["chat"]["title"] = "Test group"
        msg.update({k: v for k, v in fields.items() if v is not None})
        markup = msg.get("reply_markup")
        if not (isinstance(markup, dict) and "inline_keyboard" in markup):
            msg.pop("reply_markup", None)
        return msg

    async def _api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        params = await self._params(request)
        self._record(token, method, params)
        handler = getattr(self, f"_m_{method}", None)
        if handler is not None:
            return await handler(request, token, params)
        return await self._local(token, method, params)

    async def _forward(self, token: str, method: str, params: dict[str, Any]) -> web.Response:
        data = await self._emulator(token, method, params)
        if not data.get("ok"):
            code = int(data.get("error_code") or 500)
            return _error(code, str(data.get("description") or "emulator error"))
        return _ok(data.get("result"))

    async def _m_getMe(self, request, token, params) -> web.Response:
        data = await self._emulator(token, "getMe", {})
        user = self._bot_user(token)
        if data.get("ok") and isinstance(data.get("result"), dict):
            user["username"] = data["result"].get("username") or user["username"]
        return _ok(user)

    async def _m_getUpdates(self, request: web.Request, token, params) -> web.Response:
        kept = self._unconfirmed.setdefault(token, [])
        offset = params.get("offset")
        if isinstance(offset, int):
            # Telegram: every update below the offset is confirmed and never sent again
            kept[:] = [u for u in kept if u.get("update_id", 0) >= offset]
        hold = HOLD_EMPTY_UPDATES if int(params.get("timeout") or 0) > 0 else 0.0
        deadline = time.monotonic() + hold
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                return _ok([])
            data = await self._emulator(token, "getUpdates", {})
            with self._lock:
                injected = self._injected.pop(token, [])
            seen = self._seen_updates.setdefault(token, set())
            fresh = []
            for update in data.get("result") or []:
                if update.get("update_id") not in seen:
                    seen.add(update.get("update_id"))
                    fresh.append(self._fix_update(update))
            # one numbering for the emulator's updates and the injected ones (poll updates), so
            # ids keep increasing and a confirmed offset never hides a later update
            for update in [*fresh, *injected]:
                kept.append({**update, "update_id": self._next_update_id(token)})
            if kept or time.monotonic() >= deadline:
                break
            await asyncio.sleep(EMULATOR_POLL)
        limit = int(params.get("limit") or 100)
        return _ok(kept[:limit])

    def _fix_update(self, update: dict[str, Any]) -> dict[str, Any]:
        update = dict(update)
        if "message" in update:
            msg = {k: v for k, v in update["message"].items() if k != "botToken"}
            if isinstance(msg.get("date"), int) and msg["date"] > 10**11:
                msg["date"] //= 1000
            update["message"] = msg
        if "callback_query" in update:
            query = dict(update["callback_query"])
            query.setdefault("chat_instance", f"ci{query.get('from', {}).get('id', 0)}")
            if isinstance(query.get("message"), dict):
                msg = {k: v for k, v in query["message"].items() if k != "botToken"}
                msg.setdefault("date", int(time.time()))
                query["message"] = msg
            update["callback_query"] = query
        return update

    def block(self, token: str, chat_id: int) -> None:
        """Act as if this person blocked the bot: every send to them gets Telegram's 403."""
        with self._lock:
            self._blocked.add((token, int(chat_id)))

    async def _m_sendMessage(self, request, token, params) -> web.Response:
        if (token, int(params.get("chat_id", 0))) in self._blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        data = await self._emulator(token, "sendMessage", params)
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        result = data["result"]
        chat_id = params.get("chat_id")
        self._texts[(token, int(chat_id), int(result["message_id"]))] = params.get("text", "")
        return _ok(
            self._message(
                token,
                chat_id,
                result["message_id"],
                text=params.get("text"),
                entities=params.get("entities"),
                reply_markup=params.get("reply_markup"),
            )
        )

    async def _m_editMessageText(self, request, token, params) -> web.Response:
        data = await self._emulator(token, "editMessageText", params)
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        if params.get("inline_message_id"):
            return _ok(True)
        key = (token, int(params["chat_id"]), int(params["message_id"]))
        self._texts[key] = params.get("text", "")
        return _ok(
            self._message(
                token,
                params["chat_id"],
                params["message_id"],
                text=params.get("text"),
                reply_markup=params.get("reply_markup"),
                edit_date=int(time.time()),
            )
        )

    async def _m_editMessageReplyMarkup(self, request, token, params) -> web.Response:
        data = await self._emulator(token, "editMessageReplyMarkup", params)
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        if params.get("inline_message_id"):
            return _ok(True)
        key = (token, int(params["chat_id"]), int(params["message_id"]))
        return _ok(
            self._message(
                token,
                params["chat_id"],
                params["message_id"],
                text=self._texts.get(key, ""),
                reply_markup=params.get("reply_markup"),
                edit_date=int(time.time()),
            )
        )

    async def _m_answerCallbackQuery(self, request, token, params) -> web.Response:
        data = await self._emulator(token, "answerCallbackQuery", params)
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        return _ok(True)

    async def _m_deleteMessage(self, request, token, params) -> web.Response:
        data = await self._emulator(token, "deleteMessage", params)
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 400), str(data.get("description")))
        return _ok(True)

    async def _m_setWebhook(self, request, token, params) -> web.Response:
        url = params.get("url")
        if not url:
            return await self._m_deleteWebhook(request, token, params)
        self._webhooks[token] = (str(url), params.get("secret_token"))
        relay = f"{self.url}/_relay/{token}"
        data = await self._emulator(token, "setWebhook", {"url": relay})
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        return _ok(True)

    async def _m_deleteWebhook(self, request, token, params) -> web.Response:
        self._webhooks.pop(token, None)
        await self._emulator(token, "deleteWebhook", {})
        return _ok(True)

    async def _m_getWebhookInfo(self, request, token, params) -> web.Response:
        url = self._webhooks.get(token, ("", None))[0]
        return _ok({"url": url, "has_custom_certificate": False, "pending_update_count": 0})

    async def _send_file(self, token: str, params: dict[str, Any], kind: str) -> web.Response:
        # shown in the emulator's chat as text, so a test can see that it was sent
        label = params.get("caption") or f"[{kind}]"
        shown = {"chat_id": params.get("chat_id"), "text": label}
        if isinstance(params.get("reply_markup"), dict):
            shown["reply_markup"] = params["reply_markup"]
        data = await self._emulator(token, "sendMessage", shown)
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        message_id = data["result"]["message_id"]
        file = {"file_id": f"{kind}-{message_id}", "file_unique_id": f"u{kind}{message_id}"}
        fields: dict[str, Any] = {
            "caption": params.get("caption"),
            "reply_markup": params.get("reply_markup"),
        }
        if kind == "photo":
            fields["photo"] = [{**file, "width": 800, "height": 600}]
        else:
            fields["document"] = {**file, "file_name": "document"}
        return _ok(self._message(token, params.get("chat_id"), message_id, **fields))

    async def _m_sendPoll(self, request, token, params) -> web.Response:
        options = [o["text"] if isinstance(o, dict) else str(o) for o in params.get("options", [])]
        question = str(params.get("question", ""))
        shown = "\n".join([question, *(f"{i}. {o}" for i, o in enumerate(options, 1))])
        data = await self._emulator(
            token, "sendMessage", {"chat_id": params.get("chat_id"), "text": shown}
        )
        if not data.get("ok"):
            return _error(int(data.get("error_code") or 500), str(data.get("description")))
        message_id = int(data["result"]["message_id"])
        with self._lock:
            self._fake_ids += 1
            poll = {
                "id": f"poll{self._fake_ids}",
                "token": token,
                "chat_id": int(params["chat_id"]),
                "message_id": message_id,
                "question": question,
                "options": options,
                "counts": [0] * len(options),
                "closed": False,
                "anonymous": params.get("is_anonymous", True) is not False,
            }
            self._polls[poll["id"]] = poll
            shape = self._poll_object(poll)
        return _ok(self._message(token, params.get("chat_id"), message_id, poll=shape))

    async def _m_stopPoll(self, request, token, params) -> web.Response:
        with self._lock:
            found = [
                p
                for p in self._polls.values()
                if p["token"] == token
                and p["chat_id"] == int(params.get("chat_id") or 0)
                and p["message_id"] == int(params.get("message_id") or 0)
            ]
            if not found:
                return _error(400, "Bad Request: message with poll to stop not found")
            poll = found[0]
            if poll["closed"]:
                return _error(400, "Bad Request: poll has already been closed")
            poll["closed"] = True
            shape = self._poll_object(poll)
            if token in self._webhooks:
                self._relay_injected(token, {"poll": shape})
            else:
                self._inject(token, {"poll": shape})
        return _ok(shape)

    async def _m_sendPhoto(self, request, token, params) -> web.Response:
        return await self._send_file(token, params, "photo")

    async def _m_sendDocument(self, request, token, params) -> web.Response:
        return await self._send_file(token, params, "document")

    async def _m_sendMediaGroup(self, request, token, params) -> web.Response:
        media = params.get("media") or []
        out = []
        for entry in media if isinstance(media, list) else []:
            one = {"chat_id": params.get("chat_id"), "caption": entry.get("caption")}
            response = await self._send_file(token, one, entry.get("type") or "document")
            out.append(json.loads(response.body)["result"])
        return _ok(out)

    async def _local(self, token: str, method: str, params: dict[str, Any]) -> web.Response:
        """Answer a method the emulator does not implement."""
        scope = json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True)
        lang = str(params.get("language_code") or "")
        if method == "setMyCommands":
            self._menus[(token, scope, lang)] = params.get("commands") or []
            return _ok(True)
        if method == "deleteMyCommands":
            self._menus.pop((token, scope, lang), None)
            return _ok(True)
        if method == "getMyCommands":
            return _ok(self._menus.get((token, scope, lang), []))
        if method == "getChat":
            chat_id = int(params.get("chat_id") or 0)
            return _ok({"id": chat_id, "type": "group" if chat_id < 0 else "private"})
        if method == "getChatMember":
            return _ok(self._chat_member(int(params["chat_id"]), int(params["user_id"])))
        if method == "getChatAdministrators":
            chat_id = int(params["chat_id"])
            return _ok([self._chat_member(chat_id, u) for u in self._admins.get(chat_id, [])])
        if method.startswith("get"):
            return _error(400, f"Bad Request: {method} is not emulated")
        return _ok(True)  # setChatMenuButton, sendChatAction, setMyDescription …

    # -- webhooks ----------------------------------------------------------------------------

    async def _relay(self, request: web.Request) -> web.Response:
        """Pass an update from the emulator to the bot's webhook, with the secret header.

        Updates of one bot go out one after another; one the bot does not accept (a non-2xx
        answer, no answer) is sent again after a pause, as Telegram does, before any later one.
        The emulator gets its answer once the bot accepted the update, or after ``RELAY_WAIT``.
        """
        token = request.match_info["token"]
        if token not in self._webhooks:
            return web.Response(status=404, text="no webhook")
        body = await request.read()
        with contextlib.suppress(ValueError, AttributeError):
            update = self._fix_update(json.loads(body))
            uid = update.get("update_id")
            if isinstance(uid, int):
                uid = max(uid, self._relay_last.get(token, 0) + 1)
                self._relay_last[token] = update["update_id"] = uid
            body = json.dumps(update).encode()
        done = self._enqueue_relay(token, body)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(done), RELAY_WAIT)
        return web.Response(status=200, text="queued")

    def _enqueue_relay(self, token: str, body: bytes) -> asyncio.Future:
        """Queue an update for the bot's webhook (in the proxy's loop); return its answer."""
        done = asyncio.get_running_loop().create_future()
        queue = self._relay_queues.setdefault(token, asyncio.Queue())
        queue.put_nowait((body, done))
        task = self._relay_tasks.get(token)
        if task is None or task.done():
            self._relay_tasks[token] = asyncio.create_task(self._relay_worker(token, queue))
        return done

    async def _relay_worker(self, token: str, queue: asyncio.Queue) -> None:
        while True:
            body, done = await queue.get()
            delay = REDELIVER_FIRST
            give_up = time.monotonic() + REDELIVER_GIVE_UP
            while True:
                status = await self._post_webhook(token, body)
                with contextlib.suppress(ValueError, TypeError):
                    update_id = int(json.loads(body).get("update_id"))
                    self.webhook_answers.append((token, update_id, status))
                if 200 <= status < 300 or token not in self._webhooks:
                    break
                if time.monotonic() > give_up:
                    break
                await asyncio.sleep(delay)
                delay = min(REDELIVER_MAX, delay * 2)
            if not done.done():
                done.set_result(status)

    async def _post_webhook(self, token: str, body: bytes) -> int:
        target = self._webhooks.get(token)
        if target is None:
            return 404
        url, secret = target
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SECRET_HEADER] = secret
        assert self._http is not None
        try:
            async with self._http.post(
                url, data=body, headers=headers, timeout=ClientTimeout(total=65)
            ) as r:
                await r.read()
                return r.status
        except (TimeoutError, OSError, ClientError):
            return 0
