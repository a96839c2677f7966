"""Append to the audit trail and verify its hash chain (T2: every decision is a record)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.audit import GENESIS, AuditEvent, event_hash
from models.base import utcnow

_PG_AUDIT_LOCK = 7_204_311  # advisory lock id: one appender at a time on PostgreSQL


async def record(
    session: AsyncSession,
    kind: str,
    *,
    actor: int | None,
    subject: str = "",
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    if session.bind.dialect.name == "postgresql":
        await session.exec(text(f"SELECT pg_advisory_xact_lock({_PG_AUDIT_LOCK})"))
    last = (
        await session.exec(select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1))
    ).first()
    prev = last or GENESIS
    at = at or utcnow()
    payload = payload or {}
    ev = AuditEvent(
        at=at,
        actor_member_id=actor,
        kind=kind,
        subject=subject,
        payload=payload,
        prev_hash=prev,
        hash=event_hash(prev, at, actor, kind, subject, payload),
    )
    session.add(ev)
    await session.flush()
    return ev


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a chain check: how many events, and the first broken one."""

    checked: int
    broken_id: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Tell whether every event checked out."""
        return self.broken_id is None


async def verify(session: AsyncSession, batch: int = 5000) -> VerifyResult:
    """Recompute every hash in order; name the first event whose record was altered."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = (
            await session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.id) > last_id)
                .order_by(col(AuditEvent.id))
                .limit(batch)
            )
        ).all()
        if not rows:
            return VerifyResult(checked)
        for ev in rows:
            if ev.prev_hash != prev:
                return VerifyResult(checked, ev.id, "prev_hash")
            expected = event_hash(
                ev.prev_hash, ev.at, ev.actor_member_id, ev.kind, ev.subject, ev.payload
            )
            if expected != ev.hash:
                return VerifyResult(checked, ev.id, "hash")
            prev = ev.hash
            checked += 1
            last_id = ev.id
