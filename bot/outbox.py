"""Deliver the outbox: claim due rows under a lease, send them under the limits, mark them.

Claims. A worker claims a batch of due rows by setting ``lease_until``; a worker that dies
leaves its rows to be claimed again once the lease runs out, so every message is delivered at
least once. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED`` so that several workers share
the work; SQLite serializes writers anyway (``BEGIN IMMEDIATE``).

Order. Rows for one chat go out in id order, never two at a time: a row is claimed only when no
earlier row of its chat with the same or a more urgent priority is waiting for a retry or held
by a lease, a worker sends one chat's rows one after another (a per-chat lock, shared with the
reply path), and after a failure that will be retried it gives back the chat's later rows. On
PostgreSQL a claim also takes a transaction-level advisory lock per chat and checks again on a
fresh snapshot, so two workers never hold rows of one chat at once.

Throughput. Sends are concurrent (``concurrency`` lanes, each one chat's rows), every send
waits for a permit from the rate limiter (``bot.ratelimit``), and delivered rows are marked in
small batches (every ``flush_interval`` seconds or ``flush_rows`` rows) rather than one
transaction each. The run loop claims the next batch while the current one is still going
out, and lanes start in priority order; the reply path (``deliver_ids``) sends at once, jumping
the limiter's queue with its rows' priority.

Crash semantics: a message is sent twice only if its worker died between sending it and
marking it; sending waits while ``batch`` rows are sent but not yet marked, so at most one
claimed batch goes out twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, text, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from bot.delivery import (
    DeliveryError,
    Messenger,
    RenderedMessage,
    render_menu,
    render_reply,
    split_text,
)
from bot.ratelimit import RateLimiter
from campaign import files
from campaign import outbox as campaign_outbox
from campaign.db import Store, is_unavailable
from models.base import utcnow
from models.dialog import Outbox, OutboxStatus
from models.reply import Reply

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_BACKOFF = 300.0
#: the longest pause of a whole platform after network faults in a row
MAX_FAULT_PAUSE = 60.0
#: a row whose lease ends sooner than this is given back rather than sent (someone may take it)
MAX_LEASE_MARGIN = 5.0
#: Telegram's sizes, to count the API calls a long message needs (the limiter's cost)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

_OUTBOX = Outbox.__table__


@dataclass(frozen=True)
class _Sent:
    row_id: int
    message_id: str | None
    at: datetime


@dataclass(frozen=True)
class _Failed:
    row_id: int
    values: dict[str, Any]
    block: tuple[str, str] | None


@dataclass(frozen=True)
class _Released:
    row_id: int


_Op = _Sent | _Failed | _Released


#: what became of one row: sent (or dead), to be retried, or given back unsent
_DONE, _RETRY, _GIVE_BACK = "done", "retry", "give back"


def _lanes(rows: Iterable[Outbox]) -> list[list[Outbox]]:
    """Group rows by chat, each chat's rows in (priority, id) order, most urgent chat first."""
    lanes: dict[tuple[str, str], list[Outbox]] = {}
    for row in sorted(rows, key=lambda r: (r.priority, r.id)):
        lanes.setdefault((row.platform, row.chat_id), []).append(row)
    return list(lanes.values())


def _calls(kind: str, message: RenderedMessage | None) -> tuple[float, float]:
    """Return the API calls a row needs overall and in its chat."""
    if kind == "commands" or message is None:
        return 1.0, 0.0  # a command menu posts nothing into the chat
    if kind == "edit":
        return 1.0, 1.0
    text_len = len(message.text or "")
    if message.attachment and text_len <= CAPTION_LIMIT:
        return 1.0, 1.0
    if message.buttons:
        parts = 1  # a message with buttons is never split
    else:
        parts = len(split_text(message.text, TEXT_LIMIT)) if message.text else 0
    calls = float(max(1, parts + (1 if message.attachment else 0)))
    return calls, calls


