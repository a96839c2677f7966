r"""Group robots as messengers: WeCom (企业微信群机器人), DingTalk (钉钉机器人), Feishu (飞书).

A robot is outbound only: we POST to its webhook and it posts into its group; nothing said in
the group comes back. One ``RobotMessenger`` per kind renders a ``RenderedMessage`` in the
robot's richest fitting format and signs it:

* WeCom: ``markdown``; a chart (a photo attachment) follows as an ``image`` message (base64 and
  md5 of the PNG). No signature: the webhook's ``key`` is the secret.
* DingTalk: ``markdown`` (a title and the text); 加签 when a secret is set: ``timestamp`` (ms)
  and ``sign`` = URL-encoded Base64 of HMAC-SHA256(secret, ``timestamp\nsecret``) as query
  parameters.
* Feishu/Lark: an ``interactive`` card with one ``lark_md`` block; 签名校验 when a secret is set:
  ``timestamp`` (s) and ``sign`` = Base64 of HMAC-SHA256 keyed with ``timestamp\nsecret`` over
  nothing, in the body.

Files a robot cannot take (every document, and a chart on DingTalk and Feishu, whose webhooks
take images only by a URL or an uploaded key) become a line saying where to get them, with a
link to the bot when its username is known. Buttons with a URL become links; callback buttons
are dropped (nobody can press them). Edits and command menus are no-ops.

Answers are mapped to ``DeliveryError``: rate limited → ``retry_after`` (the outbox holds the
row and sends it later, once); a revoked robot or a refused signature → permanent, and the link
is marked broken (``campaign.robots.mark_broken`` tells the office once); other refusals →
permanent. HTTP errors 5xx and network faults raise as they are (the worker retries with
backoff).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

from bot.delivery import DeliveryError, RenderedMenu, RenderedMessage, split_text
from campaign import robots as campaign_robots
from campaign.db import Store
from campaign.publish import GROUP_LOCALE
from models.errors import DomainError
from models.robot import ROBOT_KINDS
from templates import catalog

log = logging.getLogger(__name__)

#: characters of text per message (WeCom: 4096 bytes of markdown; CJK takes 3 bytes each)
TEXT_LIMITS = {"wecom": 1300, "dingtalk": 5000, "feishu": 8000}
#: bytes of UTF-8 text per message, whatever the characters (emoji take 4 bytes each)
BYTE_LIMITS = {"wecom": 4000, "dingtalk": 18000, "feishu": 28000}
#: the largest image WeCom takes (2 MB before base64)
WECOM_IMAGE_LIMIT = 2 * 1024 * 1024

#: error codes of each kind: rate limited, and the robot refusing us for good (revoked robot,
#: bad signature, keyword or IP rules: only the office can fix them)
RATE_LIMITED = {
    "wecom": {45009},
    "dingtalk": {130101, 130102},
    "feishu": {9499, 11232, 11233},
}
BROKEN = {
    "wecom": {93000, 93004, 93008},
    "dingtalk": {310000, 300001, 300005, 400102, 400101},
    "feishu": {19001, 19002, 19021, 19022, 19024},
}


# -- signing -----------------------------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Return DingTalk's 加签 ``sign`` parameter, URL-encoded, for a millisecond timestamp."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Return Feishu's ``sign`` body field for a timestamp in seconds."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_request(
    kind: str, url: str, secret: str, body: dict[str, Any], now: float
) -> tuple[str, dict[str, Any]]:
    """Return the URL and body to POST for one message, signed when the robot has a secret."""
    if not secret:
        return url, body
    if kind == "dingtalk":
        ms = int(now * 1000)
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}timestamp={ms}&sign={dingtalk_sign(secret, ms)}", body
    if kind == "feishu":
        s = int(now)
        return url, {"timestamp": str(s), "sign": feishu_sign(secret, s), **body}
    return url, body


# -- rendering ---------------------------------------------------------------------------------


def _links(message: RenderedMessage) -> list[str]:
    return [f"[{b.text}]({b.url})" for row in message.buttons for b in row if b.url]


def _fallback(attachment: dict, bot_username: str | None) -> str:
    name = attachment.get("filename") or ""
    key = "robot.file_elsewhere_link" if bot_username else "robot.file_elsewhere"
    link = f"https://t.me/{bot_username}" if bot_username else ""
    return catalog().render(key, GROUP_LOCALE, name=name, link=link)


def _text_body(kind: str, text: str) -> dict[str, Any]:
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    if kind == "dingtalk":
        title = (text.strip().splitlines() or [""])[0][:64]
        # DingTalk's markdown joins lines unless a line ends with two spaces
        return {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text.replace("\n", "  \n")},
        }
    return {
        "msg_type": "interactive",
        "card": {"elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}]},
    }


def _fit(parts: list[str], most: int) -> list[str]:
    out: list[str] = []
    for part in parts:
        if len(part.encode()) <= most:
            out.append(part)
        else:
            out += _fit(split_text(part, max(1, len(part) // 2)), most)
    return out


def render(kind: str, message: RenderedMessage, bot_username: str | None = None) -> list[dict]:
    """Return the request bodies (unsigned) that carry one message to a robot, in order."""
    text = message.text or ""
    if message.poll is not None:
        text = message.poll.numbered(text)
    lines = [text] if text else []
    lines += _links(message)
    attachment = message.attachment or {}
    image: dict | None = None
    if attachment:
        data = attachment.get("data")
        if (
            kind == "wecom"
            and attachment.get("kind") == "photo"
            and isinstance(data, bytes)
            and len(data) <= WECOM_IMAGE_LIMIT
        ):
            image = {
                "msgtype": "image",
                "image": {
                    "base64": base64.b64encode(data).decode(),
                    "md5": hashlib.md5(data).hexdigest(),
                },
            }
        else:
            lines.append(_fallback(attachment, bot_username))
    full = "\n\n".join(lines)
    parts = _fit(split_text(full, TEXT_LIMITS[kind]), BYTE_LIMITS[kind]) if full else []
    bodies = [_text_body(kind, part) for part in parts]
    if image is not None:
        bodies.append(image)
    return bodies


def calls(kind: str, message: RenderedMessage) -> float:
    """Return how many posts a message takes (the rate limiter's cost)."""
    return float(
        max(1, len(render(kind, dataclasses.replace(message, attachment=_stub(message)))))
    )


def _stub(message: RenderedMessage) -> dict | None:
    # counting needs the shape, not the bytes: a small stand-in keeps base64 out of it
    att = message.attachment
    if not att:
        return att
    data = att.get("data")
    small = b"x" if isinstance(data, bytes) and len(data) <= WECOM_IMAGE_LIMIT else data
    return {**att, "data": small}


# -- answers -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a robot's answer means: ok, rate limited, broken (revoked / refused) or refused."""

    ok: bool
    code: int | None
    text: str
    rate_limited: bool = False
    broken: bool = False


def judge(kind: str, status: int, answer: Any) -> Verdict:
    """Read a robot's answer (HTTP status and JSON body)."""
    code: int | None = None
    msg = ""
    if isinstance(answer, dict):
        raw = answer.get("errcode", answer.get("code", answer.get("StatusCode")))
        try:
            code = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            code = None
        msg = str(answer.get("errmsg", answer.get("msg", answer.get("StatusMessage", ""))))
    text = f"{kind} {code if code is not None else status}: {msg}".strip()
    if status == 429 or (code is not None and code in RATE_LIMITED[kind]):
        return Verdict(False, code, text, rate_limited=True)
    if code is not None and code in BROKEN[kind]:
        return Verdict(False, code, text, broken=True)
    if status in (401, 403, 404, 410):
        return Verdict(False, code, text, broken=True)
    if status >= 500:
        return Verdict(False, code, text)
    if status == 200 and code == 0:
        return Verdict(True, code, text)
    return Verdict(False, code, text)


# -- the messengers ----------------------------------------------------------------------------


class Robots:
    """The group robots of one process: their HTTP session, the key to their webhooks.

    Args:
        store: the database (the sealed webhooks; marking a link broken).
        key: the 32-byte key that sealed the webhooks.
        retry_after: seconds to hold a message after a robot says "rate limited".
        bot_username: the Telegram bot, for the link in a file's fallback line.
        clock: wall time in seconds (signatures' timestamps).
    """

    def __init__(
        self,
        store: Store,
        *,
        key: bytes,
        retry_after: float = 60.0,
        bot_username: str | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 20.0,
    ) -> None:
        self.store = store
        self.key = key
        self.retry_after = retry_after
        self.bot_username = bot_username
        self.clock = clock
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def messengers(self) -> dict[str, RobotMessenger]:
        """Return one messenger per robot kind, keyed by platform."""
        return {kind: RobotMessenger(self, kind) for kind in ROBOT_KINDS}

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._http

    async def hook(self, chat_id: str) -> campaign_robots.Hook | None:
        """Return a link's webhook in clear (None: the link is gone)."""
        async with self.store.read() as session:
            return await campaign_robots.hook(session, chat_id, self.key)

    async def post(self, hook: campaign_robots.Hook, body: dict) -> tuple[int, Any]:
        """POST one body to a robot, signed; return the HTTP status and the JSON answer."""
        url, signed = signed_request(hook.platform, hook.url, hook.secret, body, self.clock())
        try:
            # encoded: the signature is already URL-encoded and must reach the robot as it is
            async with self._session().post(URL(url, encoded=True), json=signed) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # never the exception's text: it may carry the webhook URL, which is a secret
            raise ConnectionError(f"{hook.platform}: {type(exc).__name__}") from None
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if answer is None and resp.status == 200:
            raise ConnectionError(f"{hook.platform}: an answer that is not JSON")
        return resp.status, answer

    async def broken(self, chat_id: str, reason: str) -> None:
        """Mark a link broken and tell the office (once)."""
        async with self.store.write() as session:
            if await campaign_robots.mark_broken(session, chat_id, reason):
                log.warning("robot %s is broken: %s", chat_id, reason)

    async def test(self, chat_id: str, text: str) -> tuple[Verdict, Any]:
        """Send one test text now, not through the outbox; return the verdict and the answer.

        Raises:
            DomainError: ``robot.unknown`` or ``robot.unreadable``.
        """
        hook = await self.hook(chat_id)
        if hook is None:
            raise DomainError("robot.unknown", id=chat_id)
        status, answer = await self.post(hook, _text_body(hook.platform, text))
        return judge(hook.platform, status, answer), answer


class RobotMessenger:
    """One kind of group robot as a ``Messenger``: send only."""

    def __init__(self, robots: Robots, platform: str) -> None:
        self.robots = robots
        self.platform = platform
        #: outbox row -> the posts of its message already accepted, so that a retry after a
        #: refusal in the middle (rate limited) posts only the rest (in this process)
        self._posted: dict[int, int] = {}

    def cost(self, message: RenderedMessage) -> float:
        """Return the posts a message takes (the outbox's rate-limiter cost)."""
        return calls(self.platform, message)

    async def send(self, chat_id: str, message: RenderedMessage) -> str | None:
        """Post a message to the robot; raise ``DeliveryError`` for what the robot refused."""
        try:
            hook = await self.robots.hook(chat_id)
        except DomainError as exc:
            log.error("robot %s: the webhook cannot be unsealed (was the key changed?)", chat_id)
            raise DeliveryError(f"robot {chat_id}: {exc.key}", permanent=True) from exc
        if hook is None:
            raise DeliveryError(f"robot {chat_id} is no longer linked", permanent=True)
        if hook.broken:
            raise DeliveryError(f"robot {chat_id} is broken", permanent=True)
        row = message.outbox_id
        done = self._posted.get(row, 0) if row is not None else 0
        for i, body in enumerate(render(self.platform, message, self.robots.bot_username)):
            if i < done:
                continue  # accepted before a refusal of a later post: not again
            status, answer = await self.robots.post(hook, body)
            verdict = judge(self.platform, status, answer)
            if verdict.ok:
                if row is not None:
                    self._posted[row] = i + 1
                continue
            if verdict.rate_limited:
                raise DeliveryError(verdict.text, retry_after=self.robots.retry_after)
            if verdict.broken:
                self._posted.pop(row, None)
                await self.robots.broken(chat_id, verdict.text)
                raise DeliveryError(verdict.text, permanent=True)
            if status >= 500:
                raise ConnectionError(verdict.text)  # the worker retries with backoff
            log.warning("robot %s refused a message: %s", chat_id, verdict.text)
            self._posted.pop(row, None)
            raise DeliveryError(verdict.text, permanent=True)
        self._posted.pop(row, None)
        return None

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        """Robots cannot edit what they posted: nothing to do."""

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        """Robots have no command menus: nothing to do."""
