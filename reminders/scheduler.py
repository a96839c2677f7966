"""One APScheduler in the leader process, ticking the calendar; the truth stays in our tables.

APScheduler keeps no state of ours (a memory job store): every tick asks the database what is
due, so a restart, a second start or a missed tick changes nothing but timing. Web workers do
not start it (``pledgebot run --no-scheduler``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from models.base import utcnow
from reminders.jobs import Jobs

log = logging.getLogger(__name__)

TICK_MINUTES = 5


def build_scheduler(
    jobs: Jobs,
    *,
    minutes: float = TICK_MINUTES,
    after_tick: Callable[[], Awaitable[None] | None] | None = None,
) -> AsyncIOScheduler:
    """Return a scheduler that ticks the calendar now and every few minutes."""
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def tick() -> None:
        try:
            queued = await jobs.tick()
        except Exception:
            log.exception("calendar tick failed")
            return
        if queued:
            log.info("calendar queued %s", queued)
        if after_tick is not None:
            result = after_tick()
            if result is not None:
                await result

    scheduler.add_job(
        tick,
        IntervalTrigger(minutes=minutes, timezone="UTC"),
        id="calendar-tick",
        next_run_time=utcnow(),
        misfire_grace_time=int(minutes * 60),
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler
