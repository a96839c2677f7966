"""Deliver the outbox: claim due rows under a lease, send them, mark them, retry failures.

A row is claimed by setting ``lease_until``; a worker that dies leaves its rows to be claimed
again once the lease runs out, so every message is delivered at least once, and a message is
sent twice only if a worker died between sending it and marking it. Rows for one chat go out
in id order. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED`` so workers share the work;
SQLite serializes writers anyway.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select

from bot.delivery import DeliveryError, Messenger, render_menu, render_reply
from campaign.db import Store
from models.base import utcnow
from models.dialog import Outbox, OutboxStatus
from models.org import Account
from models.reply import Reply

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_BACKOFF = 300.0


class OutboxWorker:
    """Send queued messages through the messengers of their platforms."""

    def __init__(
        self,
        store: Store,
        messengers: dict[str, Messenger],
        *,
        lease_seconds: float = 30.0,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.messengers = messengers
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex[:16]
        self._wakeup = asyncio.Event()
        self.sent = 0

    def kick(self) -> None:
        """Wake the loop: new rows are due."""
        self._wakeup.set()

    async def _claim(self, ids: Iterable[int] | None = None) -> list[Outbox]:
        now = self.clock()
        async with self.store.write() as session:
            query = (
                select(Outbox.id)
                .where(
                    Outbox.status == OutboxStatus.PENDING,
                    col(Outbox.platform).in_(list(self.messengers)),
                    or_(col(Outbox.lease_until).is_(None), col(Outbox.lease_until) < now),
                )
                .order_by(col(Outbox.priority), col(Outbox.id))
                .limit(self.batch)
            )
            if ids is not None:
                query = query.where(col(Outbox.id).in_(list(ids)))
            else:
                query = query.where(col(Outbox.not_before) <= now)
            if not self.store.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            claimed = list((await session.exec(query)).all())
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
            return list(rows)

    async def deliver_ids(self, ids: Iterable[int]) -> int:
        """Deliver these rows now if nobody holds them (the reply path of an adapter)."""
        ids = list(ids)
        if not ids:
            return 0
        rows = await self._claim(ids)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def run_once(self) -> int:
        """Claim and deliver one batch of due rows; return how many were claimed."""
        rows = await self._claim()
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until ``stop`` is set, sleeping ``idle`` seconds (or until kicked) when idle."""
        while not stop.is_set():
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                claimed = 0
            if claimed:
                continue
            self._wakeup.clear()
            waiters = [asyncio.ensure_future(self._wakeup.wait())]
            waiters.append(asyncio.ensure_future(stop.wait()))
            await asyncio.wait(waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def _deliver(self, row: Outbox) -> None:
        messenger = self.messengers[row.platform]
        payload = row.payload
        locale = payload.get("locale", "zh_CN")
        try:
            message_id = None
            if row.kind == "commands":
                await messenger.set_commands(row.chat_id, render_menu(payload["commands"], locale))
            else:
                message = render_reply(Reply.from_payload(payload), locale)
                if row.kind == "edit":
                    await messenger.edit(row.chat_id, message)
                else:
                    message_id = await messenger.send(row.chat_id, message)
        except DeliveryError as exc:
            await self._failed(row, exc)
            return
        except Exception as exc:  # network faults and the unforeseen: retry with backoff
            log.warning("delivery of outbox %s failed: %r", row.id, exc)
            await self._failed(row, DeliveryError(repr(exc)[:400]))
            return
        async with self.store.write() as session:
            await session.exec(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(
                    status=OutboxStatus.SENT,
                    sent_at=self.clock(),
                    sent_message_id=str(message_id) if message_id is not None else None,
                    lease_until=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
        self.sent += 1

    async def _failed(self, row: Outbox, exc: DeliveryError) -> None:
        now = self.clock()
        values: dict = {"lease_until": None, "last_error": str(exc)[:500]}
        if exc.blocked or exc.permanent or row.attempts >= MAX_ATTEMPTS:
            values["status"] = OutboxStatus.DEAD
        elif exc.retry_after is not None:
            values["not_before"] = now + timedelta(seconds=exc.retry_after)
        else:
            values["not_before"] = now + timedelta(
                seconds=min(MAX_BACKOFF, 2.0 ** max(0, row.attempts - 1))
            )
        async with self.store.write() as session:
            await session.exec(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if exc.blocked:
                await session.exec(
                    update(Account)
                    .where(Account.platform == row.platform, Account.chat_id == row.chat_id)
                    .values(active=False)
                    .execution_options(synchronize_session=False)
                )
