"""The SMS door: segments, signature, quiet hours, the messenger, and the inbound side.

An SMS address is the roster's 11-digit mainland number (``13800000001``); gateways add and
strip ``86`` themselves. The outbox worker renders a row as for any platform and hands the
text to ``SmsMessenger``, which

* holds the row during the quiet hours (local time of the campaign): ``DeliveryError`` with
  ``hold_until`` the next morning, so the row waits without spending an attempt;
* puts the signature (catalog ``sms.signature``) in front and drops buttons;
* hands the text to the gateway (``bot.sms_smpp`` or ``bot.sms_http``), which splits it into
  segments and answers the ids it got; the ids and segments are recorded per outbox row in
  ``sms_sent`` (``campaign.sms_stats``), and receipts update them.

Inbound SMS become ``TextReceived`` from ``Sender(platform="sms", user_id=phone, chat_id=phone)``
and go to the core like any update; the core decides what a sender may do.

Phone numbers are logged as ``138****0001`` only (``mask``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from smpplib import consts as smpp_consts
from smpplib.gsm import gsm_encode, make_parts
from sqlmodel import select

from bot.delivery import DeliveryError, RenderedMessage
from bot.settings import Settings
from campaign import sms_stats
from campaign.db import Store, is_unavailable
from campaign.identity import mask_phone, normalize_phone
from handlers.core import Core
from handlers.events import ChatType, Sender, TextReceived
from models.base import utcnow
from models.campaign import DEFAULT_TIMEZONE, Campaign
from templates import catalog

log = logging.getLogger(__name__)

PLATFORM = "sms"
#: one SMS: 160 GSM characters or 70 UCS-2 ones; a part of a long one: 153 or 67
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
#: the most segments one message may take (a longer text is cut, never refused)
MAX_SEGMENTS = 10
#: an update id must fit the processed-update table
UPDATE_ID_LIMIT = 64

_MOBILE = re.compile(r"(?<!\d)(\+?86)?(1\d{2})\d{4}(\d{4})(?!\d)")


def mask(text: str) -> str:
    """Return ``text`` with every mainland mobile number cut to its last four digits."""
    return _MOBILE.sub(lambda m: f"{m.group(2)}****{m.group(3)}", text)


class MaskPhones(logging.Filter):
    """A logging filter that masks mobile numbers in every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            formatter = logging.Formatter()
            record.exc_text = mask(formatter.formatException(record.exc_info))
        return True


# -- segments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segments:
    """A text as the SMSC takes it: the parts (UDH included), their coding and esm_class."""

    parts: tuple[bytes, ...]
    data_coding: int
    esm_class: int

    @property
    def count(self) -> int:
        """Return how many SMS the operator bills."""
        return len(self.parts)


def _gsm(text: str) -> bytes | None:
    try:
        return gsm_encode(text)
    except (UnicodeError, ValueError):
        return None


def _chunks(units: list[bytes], size: int) -> list[bytes]:
    """Join encoded characters into chunks of at most ``size`` bytes, never splitting one."""
    chunks: list[bytes] = []
    current = b""
    for unit in units:
        if len(current) + len(unit) > size:
            chunks.append(current)
            current = b""
        current += unit
    if current:
        chunks.append(current)
    return chunks


def segment(text: str, ref: int = 0) -> Segments:
    """Split ``text`` into SMS parts with concatenation headers (8-bit reference ``ref``).

    Pure GSM text goes as GSM-7 (160 characters, 153 per part), anything else as UCS-2 (70,
    67 per part); a character is never cut (an escaped GSM character or a surrogate pair stays
    whole). smpplib's ``make_parts`` gives the short case; long ones are cut here by character.
    """
    gsm = _gsm(text)
    if gsm is not None and len(gsm) <= GSM_SINGLE:
        parts, coding, esm = make_parts(text)
        return Segments(tuple(parts), coding, esm)
    if gsm is None and len(text.encode("utf-16-be")) <= UCS2_SINGLE * 2:
        return Segments(
            (text.encode("utf-16-be"),),
            smpp_consts.SMPP_ENCODING_ISO10646,
            smpp_consts.SMPP_MSGTYPE_DEFAULT,
        )
    if gsm is not None:
        units, size, coding = [gsm_encode(c) for c in text], GSM_PART, 0
        coding = smpp_consts.SMPP_ENCODING_DEFAULT
    else:
        units = [c.encode("utf-16-be") for c in text]
        size, coding = UCS2_PART * 2, smpp_consts.SMPP_ENCODING_ISO10646
    chunks = _chunks(units, size)[:MAX_SEGMENTS]
    total = len(chunks)
    header = bytes((5, 0, 3, ref & 0xFF, total))
    parts = tuple(header + bytes((i,)) + chunk for i, chunk in enumerate(chunks, 1))
    return Segments(parts, coding, smpp_consts.SMPP_GSMFEAT_UDHI)


