"""A local stand-in for the group-robot APIs of WeCom, DingTalk and Feishu (one aiohttp server).

It answers as the real services do, with their error shapes, so the bot's mapping is tested
against what they say:

* WeCom ``POST /cgi-bin/webhook/send?key=K``: markdown/text/image (the image's md5 is checked
  against its base64); unknown or revoked key → 93000; more than 20 a minute → 45009.
* DingTalk ``POST /robot/send?access_token=T[&timestamp=&sign=]``: with a secret the signature
  (HMAC-SHA256 of ``timestamp\\nsecret``, Base64) and the timestamp (within one hour) are checked
  → 310000; unknown or revoked token → 300001; more than 20 a minute → 130101.
* Feishu ``POST /open-apis/bot/v2/hook/{token}``: with a secret the body's ``timestamp`` and
  ``sign`` are checked (within one hour) → 19021; unknown or revoked → 19001; more than 5 a
  second or 100 a minute → 11232.

A robot can be told to answer "rate limited" to its next n requests (``rate_limit_next``) and
can be revoked. Everything it accepted is kept in ``received``; everything it refused in
``refused``. It runs in a thread with its own loop, like the Bot API proxy.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WINDOW = 3600.0  # DingTalk and Feishu: a signature's timestamp must be within an hour

OK = {
    "wecom": {"errcode": 0, "errmsg": "ok"},
    "dingtalk": {"errcode": 0, "errmsg": "ok"},
    "feishu": {
        "StatusCode": 0,
        "StatusMessage": "success",
        "code": 0,
        "data": {},
        "msg": "success",
    },
}
REVOKED = {
    "wecom": {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1733000000000000000000]"},
    "dingtalk": {"errcode": 300001, "errmsg": "token is not exist"},
    "feishu": {
        "code": 19001,
        "data": {},
        "msg": "param invalid: incoming webhook access token invalid",
    },
}
TOO_FAST = {
    "wecom": {"errcode": 45009, "errmsg": "api freq out of limit"},
    "dingtalk": {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
    "feishu": {
        "code": 11232,
        "data": {},
        "msg": "frequency limited psm[lark.oapi.app_platform_runtime]",
    },
}
BAD_SIGN = {
    "dingtalk": {
        "errcode": 310000,
        "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com]",
    },
    "feishu": {
        "code": 19021,
        "data": {},
        "msg": "sign match fail or timestamp is not within one hour from current time",
    },
}
#: (window seconds, most messages in it) per kind
LIMITS = {
    "wecom": [(60.0, 20)],
    "dingtalk": [(60.0, 20)],
    "feishu": [(1.0, 5), (60.0, 100)],
}


@dataclass
class Received:
    """One request a robot accepted (or refused)."""

    body: dict
    at: float
    answer: dict
    query: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The message's text, whatever its type (empty for an image)."""
        b = self.body
        if "markdown" in b:
            return b["markdown"].get("content") or b["markdown"].get("text", "")
        if "text" in b and isinstance(b["text"], dict):
            return b["text"].get("content", "")
        card = b.get("card") or {}
        return "\n".join(e.get("text", {}).get("content", "") for e in card.get("elements", []))

    @property
    def image(self) -> bytes | None:
        """The image's bytes, for a WeCom image message."""
        img = self.body.get("image")
        return base64.b64decode(img["base64"]) if img else None


@dataclass
class Robot:
    """One robot of the stand-in: its kind, token, optional secret and what it got."""

    kind: str
    token: str
    secret: str = ""
    base: str = ""
    revoked: bool = False
    rate_limit_next: int = 0
    #: answer the next n requests with an HTTP 502 and an HTML page, as a broken gateway does
    server_error_next: int = 0
    #: answer "rate limited" once, to the request after this many more were accepted (a limit
    #: hit in the middle of a message of several posts); 0: never
    rate_limit_after: int = 0
    received: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    times: deque = field(default_factory=deque)

    @property
    def webhook(self) -> str:
        """The webhook URL the office pastes into ``pledgebot group add``."""
        if self.kind == "wecom":
            return f"{self.base}/cgi-bin/webhook/send?key={self.token}"
        if self.kind == "dingtalk":
            return f"{self.base}/robot/send?access_token={self.token}"
        return f"{self.base}/open-apis/bot/v2/hook/{self.token}"


