"""The HTTP SMS gateway: a signed JSON POST per message, and a signed callback for what comes in.

Outbound: ``POST SMS_GATEWAY`` with a JSON body whose field names come from
``bot/sms_providers.toml`` (SMS_HTTP_PROVIDER), signed with HMAC-SHA256 over
``"<timestamp>.<body>"`` under SMS_HTTP_SECRET, in the headers ``X-PledgeBot-Timestamp`` (unix
seconds) and ``X-PledgeBot-Signature`` (hex). The provider splits the text itself; the segments
are counted here by the same rule (70 / 67 UCS-2 characters, 160 / 153 GSM ones).

Answers: 2xx with an ok code: sent (the id at the provider's path); 429 or a throttling code:
try again after ``Retry-After``; a refused number: permanent; 5xx, a timeout or no connection: a
network fault, retried with backoff.

Inbound: the gateway posts to ``http://SMS_CALLBACK_HOST:SMS_CALLBACK_PORT/sms/callback`` a JSON
object (or a list of them), signed the same way:
``{"type": "mo", "id": "…", "from": "13800000001", "text": "1"}`` or
``{"type": "receipt", "id": "<the id we were given>", "status": "DELIVRD"}``.
A bad or stale signature: 403 and nothing changes; an update the store could not record: 503,
so the gateway posts it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.delivery import DeliveryError
from bot.settings import PROVIDERS, Settings
from bot.sms import Accepted, Inbound, segment_count
from campaign.db import StoreUnavailable, is_unavailable
from campaign.identity import mask_phone

log = logging.getLogger(__name__)

PROVIDERS_FILE = PROVIDERS
TIMESTAMP_HEADER = "X-PledgeBot-Timestamp"
SIGNATURE_HEADER = "X-PledgeBot-Signature"
#: a callback signed longer ago than this is refused (a replayed request)
MAX_SKEW = 300
CALLBACK_PATH = "/sms/callback"
TIMEOUT = 15.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float) -> bool:
    """Tell whether a request is signed with ``secret`` and recent."""
    if not secret or not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def load_providers() -> dict[str, dict[str, Any]]:
    """Return the field mappings of the known providers."""
    with PROVIDERS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def _path(data: Any, path: str) -> Any:
    for step in path.split("."):
        if isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        elif isinstance(data, dict):
            data = data.get(step)
        else:
            return None
    return data


@dataclass(frozen=True)
class Mapping:
    """One provider's field names (a table of bot/sms_providers.toml)."""

    phone: str
    text: str
    phone_format: str = "plain"
    phone_list: bool = False
    text_format: str = "plain"
    sign: str = ""
    id: str = "id"
    code: str = ""
    ok: tuple[str, ...] = ()
    throttled: tuple[str, ...] = ()
    bad_number: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def named(cls, name: str) -> Mapping:
        """Return the mapping of provider ``name``."""
        table = load_providers().get(name)
        if table is None:
            raise ValueError(f"SMS_HTTP_PROVIDER {name!r} is not in {PROVIDERS_FILE.name}")
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()},
        )

    def body(self, phone: str, text: str, source: str) -> dict[str, Any]:
        """Return the request body for one message."""
        number = {"plain": phone, "86": "86" + phone, "+86": "+86" + phone}[self.phone_format]
        body: dict[str, Any] = dict(self.extra)
        body[self.phone] = [number] if self.phone_list else number
        if self.text_format == "list":
            body[self.text] = [text]
        elif self.text_format.startswith("json:"):
            name = self.text_format.removeprefix("json:")
            body[self.text] = json.dumps({name: text}, ensure_ascii=False)
        else:
            body[self.text] = text
        if self.sign:
            body[self.sign] = source
        return body