def segment_count(text: str) -> int:
    """Return how many SMS ``text`` takes."""
    return segment(text).count


def decode(payload: bytes, data_coding: int) -> str:
    """Decode a short message's bytes (UCS-2, Latin-1, or GSM-7 unpacked)."""
    if data_coding == smpp_consts.SMPP_ENCODING_ISO10646:
        return payload.decode("utf-16-be", errors="replace")
    if data_coding == smpp_consts.SMPP_ENCODING_ISO88591:
        return payload.decode("latin-1")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def split_udh(payload: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """Return ((reference, total, number), text bytes) of a part with a UDH, or (None, bytes)."""
    if not payload:
        return None, payload
    length = payload[0]
    header, body = payload[1 : 1 + length], payload[1 + length :]
    i = 0
    while i + 1 < len(header):
        ie, size = header[i], header[i + 1]
        data = header[i + 2 : i + 2 + size]
        if ie == 0x00 and size == 3:
            return (data[0], data[1], data[2]), body
        if ie == 0x08 and size == 4:
            return ((data[0] << 8) | data[1], data[2], data[3]), body
        i += 2 + size
    return None, body


# -- quiet hours ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which no SMS goes out (``start`` to ``end``, across midnight if needed)."""

    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: str, tz: str = DEFAULT_TIMEZONE) -> QuietHours | None:
        """Return the quiet hours of ``"21:00-08:00"``, or None for an empty spec."""
        spec = (spec or "").strip()
        if not spec:
            return None
        first, last = spec.split("-")
        h1, m1 = (int(x) for x in first.split(":"))
        h2, m2 = (int(x) for x in last.split(":"))
        if (h1, m1) == (h2, m2):
            return None
        return cls(time(h1, m1), time(h2, m2), ZoneInfo(tz))

    def hold_until(self, now: datetime) -> datetime | None:
        """Return when the quiet hours around ``now`` end (UTC), or None outside them."""
        local = now.astimezone(self.tz)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            quiet = self.start <= t < self.end
        else:
            quiet = t >= self.start or t < self.end
        if not quiet:
            return None
        day = local.date() if t < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz).astimezone(now.tzinfo)


# -- gateways -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """One id a gateway answered for a submit, and the segments it covers."""

    message_id: str
    segments: int
    part: int = 0


class Inbound(Protocol):
    """What a gateway calls with what it receives (from its own thread or task)."""

    async def message(self, phone: str, text: str, message_id: str) -> None:
        """A mobile-originated SMS, parts joined; raises if it could not be recorded."""
        ...

    async def receipt(self, message_id: str, state: str) -> None:
        """A delivery receipt of a message id we were given."""
        ...


class Gateway(Protocol):
    """A way to the SMS network."""

    name: str

    async def start(self, inbound: Inbound) -> None:
        """Connect (in the background: a gateway that is away is retried with backoff)."""
        ...

    async def submit(self, phone: str, text: str, *, ref: int) -> list[Accepted]:
        """Send ``text`` to ``phone`` (11 digits); raise DeliveryError or a network fault."""
        ...

    async def stop(self) -> None:
        """Disconnect."""
        ...


def gateway_for(settings: Settings) -> Gateway | None:
    """Return the gateway SMS_GATEWAY names, or None when SMS is off."""
    url = settings.sms_gateway
    if not url:
        return None
    if url.startswith("smpp://"):
        from bot.sms_smpp import SmppGateway

        return SmppGateway.from_settings(settings)
    from bot.sms_http import HttpGateway

    return HttpGateway.from_settings(settings)


# -- recording ----------------------------------------------------------------------------------


class Recorder:
    """Write the ids gateways gave back, in small batches (one transaction per ~0.1 s)."""

    def __init__(self, store: Store, interval: float = 0.1) -> None:
        self.store = store
        self.interval = interval
        self._items: list[sms_stats.Submitted] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def add(self, items: Sequence[sms_stats.Submitted]) -> None:
        """Queue ids for writing."""
        self._items.extend(items)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._items:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("recording SMS ids failed; trying again")
                await asyncio.sleep(1.0)

    async def flush(self) -> None:
        """Write what is queued now."""
        async with self._lock:
            items, self._items = self._items, []
            if not items:
                return
            try:
                async with self.store.write() as session:
                    await sms_stats.record_submitted(session, items, utcnow())
            except BaseException:
                self._items[:0] = items
                raise


# -- the messenger ------------------------------------------------------------------------------