def dingtalk_expected(secret: str, timestamp: str) -> str:
    """Return the DingTalk signature (decoded from the URL) a request must carry."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_expected(secret: str, timestamp: str) -> str:
    """Return the Feishu signature a request must carry."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class RobotStandIn:
    """The three robot APIs on one local port.

    Args:
        clock: wall time in seconds (the signatures' window and the rate limits).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.robots: dict[tuple[str, str], Robot] = {}
        self.url = ""
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> RobotStandIn:
        """Start serving; return self."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        try:
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/cgi-bin/webhook/send", self._wecom)
        app.router.add_post("/robot/send", self._dingtalk)
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._feishu)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    # -- robots --------------------------------------------------------------------------------

    def add(
        self, kind: str, *, secret: str = "", rate_limit_next: int = 0, rate_limit_after: int = 0
    ) -> Robot:
        """Make a robot of ``kind``; return it (its ``webhook`` is what the office pastes)."""
        robot = Robot(
            kind=kind,
            token=secrets.token_hex(16),
            secret=secret,
            base=self.url,
            rate_limit_next=rate_limit_next,
            rate_limit_after=rate_limit_after + 1 if rate_limit_after else 0,
        )
        with self._lock:
            self.robots[(kind, robot.token)] = robot
        return robot

    def wait_for(
        self, robot: Robot, count: int = 1, timeout: float = 30.0, where=lambda r: True
    ) -> list[Received]:
        """Wait until ``robot`` accepted ``count`` requests matching ``where``; return them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                got = [r for r in robot.received if where(r)]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    # -- the APIs ------------------------------------------------------------------------------

    def _answer(self, robot: Robot | None, kind: str, body: dict, query: dict) -> dict:
        now = self.clock()
        with self._lock:
            if robot is None or robot.revoked:
                return REVOKED[kind]
            record = Received(body=body, at=now, answer={}, query=query)
            answer = self._check(robot, body, query, now)
            record.answer = answer
            (robot.received if answer is OK[kind] else robot.refused).append(record)
            return answer

    def _check(self, robot: Robot, body: dict, query: dict, now: float) -> dict:
        kind = robot.kind
        if robot.secret and kind == "dingtalk":
            ts, sign = query.get("timestamp", ""), query.get("sign", "")
            if (
                not ts.isdigit()
                or abs(now - int(ts) / 1000) > WINDOW
                or not hmac.compare_digest(sign, dingtalk_expected(robot.secret, ts))
            ):
                return BAD_SIGN[kind]
        if robot.secret and kind == "feishu":
            ts, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            if (
                not ts.isdigit()
                or abs(now - int(ts)) > WINDOW
                or not hmac.compare_digest(sign, feishu_expected(robot.secret, ts))
            ):
                return BAD_SIGN[kind]
        if robot.rate_limit_next > 0:
            robot.rate_limit_next -= 1
            return TOO_FAST[kind]
        if robot.rate_limit_after > 0:
            robot.rate_limit_after -= 1
            if robot.rate_limit_after == 0:
                return TOO_FAST[kind]
        longest = max(w for w, _ in LIMITS[kind])
        while robot.times and robot.times[0] <= now - longest:
            robot.times.popleft()
        for window, most in LIMITS[kind]:
            if sum(1 for t in robot.times if t > now - window) >= most:
                return TOO_FAST[kind]
        problem = self._malformed(kind, body)
        if problem is not None:
            return problem
        robot.times.append(now)
        return OK[kind]

    @staticmethod
    def _malformed(kind: str, body: dict) -> dict | None:
        if kind == "wecom":
            if body.get("msgtype") == "markdown":
                if len(body["markdown"].get("content", "").encode()) > 4096:
                    return {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}
            elif body.get("msgtype") == "image":
                img = body.get("image") or {}
                data = base64.b64decode(img.get("base64", ""))
                if hashlib.md5(data).hexdigest() != img.get("md5"):
                    return {"errcode": 40009, "errmsg": "invalid image md5"}
            elif body.get("msgtype") != "text":
                return {"errcode": 40008, "errmsg": "invalid message type"}
        if kind == "dingtalk" and body.get("msgtype") not in ("markdown", "text"):
            return {"errcode": 40035, "errmsg": "缺少参数 msgtype"}
        if kind == "feishu" and body.get("msg_type") not in ("interactive", "text", "post"):
            return {"code": 9499, "data": {}, "msg": "Bad Request"}
        return None

    async def _wecom(self, request: web.Request) -> web.Response:
        token = request.query.get("key", "")
        body = await request.json()
        robot = self.robots.get(("wecom", token))
        return self._respond(robot, "wecom", body, dict(request.query))

    async def _dingtalk(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        body = await request.json()
        robot = self.robots.get(("dingtalk", token))
        return self._respond(robot, "dingtalk", body, dict(request.query))

    async def _feishu(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body: Any = await request.json()
        robot = self.robots.get(("feishu", token))
        return self._respond(robot, "feishu", body, {})

    def _respond(self, robot: Robot | None, kind: str, body: dict, query: dict) -> web.Response:
        with self._lock:
            if robot is not None and robot.server_error_next > 0:
                robot.server_error_next -= 1
                return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        return web.json_response(self._answer(robot, kind, body, query))
