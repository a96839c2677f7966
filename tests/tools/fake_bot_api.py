"""A stand-in Telegram Bot API that enforces Telegram's rate limits (a test tool).

It answers enough of the Bot API for aiogram (``getMe``, ``sendMessage``, ``sendPhoto``,
``sendDocument``, ``editMessageText``, ``setMyCommands``, ``answerCallbackQuery``, an empty
``getUpdates`` …) and, like Telegram, refuses with 429 and ``parameters.retry_after``:

* more than ``overall`` messages in any ``overall_window`` seconds (30 a second);
* a private chat beyond a token bucket of ``chat_rate`` a second with ``chat_burst`` at once;
* a group (negative chat id) beyond ``group`` messages in any ``group_window`` (20 a minute).

Chats listed as blocked answer 403 ("bot was blocked by the user"). Every accepted message is
recorded (method, chat, text, time); 429s are counted by what caused them. An artificial
network latency is split around the check: half before the request "arrives", half before
the answer leaves.

In a test, run it on the test's event loop (``async with FakeBotApi() as api``) and point
``TELEGRAM_API_BASE`` (or ``AiohttpSession(api=TelegramAPIServer.from_base(api.url))``) at
``api.url``. For a benchmark, run it as a process of its own so that it does not share the
sender's CPU: ``python -m tests.tools.fake_bot_api`` prints ``{"url": …}`` and serves until
SIGTERM; ``FakeBotApiProcess`` does that and reads the records over ``/_fake/…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

ROOT = Path(__file__).resolve().parents[2]
LIMITED = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText"}
JSON_PARAMS = {"reply_markup", "commands", "scope", "entities", "allowed_updates"}


@dataclass(frozen=True)
class ApiLimits:
    """The limits the stand-in enforces (Telegram's by default)."""

    overall: int = 30
    overall_window: float = 1.0
    chat_rate: float = 1.0
    chat_burst: float = 4.0
    group: int = 20
    group_window: float = 60.0


@dataclass(frozen=True)
class Accepted:
    """One message the stand-in accepted."""

    method: str
    chat_id: str
    text: str
    at: float  # time.time() when it was accepted
    message_id: int


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class FakeBotApi:
    """Serve a rate-limited Bot API on 127.0.0.1 (a free port unless ``port`` is given)."""

    limits: ApiLimits = field(default_factory=ApiLimits)
    latency: tuple[float, float] = (0.0, 0.0)
    blocked: set[str] = field(default_factory=set)
    seed: int = 0
    port: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    too_many: Counter = field(default_factory=Counter)
    forbidden: int = 0
    calls: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._runner: web.AppRunner | None = None
        self._overall: deque[float] = deque()
        self._groups: dict[str, deque[float]] = {}
        self._chats: dict[str, _Bucket] = {}
        self._ids: dict[str, itertools.count] = {}

    # -- life cycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeBotApi:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/accepted", self._accepted)
        app.router.add_post("/_fake/reset", self._reset)
        app.router.add_post("/_fake/config", self._config)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what tests read ---------------------------------------------------------------------

    @property
    def too_many_total(self) -> int:
        return sum(self.too_many.values())

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [a.text for a in self.accepted if chat_id is None or a.chat_id == chat_id]

    def reset(self) -> None:
        """Forget what was accepted and refused (the windows keep running)."""
        self.accepted.clear()
        self.too_many.clear()
        self.forbidden = 0
        self.calls.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "too_many": self.too_many_total,
            "too_many_by_cause": dict(self.too_many),
            "forbidden": self.forbidden,
            "calls": dict(self.calls),
        }

    # -- the limits --------------------------------------------------------------------------

    def _refusal(self, chat_id: str, now: float) -> tuple[str, float] | None:
        """Return (cause, seconds to wait) if a message to ``chat_id`` is over a limit now."""
        lim = self.limits
        window = self._overall
        while window and window[0] <= now - lim.overall_window:
            window.popleft()
        if len(window) >= lim.overall:
            return "overall", window[0] + lim.overall_window - now
        if chat_id.startswith("-"):
            group = self._groups.setdefault(chat_id, deque())
            while group and group[0] <= now - lim.group_window:
                group.popleft()
            if len(group) >= lim.group:
                return "group", group[0] + lim.group_window - now
        else:
            bucket = self._chats.get(chat_id)
            if bucket is not None:
                bucket.tokens = min(
                    lim.chat_burst, bucket.tokens + (now - bucket.updated) * lim.chat_rate
                )
                bucket.updated = now
                if bucket.tokens < 1.0:
                    return "chat", (1.0 - bucket.tokens) / lim.chat_rate
        return None

    def _count(self, chat_id: str, now: float) -> None:
        self._overall.append(now)
        if chat_id.startswith("-"):
            self._groups.setdefault(chat_id, deque()).append(now)
        else:
            bucket = self._chats.setdefault(chat_id, _Bucket(self.limits.chat_burst, now))
            bucket.tokens -= 1.0

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
                for key, value in form.items():
                    params[key] = (
                        f"<file {value.filename}>" if isinstance(value, web.FileField) else value
                    )
        for key in JSON_PARAMS & params.keys():
            if isinstance(params[key], str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params

    async def _delay(self) -> None:
        low, high = self.latency
        if high > 0:
            await asyncio.sleep(self._random.uniform(low, high) / 2)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = request.match_info["token"]
        params = await self._params(request)
        self.calls[method] += 1
        await self._delay()  # on the way in
        try:
            if method in LIMITED:
                response = self._message_call(method, params)
            else:
                response = self._other_call(method, token, params)
        except (KeyError, ValueError) as exc:
            response = _error(400, f"Bad Request: {exc}")
        if method == "getUpdates":
            await asyncio.sleep(min(float(params.get("timeout") or 0), 0.5))
        await self._delay()  # on the way out
        return response

    def _message_call(self, method: str, params: dict[str, Any]) -> web.Response:
        chat_id = str(params["chat_id"])
        if chat_id in self.blocked:
            self.forbidden += 1
            return _error(403, "Forbidden: bot was blocked by the user")
        now = time.monotonic()
        refusal = self._refusal(chat_id, now)
        if refusal is not None:
            cause, wait = refusal
            self.too_many[cause] += 1
            retry_after = max(1, math.ceil(wait))
            return _error(
                429,
                f"Too Many Requests: retry after {retry_after}",
                parameters={"retry_after": retry_after},
            )
        self._count(chat_id, now)
        if method == "editMessageText":
            message_id = int(params["message_id"])
        else:
            message_id = next(self._ids.setdefault(chat_id, itertools.count(1)))
        text = str(params.get("text") or params.get("caption") or "")
        self.accepted.append(Accepted(method, chat_id, text, time.time(), message_id))
        message = _message(chat_id, message_id, text)
        if method == "sendPhoto":
            message["photo"] = [
                {"file_id": f"p{message_id}", "file_unique_id": "u", "width": 1, "height": 1}
            ]
        elif method == "sendDocument":
            message["document"] = {"file_id": f"d{message_id}", "file_unique_id": "u"}
        if method == "editMessageText":
            message["edit_date"] = int(time.time())
        return _ok(message)

    def _other_call(self, method: str, token: str, params: dict[str, Any]) -> web.Response:
        if method == "getMe":
            return _ok(
                {
                    "id": int(token.split(":")[0]),
                    "is_bot": True,
                    "first_name": "Fake",
                    "username": "FakePledgeBot",
                }
            )
        if method == "getUpdates":
            return _ok([])
        if method in {
            "setMyCommands",
            "deleteMyCommands",
            "answerCallbackQuery",
            "setWebhook",
            "deleteWebhook",
            "deleteMessage",
        }:
            return _ok(True)
        return _error(404, "Not Found: method not found")

    # -- control, for a stand-in in another process -------------------------------------------

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _accepted(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        return web.json_response([asdict(a) for a in self.accepted[after:]])

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _config(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "blocked" in body:
            self.blocked = {str(c) for c in body["blocked"]}
        if "limits" in body:
            self.limits = ApiLimits(**body["limits"])
        if "latency" in body:
            self.latency = tuple(body["latency"])
        return web.json_response({"ok": True})


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str, **extra: Any) -> web.Response:
    body = {"ok": False, "error_code": code, "description": description, **extra}
    return web.json_response(body, status=code)


def _message(chat_id: str, message_id: int, text: str) -> dict[str, Any]:
    chat_int = int(chat_id) if chat_id.lstrip("-").isdigit() else 0
    if chat_int < 0:
        chat = {"id": chat_int, "type": "supergroup", "title": "Fake group"}
    else:
        chat = {"id": chat_int, "type": "private", "first_name": "Fake"}
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": {"id": 1, "is_bot": True, "first_name": "Fake", "username": "FakePledgeBot"},
        "text": text,
    }


class FakeBotApiProcess:
    """Run the stand-in in a process of its own and read its records over HTTP."""

    def __init__(
        self,
        limits: ApiLimits | None = None,
        latency: tuple[float, float] = (0.0, 0.0),
        blocked: tuple[str, ...] = (),
    ) -> None:
        self.limits = limits or ApiLimits()
        self.latency = latency
        self.blocked = blocked
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> FakeBotApiProcess:
        args = [sys.executable, "-m", "tests.tools.fake_bot_api", "--orphan-stop"]
        args += ["--limits", json.dumps(asdict(self.limits))]
        args += ["--latency", str(self.latency[0]), str(self.latency[1])]
        for chat in self.blocked:
            args += ["--blocked", chat]
        self._proc = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the stand-in Bot API did not start")
        self.url = json.loads(line)["url"]
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    async def stats(self, http: ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.url}/_fake/stats") as r:
            return await r.json()

    async def accepted(self, http: ClientSession, after: int = 0) -> list[Accepted]:
        async with http.get(f"{self.url}/_fake/accepted", params={"after": after}) as r:
            return [Accepted(**a) for a in await r.json()]

    async def reset(self, http: ClientSession) -> None:
        async with http.post(f"{self.url}/_fake/reset") as r:
            await r.read()


async def _serve(args: argparse.Namespace) -> None:
    limits = ApiLimits(**json.loads(args.limits)) if args.limits else ApiLimits()
    api = FakeBotApi(
        limits=limits, latency=tuple(args.latency), blocked=set(args.blocked), port=args.port
    )
    await api.start()
    print(json.dumps({"url": api.url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.orphan_stop:

        def watch() -> None:
            with contextlib.suppress(OSError):
                while os.read(0, 4096):
                    pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch, daemon=True).start()
    await stop.wait()
    await api.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--limits", default="", help="ApiLimits as JSON")
    parser.add_argument("--latency", type=float, nargs=2, default=(0.0, 0.0))
    parser.add_argument("--blocked", action="append", default=[])
    parser.add_argument("--orphan-stop", action="store_true", help="stop when stdin closes")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
