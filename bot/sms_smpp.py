"""The SMPP 3.4 gateway: smpplib in a thread, bound as a transceiver.

One thread owns the connection: it connects and binds (``bind_transceiver``), reads every PDU
(``submit_sm_resp``, ``deliver_sm``, ``enquire_link``), sends ``enquire_link`` when the line is
quiet, and on any fault closes, fails the submits waiting for an answer and connects again with
backoff (1 s doubling to 30 s). Submits come from the event loop: each segment is one
``submit_sm`` (UDH in the short message, ``esm_class`` 0x40), at most ``window`` of them wait
for their answer at once. A segment answered with an error is a ``DeliveryError`` (throttled:
retry after a second; a bad destination: permanent); no answer or no connection is a network
fault, which the outbox worker retries with backoff.

``deliver_sm`` is either a delivery receipt (``esm_class`` 0x04: recorded) or an inbound SMS
(parts of a concatenated one are joined first). The thread waits for the core to record it and
answers ``ESME_RX_T_APPN`` when it could not, so the SMSC delivers it again: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from smpplib import consts, exceptions, smpp
from smpplib.client import Client, SimpleSequenceGenerator

from bot.delivery import DeliveryError
from bot.settings import Settings
from bot.sms import Accepted, Inbound, decode, segment, split_udh
from campaign.identity import mask_phone, normalize_phone

log = logging.getLogger(__name__)

#: how long a submit waits for its answer before it counts as a network fault
RESP_TIMEOUT = 15.0
#: how long the reader waits for the core to record an inbound SMS
HANDLE_TIMEOUT = 30.0
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
#: seconds the first parts of a concatenated inbound SMS wait for the rest
PARTS_TTL = 600.0
THROTTLED = {consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RMSGQFUL}
BAD_NUMBER = {
    consts.SMPP_ESME_RINVDSTADR,
    consts.SMPP_ESME_RINVDSTTON,
    consts.SMPP_ESME_RINVDSTNPI,
}
#: receipt message_state TLV values
STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
          7: "UNKNOWN", 8: "REJECTD"}  # fmt: skip
_RECEIPT = re.compile(rb"id:(\S+).*?stat:(\w+)", re.S)


class SmscAway(ConnectionError):
    """The SMSC is not connected right now."""


class _Sequence(SimpleSequenceGenerator):
    """smpplib's sequence numbers, safe across the reader thread and the submitters."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return super().next_sequence()