@dataclass
class HttpGateway:
    """An SMS provider (or a relay) reached by signed JSON POSTs."""

    url: str
    secret: str
    mapping: Mapping
    source: str = ""
    callback_host: str = "127.0.0.1"
    callback_port: int | None = None
    name: str = "http"
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _inbound: Inbound | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpGateway:
        """Return the gateway of ``SMS_GATEWAY=https://…``."""
        if not settings.sms_http_secret:
            raise ValueError("an HTTP SMS_GATEWAY needs SMS_HTTP_SECRET (it signs every request)")
        return cls(
            url=settings.sms_gateway or "",
            secret=settings.sms_http_secret,
            mapping=Mapping.named(settings.sms_http_provider),
            source=settings.sms_source,
            callback_host=settings.sms_callback_host,
            callback_port=settings.sms_callback_port,
        )

    async def start(self, inbound: Inbound) -> None:
        """Open the client session and, with SMS_CALLBACK_PORT, the callback server."""
        self._inbound = inbound
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        if self.callback_port:
            app = web.Application(client_max_size=256 * 1024)
            app.router.add_post(CALLBACK_PATH, self.callback)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.callback_host, self.callback_port).start()
            log.info(
                "SMS callbacks on %s:%s%s", self.callback_host, self.callback_port, CALLBACK_PATH
            )

    async def stop(self) -> None:
        """Close the callback server and the client session."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def submit(self, phone: str, text: str, *, ref: int) -> list[Accepted]:
        """POST one message; return the provider's id and the segments counted here."""
        if self._session is None:
            raise ConnectionError("the HTTP gateway is not started")
        body = json.dumps(self.mapping.body(phone, text, self.source), ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self.secret, stamp, body),
        }
        async with self._session.post(self.url, data=body, headers=headers) as resp:
            status = resp.status
            retry_after = resp.headers.get("Retry-After", "")
            try:
                answer = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                answer = None
        code = str(_path(answer, self.mapping.code) or "") if self.mapping.code else ""
        if status == 429 or (code and code in self.mapping.throttled):
            wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 1.0
            raise DeliveryError(f"SMS gateway throttled ({status} {code})", retry_after=wait)
        if code and code in self.mapping.bad_number:
            raise DeliveryError(f"SMS gateway refused the number ({code})", permanent=True)
        if status >= 500:
            raise ConnectionError(f"SMS gateway answered {status}")
        if status >= 400 or (self.mapping.code and code not in self.mapping.ok):
            raise DeliveryError(f"SMS gateway refused the message ({status} {code})")
        message_id = _path(answer, self.mapping.id)
        if not message_id:
            raise DeliveryError(f"SMS gateway gave no message id ({status})")
        log.info("sms to %s accepted by the HTTP gateway", mask_phone(phone))
        return [Accepted(f"http:{message_id}", segment_count(text))]

    async def callback(self, request: web.Request) -> web.Response:
        """Take inbound SMS and receipts the gateway posts (signed)."""
        body = await request.read()
        if not verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            time.time(),
        ):
            log.warning("SMS callback with a bad signature refused (%d bytes)", len(body))
            return web.Response(status=403, text="Forbidden")
        try:
            data = json.loads(body)
            items = data if isinstance(data, list) else [data]
            if not all(isinstance(i, dict) for i in items):
                raise ValueError("not objects")
        except ValueError:
            return web.Response(status=400, text="Bad Request")
        assert self._inbound is not None
        try:
            for item in items:
                kind, message_id = item.get("type"), str(item.get("id") or "")
                if kind == "receipt" and message_id:
                    status = str(item.get("status") or "")
                    await self._inbound.receipt(f"http:{message_id}", status)
                elif kind == "mo" and message_id:
                    sender, text = str(item.get("from") or ""), str(item.get("text") or "")
                    await self._inbound.message(sender, text, f"sms:http:{message_id}")
        except StoreUnavailable:
            return web.Response(status=503, text="Service Unavailable")
        except Exception as exc:
            if is_unavailable(exc):
                return web.Response(status=503, text="Service Unavailable")
            raise
        return web.json_response({"ok": True})
