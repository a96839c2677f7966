"""What SMS cost and whether it arrived: the gateway's message ids per outbox row.

The SMS door (``bot/sms*.py``) records every id a gateway gives back (``record_submitted``)
and every delivery receipt (``record_receipt``); notices ask ``segments_and_receipts`` for
the segments billed and the receipts of the rows they queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.sms import SmsSent, SmsStatus

_TABLE = SmsSent.__table__

#: the receipt states (SMPP ``stat:``, and the HTTP callbacks' words) that mean delivered/failed
DELIVERED_STATES = frozenset({"DELIVRD", "DELIVERED", "SUCCESS", "OK"})
FAILED_STATES = frozenset(
    {"UNDELIV", "UNDELIVERABLE", "EXPIRED", "REJECTD", "REJECTED", "DELETED", "FAIL", "FAILED"}
)


@dataclass(frozen=True)
class Submitted:
    """One id a gateway gave back for (a segment of) an outbox row."""

    message_id: str
    outbox_id: int | None
    segments: int
    part: int = 0


@dataclass(frozen=True)
class SmsFigures:
    """Segments and receipts of some outbox rows.

    Attributes:
        messages: rows with at least one id from a gateway.
        segments: segments billed.
        delivered: rows whose every id has a "delivered" receipt.
        failed: rows with at least one failed id.
        waiting: rows neither delivered nor failed yet.
    """

    messages: int = 0
    segments: int = 0
    delivered: int = 0
    failed: int = 0
    waiting: int = 0


def receipt_status(state: str) -> SmsStatus:
    """Return what a gateway's receipt word means."""
    word = (state or "").strip().upper()
    if word in DELIVERED_STATES:
        return SmsStatus.DELIVERED
    if word in FAILED_STATES:
        return SmsStatus.FAILED
    return SmsStatus.SUBMITTED  # ENROUTE, ACCEPTD, UNKNOWN …: not final


def _insert(session: AsyncSession):
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql if dialect == "postgresql" else sqlite).insert(_TABLE)


async def record_submitted(
    session: AsyncSession, items: Sequence[Submitted], at: datetime
) -> None:
    """Record ids a gateway gave back; an id whose receipt came first gets its outbox row."""
    if not items:
        return
    stmt = _insert(session)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_TABLE.c.message_id],
        set_={
            "outbox_id": stmt.excluded.outbox_id,
            "segments": stmt.excluded.segments,
            "part": stmt.excluded.part,
            "submitted_at": stmt.excluded.submitted_at,
        },
    )
    conn = await session.connection()
    await conn.execute(
        stmt,
        [
            {
                "message_id": i.message_id[:80],
                "outbox_id": i.outbox_id,
                "segments": i.segments,
                "part": i.part,
                "status": SmsStatus.SUBMITTED.value,
                "submitted_at": at,
            }
            for i in items
        ],
    )


async def record_receipt(session: AsyncSession, message_id: str, state: str, at: datetime) -> None:
    """Record a delivery receipt (a repeated receipt changes nothing more)."""
    status = receipt_status(state)
    values = {"status": status.value, "receipt_state": (state or "")[:16], "receipt_at": at}
    conn = await session.connection()
    done = await conn.execute(
        update(_TABLE).where(_TABLE.c.message_id == message_id[:80]).values(**values)
    )
    if done.rowcount:
        return
    stmt = _insert(session).values(
        message_id=message_id[:80], outbox_id=None, segments=0, submitted_at=None, **values
    )
    await conn.execute(stmt.on_conflict_do_update(index_elements=["message_id"], set_=values))


async def segments_and_receipts(session: AsyncSession, outbox_ids: Iterable[int]) -> SmsFigures:
    """Return the segments billed and the receipts of these outbox rows."""
    ids = list(dict.fromkeys(outbox_ids))
    if not ids:
        return SmsFigures()
    per_row: dict[int, list[tuple[int, SmsStatus]]] = {}
    for chunk in range(0, len(ids), 500):
        rows = await session.exec(
            select(SmsSent.outbox_id, SmsSent.segments, SmsSent.status).where(
                col(SmsSent.outbox_id).in_(ids[chunk : chunk + 500])
            )
        )
        for outbox_id, segments, status in rows.all():
            per_row.setdefault(outbox_id, []).append((segments, SmsStatus(status)))
    delivered = failed = 0
    for parts in per_row.values():
        states = {s for _, s in parts}
        if SmsStatus.FAILED in states:
            failed += 1
        elif states == {SmsStatus.DELIVERED}:
            delivered += 1
    return SmsFigures(
        messages=len(per_row),
        segments=sum(n for parts in per_row.values() for n, _ in parts),
        delivered=delivered,
        failed=failed,
        waiting=len(per_row) - delivered - failed,
    )


async def segments_total(session: AsyncSession) -> int:
    """Return every segment ever billed (for the operator's overview)."""
    return int((await session.exec(select(func.coalesce(func.sum(SmsSent.segments), 0)))).one())