class OutboxWorker:
    """Send queued messages through the messengers of their platforms, under their limits.

    Args:
        store: the database.
        messengers: one messenger per platform this worker delivers for.
        lease_seconds: how long a claim holds its rows.
        batch: rows per claim; also the most rows sent but not yet marked.
        clock: wall time, for the rows' timestamps.
        owner: this worker's name in ``lease_owner``.
        limiter: the rate limiter (default: the known platforms' limits).
        concurrency: how many chats the run loop sends to at once.
        flush_interval: seconds between the marking of delivered rows.
        flush_rows: mark at once when this many rows wait to be marked.
    """

    def __init__(
        self,
        store: Store,
        messengers: dict[str, Messenger],
        *,
        lease_seconds: float = 30.0,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        limiter: RateLimiter | None = None,
        concurrency: int = 8,
        flush_interval: float = 0.05,
        flush_rows: int = 20,
    ) -> None:
        self.store = store
        self.messengers = messengers
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = max(1, batch)
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex[:16]
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.concurrency = max(1, concurrency)
        self.flush_interval = flush_interval
        self.flush_rows = max(1, flush_rows)
        self.sent = 0
        self._lease_margin = timedelta(seconds=min(MAX_LEASE_MARGIN, lease_seconds / 4))
        self._wakeup = asyncio.Event()
        self._ops: list[tuple[_Op, bool]] = []
        self._flush_lock = asyncio.Lock()
        self._flush_soon = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._marked = asyncio.Event()
        self._slots = asyncio.Semaphore(self.batch)
        self._unmarked = 0
        #: rows this worker claimed and has not marked yet: never claimed again by it, even
        #: when their lease ran out while a slow flush kept them unmarked
        self._held: set[int] = set()
        self._chat_locks: dict[tuple[str, str], list[Any]] = {}
        self._stopping = False
        self._interruptible: set[asyncio.Task[Any]] = set()
        self._faults: dict[str, int] = {}
        self._fault_until: dict[str, float] = {}

    def kick(self) -> None:
        """Wake the loop: new rows are due."""
        self._wakeup.set()

    # -- claiming -----------------------------------------------------------------------------

    def _held_back(self, now: datetime):
        """Return the condition "an earlier row of this chat waits for a retry or a lease".

        Earlier means a smaller id with the same or a more urgent priority (a reply may pass a
        broadcast, never another reply).
        """
        earlier = aliased(Outbox)
        # Wrapped so that no planner looks the chat up through ix_outbox_due (every pending
        # row, for each candidate): SQLite has no statistics, and PostgreSQL's are stale right
        # after a broadcast is queued. The chat's rows come from ix_outbox_chat_id.
        status, priority = func.coalesce(earlier.status, ""), earlier.priority + 0
        return exists().where(
            earlier.platform == Outbox.platform,
            earlier.chat_id == Outbox.chat_id,
            status == OutboxStatus.PENDING,
            earlier.id < Outbox.id,
            priority <= Outbox.priority,
            or_(
                earlier.not_before > now,
                and_(col(earlier.lease_until).is_not(None), earlier.lease_until >= now),
            ),
        )

    async def _claim(self, ids: Iterable[int] | None = None) -> list[Outbox]:
        """Lease due rows (or these rows, due or not) to this worker and return them.

        Rows go by priority, then by when they fell due. A chat's rows are taken only as its
        earliest pending ones (``_in_order``), so neither this worker nor another sends a chat's
        row while an earlier one is still on its way or waiting for a retry.
        """
        now = self.clock()
        wanted = list(ids) if ids is not None else None
        query = select(Outbox.id, Outbox.platform, Outbox.chat_id, Outbox.priority).where(
            Outbox.status == OutboxStatus.PENDING,
            col(Outbox.platform).in_(list(self.messengers)),
            or_(col(Outbox.lease_until).is_(None), col(Outbox.lease_until) < now),
        )
        if wanted is not None:
            query = query.where(col(Outbox.id).in_(wanted))
        else:
            query = (
                query.where(col(Outbox.not_before) <= now, ~self._held_back(now))
                # exactly the index's order: both planners stop after ``batch`` rows
                .order_by(col(Outbox.priority), col(Outbox.not_before))
                .limit(self.batch)
            )
        if not self.store.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        async with self.store.write() as session:
            if wanted is None and not self.store.is_sqlite:
                # right after a broadcast is queued the statistics still say "a few rows", and
                # the planner would sort every pending row; walking the index stops early
                await session.exec(text("SET LOCAL enable_sort = off"))
            found = list((await session.exec(query)).all())
            claimed = [i for i in await self._in_order(session, found) if i not in self._held]
            if not claimed:
                return []
            await session.exec(
                update(Outbox)
                .where(col(Outbox.id).in_(claimed))
                .values(
                    lease_until=now + self.lease,
                    lease_owner=self.owner,
                    attempts=Outbox.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = (
                await session.exec(
                    select(Outbox).where(col(Outbox.id).in_(claimed)).order_by(col(Outbox.id))
                )
            ).all()
        self._held.update(claimed)
        return list(rows)

    async def _in_order(self, session, found: list[Any]) -> list[int]:
        """Keep the rows that no pending row of their chat, left out of this claim, precedes.

        This holds whatever the claim's limit cut off, and whatever another worker holds
        (on PostgreSQL rows it has locked are skipped, so they count as left out here).
        """
        if not found:
            return []
        taken = {row_id for row_id, *_ in found}
        last = max(taken)
        chats = {chat_id for _, _, chat_id, _ in found}
        pending = await session.exec(
            select(Outbox.id, Outbox.platform, Outbox.chat_id, Outbox.priority).where(
                col(Outbox.chat_id).in_(chats),
                func.coalesce(Outbox.status, "") == OutboxStatus.PENDING,  # by chat, see above
                Outbox.id < last,
            )
        )
        before: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for row_id, platform, chat_id, priority in pending.all():
            if row_id not in taken:
                before.setdefault((platform, chat_id), []).append((row_id, priority))
        return [
            row_id
            for row_id, platform, chat_id, priority in found
            if not any(
                other < row_id and other_priority <= priority
                for other, other_priority in before.get((platform, chat_id), ())
            )
        ]

    # -- the three ways in ----------------------------------------------------------------------

    async def deliver_ids(self, ids: Iterable[int]) -> int:
        """Deliver these rows now if nobody holds them (the reply path of an adapter)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return 0
        rows = await self._claim(ids)
        if len(rows) < len(ids):
            self.kick()  # held back or held by the loop: the loop delivers them
        if rows:
            await asyncio.gather(*(self._run_lane(lane) for lane in _lanes(rows)))
        await self._flush_all()
        return len(rows)

    async def run_once(self) -> int:
        """Claim and deliver one batch of due rows; return how many were claimed."""
        rows = await self._claim()
        if rows:
            turns = asyncio.Semaphore(self.concurrency)

            async def lane_turn(lane: list[Outbox]) -> None:
                async with turns:
                    await self._run_lane(lane)

            await asyncio.gather(*(lane_turn(lane) for lane in _lanes(rows)))
        await self._flush_all()
        return len(rows)

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until ``stop`` is set, sleeping ``idle`` seconds (or until kicked) when idle.

        The next batch is claimed while the current one still goes out; on stop, sends under
        way finish, rows not sent yet are given back and everything is marked.
        """
        lanes: asyncio.PriorityQueue[tuple[int, int, int, list[Outbox]]] = asyncio.PriorityQueue()
        order = itertools.count()
        backlog = 0
        progress = asyncio.Event()

        async def sender() -> None:
            nonlocal backlog
            me = asyncio.current_task()
            assert me is not None
            while not self._stopping:
                self._interruptible.add(me)
                try:
                    *_, lane = await lanes.get()
                finally:
                    self._interruptible.discard(me)
                try:
                    await self._run_lane(lane, interruptible=True)
                finally:
                    backlog -= len(lane)
                    progress.set()

        self._stopping = False
        senders = [asyncio.create_task(sender()) for _ in range(self.concurrency)]
        try:
            while not stop.is_set():
                # cleared before looking, so that a change after the look wakes the wait
                progress.clear()
                self._marked.clear()
                if backlog >= self.batch:
                    await self._wait(stop, progress, timeout=idle)
                    continue
                self._wakeup.clear()
                try:
                    rows = await self._claim()
                except Exception as exc:
                    if is_unavailable(exc):  # locked or down: one line, the loop tries again
                        name = type(exc).__name__
                        log.warning("outbox claim: the store is unavailable (%s)", name)
                    else:
                        log.exception("outbox claim failed")
                    await self._wait(stop, timeout=idle)
                    continue
                if rows:
                    backlog += len(rows)
                    for lane in _lanes(rows):
                        lanes.put_nowait((lane[0].priority, lane[0].id, next(order), lane))
                    continue
                # nothing due; marking our rows may free rows held back behind them
                waits = (self._wakeup, self._marked) if backlog else (self._wakeup,)
                await self._wait(stop, *waits, timeout=idle)
        finally:
            await self._shut_down(senders, lanes)

    async def _wait(self, stop: asyncio.Event, *events: asyncio.Event, timeout: float) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in (stop, *events)]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _shut_down(self, senders: list[asyncio.Task[None]], lanes) -> None:
        self._stopping = True
        for task in senders:
            if task in self._interruptible:
                task.cancel()  # waiting for work, a slot or a permit: nothing is under way
        results = await asyncio.gather(*senders, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError
            ):
                log.error("outbox sender failed", exc_info=result)
        while not lanes.empty():
            *_, lane = lanes.get_nowait()
            self._release(lane)
        self._stopping = False
        try:
            await self._flush_all()
        except Exception:
            log.exception("marking the outbox at shutdown failed")

    # -- sending --------------------------------------------------------------------------------

    async def _run_lane(self, lane: list[Outbox], *, interruptible: bool = False) -> None:
        """Send one chat's rows in order; stop at a failure that will be retried."""
        for i, row in enumerate(lane):
            if interruptible and self._stopping:
                self._release(lane[i:])
                return
            try:
                outcome = await self._send_row(row, interruptible=interruptible)
            except asyncio.CancelledError:
                self._release(lane[i:])
                raise
            if outcome == _GIVE_BACK:
                self._release(lane[i:])
                return
            if outcome == _RETRY:
                self._release(lane[i + 1 :])
                return

    @asynccontextmanager
    async def _chat_turn(self, platform: str, chat_id: str) -> AsyncIterator[None]:
        key = (platform, chat_id)
        entry = self._chat_locks.get(key)
        if entry is None:
            entry = self._chat_locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._chat_locks[key]

    async def _interruptibly(self, awaitable: Awaitable[Any], on: bool) -> Any:
        task = asyncio.current_task()
        if not on or task is None:
            return await awaitable
        self._interruptible.add(task)
        try:
            return await awaitable
        finally:
            self._interruptible.discard(task)

    async def _send_row(self, row: Outbox, *, interruptible: bool = False) -> str:
        """Send one row and queue its marking; return what became of it."""
        messenger = self.messengers[row.platform]
        payload = row.payload
        locale = payload.get("locale", "zh_CN")
        async with self._chat_turn(row.platform, row.chat_id):
            menu = message = None
            try:
                if row.kind == "commands":
                    menu = render_menu(payload["commands"], locale)
                else:
                    message = render_reply(Reply.from_payload(payload), locale)
                    message = dataclasses.replace(message, outbox_id=row.id)
                    if message.attachment and message.attachment.get("stored"):
                        message = await self._with_file(message)
            except DeliveryError as exc:
                return self._failed(row, exc)
            except Exception as exc:  # a payload we cannot render: retry, then give up
                log.warning("outbox %s cannot be rendered: %r", row.id, exc)
                return self._failed(row, DeliveryError(repr(exc)[:400]))
            holding = getattr(messenger, "hold_until", None)
            until = holding() if holding is not None else None
            if until is not None:  # the platform sends nothing now (SMS quiet hours)
                return self._failed(row, DeliveryError("held", hold_until=until))
            cost, chat_cost = _calls(row.kind, message)
            costing = getattr(messenger, "cost", None)  # a platform that counts its own sends
            if costing is not None and message is not None and row.kind == "message":
                cost = chat_cost = float(costing(message))  # SMS: segments; robots: posts
            await self._interruptibly(self._slots.acquire(), interruptible)
            self._unmarked += 1
            try:
                await self._interruptibly(
                    self.limiter.acquire(
                        row.platform,
                        row.chat_id,
                        priority=row.priority,
                        cost=cost,
                        chat_cost=chat_cost,
                    ),
                    interruptible,
                )
            except BaseException:
                self._free_slot()
                raise
            if (interruptible and self._stopping) or (
                row.lease_until is not None
                and self.clock() + self._lease_margin >= row.lease_until
            ):
                # stopping, or waited so long that the lease runs out (and with it our claim)
                self._free_slot()
                return _GIVE_BACK
            try:
                message_id = None
                if menu is not None:
                    await messenger.set_commands(row.chat_id, menu)
                elif row.kind == "edit":
                    await messenger.edit(row.chat_id, message)
                else:
                    message_id = await messenger.send(row.chat_id, message)
            except DeliveryError as exc:
                if exc.retry_after is not None:
                    self.limiter.penalize(row.platform, row.chat_id, exc.retry_after)
                return self._failed(row, exc, slot=True)
            except Exception as exc:  # network faults and the unforeseen: retry with backoff
                log.warning("delivery of outbox %s failed: %r", row.id, exc)
                self._network_fault(row.platform)
                return self._failed(row, DeliveryError(repr(exc)[:400]), slot=True)
            self._faults.pop(row.platform, None)
            self.sent += 1
            self._record(
                _Sent(row.id, str(message_id) if message_id is not None else None, self.clock()),
                slot=True,
            )
            return _DONE

    async def _with_file(self, message: RenderedMessage) -> RenderedMessage:
        """Return the message with its stored file's bytes (``data``) beside the reference."""
        attachment = dict(message.attachment or {})
        async with self.store.read() as session:
            stored = await files.load(session, int(attachment["stored"]))
        if stored is None:
            raise DeliveryError(f"stored file {attachment['stored']} is gone", permanent=True)
        attachment["data"] = stored.content
        attachment.setdefault("filename", stored.name)
        return dataclasses.replace(message, attachment=attachment)

    def _network_fault(self, platform: str) -> None:
        """Back off the whole platform after faults in a row, so an outage burns no retries.

        Without this, a platform that is down would fail every queued row in turn and use up
        their attempts; now only the sends under way fail while the pause doubles.
        """
        now = self.limiter.clock()
        if now < self._fault_until.get(platform, -math.inf):
            return  # a send that started before the pause: same outage
        faults = self._faults[platform] = self._faults.get(platform, 0) + 1
        if faults >= 2:
            seconds = min(MAX_FAULT_PAUSE, 2.0 ** (faults - 2))
            self._fault_until[platform] = now + seconds
            self.limiter.pause(platform, seconds)
            log.warning("%s: %d network faults in a row, pausing %.0fs", platform, faults, seconds)

    def _free_slot(self) -> None:
        self._unmarked -= 1
        self._slots.release()

    def _failed(self, row: Outbox, exc: DeliveryError, *, slot: bool = False) -> str:
        """Queue what a failure means for the row; return whether it will be retried."""
        now = self.clock()
        values: dict[str, Any] = {"lease_until": None, "last_error": str(exc)[:500]}
        retried = False
        if exc.hold_until is not None:
            # held (SMS quiet hours): wait without spending the claim's attempt
            values["not_before"] = exc.hold_until
            values["attempts"] = max(0, row.attempts - 1)
            values["last_error"] = None
            retried = True
        elif exc.blocked or exc.permanent or row.attempts >= MAX_ATTEMPTS:
            values["status"] = OutboxStatus.DEAD
        elif exc.retry_after is not None:
            values["not_before"] = now + timedelta(seconds=exc.retry_after)
            retried = True
        else:
            values["not_before"] = now + timedelta(
                seconds=min(MAX_BACKOFF, 2.0 ** max(0, row.attempts - 1))
            )
            retried = True
        block = (row.platform, row.chat_id) if exc.blocked else None
        self._record(_Failed(row.id, values, block), slot=slot)
        return _RETRY if retried else _DONE

    def _release(self, rows: Iterable[Outbox]) -> None:
        for row in rows:
            self._record(_Released(row.id), slot=False)

    # -- marking ----------------------------------------------------------------------------------

    def _record(self, op: _Op, *, slot: bool) -> None:
        """Queue a row's marking; ``slot``: its send holds a slot (counted when taken)."""
        self._ops.append((op, slot))
        if not slot:
            self._unmarked += 1
        if len(self._ops) >= self.flush_rows:
            self._flush_soon.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._ops or self._unmarked:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._flush_soon.wait(), self.flush_interval)
            self._flush_soon.clear()
            try:
                await self._flush()
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("marking the outbox: the store is unavailable; trying again")
                else:
                    log.exception("marking the outbox failed; trying again")

    async def _flush_all(self) -> None:
        """Mark everything queued for marking, now."""
        await self._flush()
        flusher = self._flusher
        if flusher is not None and not flusher.done() and not self._ops and not self._unmarked:
            flusher.cancel()
            with suppress(asyncio.CancelledError):
                await flusher

    async def _flush(self) -> None:
        async with self._flush_lock:
            ops, self._ops = self._ops, []
            if not ops:
                return
            try:
                await self._write([op for op, _ in ops])
            except BaseException:
                self._ops[:0] = ops
                raise
        self._held.difference_update(op.row_id for op, _ in ops)
        slots = sum(1 for _, slot in ops if slot)
        self._unmarked -= len(ops)
        for _ in range(slots):
            self._slots.release()
        self._marked.set()

    async def _write(self, ops: list[_Op]) -> None:
        sent = [
            {"b_id": op.row_id, "b_at": op.at, "b_mid": op.message_id}
            for op in ops
            if isinstance(op, _Sent)
        ]
        released = [op.row_id for op in ops if isinstance(op, _Released)]
        fallback = 0
        async with self.store.write() as session:
            conn = await session.connection()
            if sent:
                await conn.execute(
                    update(_OUTBOX)
                    .where(_OUTBOX.c.id == bindparam("b_id"))
                    .values(
                        status=OutboxStatus.SENT,
                        sent_at=bindparam("b_at"),
                        sent_message_id=bindparam("b_mid"),
                        lease_until=None,
                        last_error=None,
                    ),
                    sent,
                )
            for op in ops:
                if not isinstance(op, _Failed):
                    continue
                await conn.execute(
                    update(_OUTBOX).where(_OUTBOX.c.id == op.row_id).values(**op.values)
                )
                if op.block is not None:
                    # the binding ends; the campaign decides whether the message goes by SMS
                    fallback += await campaign_outbox.after_blocked(
                        session, op.row_id, now=self.clock()
                    )
            if released:
                # given back unsent: the claim's attempt did not happen
                await conn.execute(
                    update(_OUTBOX)
                    .where(
                        _OUTBOX.c.id.in_(released),
                        _OUTBOX.c.lease_owner == self.owner,
                        _OUTBOX.c.status == OutboxStatus.PENDING,
                    )
                    .values(
                        lease_until=None,
                        attempts=func.max(_OUTBOX.c.attempts - 1, 0)
                        if self.store.is_sqlite
                        else func.greatest(_OUTBOX.c.attempts - 1, 0),
                    )
                )
        if fallback:
            self.kick()  # the SMS queued in place of a blocked chat's messages
