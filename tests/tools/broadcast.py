"""Queue a broadcast the way a campaign does: one outbox row per recipient, one dedup key each.

The rows are what ``campaign.outbox.enqueue`` writes, inserted many at a time so that tests
and benchmarks can queue tens of thousands quickly.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert

from campaign.db import Store
from models.base import utcnow
from models.dialog import Outbox, Priority
from models.reply import Reply

#: a catalog message that shows one value: the text carries the dedup key to the Bot API
TEMPLATE = "demo.step"
CHUNK = 2000


def payload(text: str, locale: str = "zh_CN") -> dict:
    """Return the outbox payload of a message whose text shows ``text``."""
    return {"locale": locale, **Reply(TEMPLATE, {"text": text}).to_payload()}


async def queue_broadcast(
    store: Store,
    chats: Sequence[str],
    *,
    key: str,
    platform: str = "telegram",
    priority: int = Priority.BROADCAST,
) -> None:
    """Queue one message to each chat, keyed ``{key}:{chat}``; the text shows that key."""
    now = utcnow()
    rows = [
        {
            "dedup_key": f"{key}:{chat}",
            "platform": platform,
            "chat_id": chat,
            "kind": "message",
            "payload": payload(f"{key}:{chat}"),
            "priority": priority,
            "status": "pending",
            "attempts": 0,
            "not_before": now,
            "created_at": now,
        }
        for chat in chats
    ]
    for start in range(0, len(rows), CHUNK):
        async with store.write() as session:
            conn = await session.connection()
            await conn.execute(insert(Outbox.__table__), rows[start : start + CHUNK])
