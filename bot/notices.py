"""The running bot's side of notices: a short loop that keeps the senders' messages current.

Every few seconds it asks ``campaign.notices.advance`` to queue an edit of each notice under
way whose figures changed (and the summary of each one finished), then wakes the outbox
worker. Everything it knows is in the database, so a restart or a second process loses or
repeats nothing: the edits carry dedup keys per step.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from bot.outbox import OutboxWorker
from campaign import notices
from campaign.db import Store, is_unavailable

log = logging.getLogger(__name__)

#: seconds between two looks at the notices under way
EVERY = 3.0


async def follow_notices(
    store: Store, worker: OutboxWorker, stop: asyncio.Event, every: float = EVERY
) -> None:
    """Queue the progress edits of notices under way until ``stop`` is set."""
    while not stop.is_set():
        try:
            async with store.write() as session:
                ids = await notices.advance(session)
            if ids:
                worker.kick()
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("notices: the store is unavailable; trying again")
            else:
                log.exception("notices: progress failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