class _Client(Client):
    """smpplib's client with one writer at a time and the time of the last PDU read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_lock = threading.Lock()
        self.last_read = time.monotonic()

    def send_pdu(self, p):
        with self.write_lock:
            return super().send_pdu(p)

    def read_pdu(self):
        pdu = super().read_pdu()
        self.last_read = time.monotonic()
        return pdu


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").strip("\x00")
    return str(value)


@dataclass
class SmppGateway:
    """An SMSC reached over SMPP 3.4 (``smpp://system_id:password@host:port``)."""

    host: str
    port: int
    system_id: str
    password: str
    source: str = ""
    window: int = 10
    enquire_interval: float = 20.0
    name: str = "smpp"
    _client: _Client | None = field(default=None, repr=False)
    _bound: threading.Event = field(default_factory=threading.Event, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _pending: dict[int, asyncio.Future] = field(default_factory=dict, repr=False)
    _pending_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _parts: dict[tuple[str, int], dict[int, bytes]] = field(default_factory=dict, repr=False)
    _parts_at: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _inbound: Inbound | None = field(default=None, repr=False)
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)
    binds: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmppGateway:
        """Return the gateway of ``SMS_GATEWAY=smpp://user:pass@host:port``."""
        url = urlsplit(settings.sms_gateway or "")
        return cls(
            host=url.hostname or "127.0.0.1",
            port=url.port or 2775,
            system_id=unquote(url.username or ""),
            password=unquote(url.password or ""),
            source=settings.sms_source,
            window=settings.sms_window,
        )

    @property
    def bound(self) -> bool:
        """Tell whether the transceiver is bound right now."""
        return self._bound.is_set()

    # -- the connection thread ---------------------------------------------------------------

    async def start(self, inbound: Inbound) -> None:
        """Start the connection thread (it connects, and reconnects, by itself)."""
        self._loop = asyncio.get_running_loop()
        self._inbound = inbound
        self._slots = asyncio.Semaphore(self.window)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="smpp", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Unbind, close and wait for the thread."""
        self._stopping.set()
        client = self._client
        if client is not None and self.bound:
            with contextlib.suppress(Exception):
                client.send_pdu(smpp.make_pdu("unbind", client=client))
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        self._close()

    def _close(self) -> None:
        self._bound.clear()
        client, self._client = self._client, None
        if client is not None and client._socket is not None:
            with contextlib.suppress(OSError):
                client._socket.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                client._socket.close()
            client._socket = None
            client.state = consts.SMPP_CLIENT_STATE_CLOSED
        self._fail_pending(SmscAway("the SMSC connection closed"))

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            try:
                self._connect()
                delay = BACKOFF_FIRST
                self._read_loop()
            except Exception as exc:
                if not self._stopping.is_set():
                    log.warning(
                        "SMSC %s:%s: %s; reconnecting in %.0fs",
                        self.host,
                        self.port,
                        type(exc).__name__,
                        delay,
                    )
            finally:
                self._close()
            if self._stopping.wait(delay):
                break
            delay = min(BACKOFF_MAX, delay * 2)

    def _connect(self) -> None:
        client = _Client(
            self.host,
            self.port,
            timeout=5,
            sequence_generator=_Sequence(),
            logger_name="smpplib.client",
            allow_unknown_opt_params=True,
        )
        client.set_message_sent_handler(self._on_resp)
        client.set_message_received_handler(self._on_deliver)
        client.set_error_pdu_handler(self._on_error_pdu)
        self._client = client
        client.connect()
        client.bind_transceiver(system_id=self.system_id, password=self.password)
        client._socket.settimeout(self.enquire_interval)
        self.binds += 1
        self._bound.set()
        log.info("SMSC %s:%s bound as transceiver", self.host, self.port)

    def _read_loop(self) -> None:
        client = self._client
        assert client is not None
        while not self._stopping.is_set():
            if time.monotonic() - client.last_read > 2.5 * self.enquire_interval:
                raise exceptions.ConnectionError("no answer to enquire_link")
            client.read_once(auto_send_enquire_link=True)  # a quiet line sends enquire_link
            if client.state == consts.SMPP_CLIENT_STATE_OPEN:  # unbound by the SMSC
                raise exceptions.ConnectionError("unbound")

    # -- answers ----------------------------------------------------------------------------

    def _resolve(self, sequence: int, result: Any) -> None:
        with self._pending_lock:
            future = self._pending.pop(sequence, None)
        if future is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(_settle, future, result)

    def _fail_pending(self, exc: Exception) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if self._loop is None:
            return
        for future in pending.values():
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(_settle, future, exc)

    def _on_resp(self, pdu, **kwargs: Any) -> None:
        self._resolve(pdu.sequence, pdu)

    def _on_error_pdu(self, pdu) -> None:
        if pdu.command != "submit_sm_resp":  # generic_nack and the like
            log.warning("SMSC answered %s with status %s", pdu.command, pdu.status)
            self._resolve(pdu.sequence, pdu)

    # -- sending ----------------------------------------------------------------------------

    def _submit_pdu(self, params: dict[str, Any], future: asyncio.Future) -> int:
        client = self._client
        if client is None or not self.bound:
            raise SmscAway("the SMSC is not connected")
        pdu = smpp.make_pdu("submit_sm", client=client, **params)
        with self._pending_lock:
            self._pending[pdu.sequence] = future
        try:
            client.send_pdu(pdu)
        except Exception:
            with self._pending_lock:
                self._pending.pop(pdu.sequence, None)
            raise
        return pdu.sequence

    async def _submit_part(self, params: dict[str, Any]) -> str:
        assert self._slots is not None
        async with self._slots:
            future = asyncio.get_running_loop().create_future()
            try:
                sequence = await asyncio.to_thread(self._submit_pdu, params, future)
            except (SmscAway, exceptions.ConnectionError, exceptions.PDUError, OSError) as exc:
                raise SmscAway(f"submit_sm not sent: {type(exc).__name__}") from exc
            try:
                resp = await asyncio.wait_for(future, RESP_TIMEOUT)
            except TimeoutError as exc:
                with self._pending_lock:
                    self._pending.pop(sequence, None)
                raise SmscAway("no submit_sm_resp in time") from exc
        status = int(getattr(resp, "status", 0) or 0)
        if status in THROTTLED:
            raise DeliveryError(f"SMSC throttled (0x{status:02x})", retry_after=1.0)
        if status in BAD_NUMBER:
            raise DeliveryError(f"SMSC refused the number (0x{status:02x})", permanent=True)
        if status:
            raise DeliveryError(f"SMSC refused the message (0x{status:02x})")
        return _text(resp.message_id)

    async def submit(self, phone: str, text: str, *, ref: int) -> list[Accepted]:
        """Submit every segment of ``text``; return the ids the SMSC gave them."""
        if not self.bound:
            raise SmscAway("the SMSC is not connected")
        seg = segment(text, ref)
        accepted = []
        for number, part in enumerate(seg.parts, 1):
            params = {
                "source_addr_ton": consts.SMPP_TON_ALNUM if self.source else consts.SMPP_TON_UNK,
                "source_addr_npi": consts.SMPP_NPI_UNK,
                "source_addr": self.source,
                "dest_addr_ton": consts.SMPP_TON_INTL,
                "dest_addr_npi": consts.SMPP_NPI_ISDN,
                "destination_addr": "86" + phone,
                "short_message": part,
                "data_coding": seg.data_coding,
                "esm_class": seg.esm_class,
                "registered_delivery": True,
            }
            message_id = await self._submit_part(params)
            accepted.append(Accepted(f"smpp:{message_id}", 1, number if seg.count > 1 else 0))
        return accepted

    # -- receiving --------------------------------------------------------------------------

    def _wait_for(self, coro) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(HANDLE_TIMEOUT)

    def _on_deliver(self, pdu, **kwargs: Any) -> int:
        """Handle a deliver_sm in the reader thread; return the status to answer."""
        if pdu.command != "deliver_sm" or self._inbound is None:
            return consts.SMPP_ESME_ROK
        try:
            esm = int(pdu.esm_class or 0)
            if esm & 0x3C == 0x04:  # an SMSC delivery receipt
                self._receipt(pdu)
            else:
                self._mobile_originated(pdu, esm)
        except Exception as exc:
            log.warning("deliver_sm not recorded (%s); the SMSC will retry", type(exc).__name__)
            return consts.SMPP_ESME_RX_T_APPN
        return consts.SMPP_ESME_ROK

    def _forget_stale_parts(self) -> None:
        """Drop parts of concatenated SMS whose other parts never came (after ten minutes)."""
        limit = time.monotonic() - PARTS_TTL
        for key in [k for k, at in self._parts_at.items() if at < limit]:
            self._parts.pop(key, None)
            self._parts_at.pop(key, None)

    def _receipt(self, pdu) -> None:
        message_id = _text(getattr(pdu, "receipted_message_id", None))
        state_code = getattr(pdu, "message_state", None)
        state = STATES.get(int(state_code), "") if state_code else ""
        found = _RECEIPT.search(pdu.short_message or b"")
        if found:
            message_id = message_id or found.group(1).decode("latin-1")
            state = state or found.group(2).decode("latin-1")
        if not message_id:
            log.warning("a delivery receipt without a message id: ignored")
            return
        assert self._inbound is not None
        self._wait_for(self._inbound.receipt(f"smpp:{message_id}", state or "UNKNOWN"))

    def _mobile_originated(self, pdu, esm: int) -> None:
        source = _text(pdu.source_addr)
        payload = pdu.short_message or b""
        coding = int(pdu.data_coding or 0)
        key = None
        if esm & consts.SMPP_GSMFEAT_UDHI:
            header, payload = split_udh(payload)
            if header is not None and header[1] > 1:
                ref, total, number = header
                key = (source, ref)
                self._forget_stale_parts()
                parts = self._parts.setdefault(key, {})
                self._parts_at[key] = time.monotonic()
                parts[number] = payload
                if len(parts) < total:
                    return  # wait for the other parts (acknowledged: they are held here)
                payload = b"".join(parts[i] for i in sorted(parts))
        text = decode(payload, coding)
        phone = normalize_phone(source)
        if phone is None:
            log.info("inbound SMS from a non-mobile source: ignored")
            if key:
                self._parts.pop(key, None)
            return
        message_id = _text(getattr(pdu, "receipted_message_id", None))
        if not message_id:
            # no id for a mobile-originated SMS in SMPP 3.4: the same text from the same
            # phone within five minutes is taken for the SMSC delivering it again
            bucket = int(time.time() // 300)
            digest = hashlib.sha256(f"{phone}|{text}|{bucket}".encode()).hexdigest()[:24]
            message_id = digest
        assert self._inbound is not None
        self._wait_for(self._inbound.message(phone, text, f"sms:{message_id}"))
        if key:
            self._parts.pop(key, None)
            self._parts_at.pop(key, None)
        log.info("inbound SMS from %s (%d characters)", mask_phone(phone), len(text))


def _settle(future: asyncio.Future, result: Any) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