class SmsMessenger:
    """The outbox worker's way to SMS: hold in quiet hours, sign, submit, record."""

    platform = PLATFORM

    def __init__(
        self,
        gateway: Gateway,
        recorder: Recorder,
        *,
        quiet: QuietHours | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.gateway = gateway
        self.recorder = recorder
        self.quiet = quiet
        self.clock = clock
        self.segments = 0

    def text_of(self, message: RenderedMessage) -> str:
        """Return the SMS text of a rendered message: the signature, then the text."""
        text = message.text or ""
        if message.poll is not None:
            text = message.poll.numbered(text)
        signature = catalog().render("sms.signature", message.locale or "zh_CN")
        return signature + text.strip()

    def cost(self, message: RenderedMessage) -> int:
        """Return the segments a message takes (what SMS_RATE counts)."""
        return segment_count(self.text_of(message))

    def hold_until(self) -> datetime | None:
        """Return when the quiet hours end, if they are now (the worker asks before sending)."""
        return self.quiet.hold_until(self.clock()) if self.quiet is not None else None

    async def send(self, chat_id: str, message: RenderedMessage) -> str | None:
        """Submit one SMS; return the gateway's first id (all ids go to ``sms_sent``)."""
        until = self.hold_until()
        if until is not None:
            raise DeliveryError("SMS quiet hours", hold_until=until)
        phone = normalize_phone(chat_id)
        if phone is None or phone != chat_id:
            raise DeliveryError("not an 11-digit mainland mobile number", permanent=True)
        text = self.text_of(message)
        ref = (message.outbox_id or 0) & 0xFF
        accepted = await self.gateway.submit(phone, text, ref=ref)
        self.segments += sum(a.segments for a in accepted)
        self.recorder.add(
            [
                sms_stats.Submitted(a.message_id, message.outbox_id, a.segments, a.part)
                for a in accepted
            ]
        )
        log.info(
            "sms to %s: outbox %s, %d segment(s)",
            mask_phone(phone),
            message.outbox_id,
            sum(a.segments for a in accepted),
        )
        return accepted[0].message_id[:64] if accepted else None

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        """An SMS cannot be changed once sent: nothing to do."""

    async def set_commands(self, chat_id: str, menu) -> None:
        """SMS has no command menus."""


# -- the inbound side ---------------------------------------------------------------------------


class SmsInbound:
    """Hand inbound SMS to the core and deliver its answer; record receipts."""

    def __init__(self, core: Core, store: Store) -> None:
        self.core = core
        self.store = store
        self.worker = None  # set once the outbox worker exists
        self.received = 0

    async def message(self, phone: str, text: str, message_id: str) -> None:
        """Hand one mobile-originated SMS to the core (raises StoreUnavailable if not recorded)."""
        number = normalize_phone(phone)
        if number is None:
            log.info("sms from a number that is not a mainland mobile: ignored")
            return
        sender = Sender(
            platform=PLATFORM, user_id=number, chat_id=number, chat_type=ChatType.PRIVATE
        )
        event = TextReceived(sender=sender, text=text, update_id=message_id[:UPDATE_ID_LIMIT])
        handled = await self.core.handle(event)
        self.received += 1
        log.info(
            "sms from %s handled%s", mask_phone(number), " (again)" if handled.duplicate else ""
        )
        if handled.outbox_ids and self.worker is not None:
            with suppress(Exception):  # the worker's loop delivers them anyway
                await self.worker.deliver_ids(handled.outbox_ids)

    async def receipt(self, message_id: str, state: str) -> None:
        """Record a delivery receipt."""
        async with self.store.write() as session:
            await sms_stats.record_receipt(session, message_id, state, utcnow())


async def campaign_timezone(store: Store) -> str:
    """Return the timezone of the newest campaign (the default when there is none)."""
    async with store.read() as session:
        row = (
            await session.exec(select(Campaign.timezone).order_by(Campaign.id.desc()).limit(1))
        ).first()
    return row or DEFAULT_TIMEZONE


@dataclass
class SmsRuntime:
    """The SMS door of a running process: the gateway, the messenger, the inbound side."""

    gateway: Gateway
    messenger: SmsMessenger
    inbound: SmsInbound
    recorder: Recorder

    async def start(self, worker) -> None:
        """Connect the gateway; inbound answers go out through ``worker``."""
        self.inbound.worker = worker
        await self.gateway.start(self.inbound)

    async def stop(self) -> None:
        """Disconnect and write the last ids."""
        await self.gateway.stop()
        with suppress(Exception):
            await self.recorder.flush()


async def build_sms(settings: Settings, core: Core, store: Store) -> SmsRuntime | None:
    """Return the SMS runtime SMS_GATEWAY asks for, or None when SMS is off."""
    gateway = gateway_for(settings)
    if gateway is None:
        return None
    quiet = QuietHours.parse(settings.sms_quiet_hours, await campaign_timezone(store))
    recorder = Recorder(store)
    messenger = SmsMessenger(gateway, recorder, quiet=quiet)
    log.info(
        "SMS on through %s (quiet hours %s)", gateway.name, settings.sms_quiet_hours or "none"
    )
    return SmsRuntime(gateway, messenger, SmsInbound(core, store), recorder)
