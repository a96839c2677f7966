"""What every Telegram runtime does around its own door: one process, one core, one outbox.

The aiogram runtime (``bot.telegram``) and the python-telegram-bot runtime
(``bot.telegram_ptb``) differ only in how they receive updates and send messages. Everything
else is here, once: the services, the SMS door beside Telegram, the outbox worker with every
platform's messenger, the calendar and the notices' progress in the leader, the signals and an
orderly stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol

from bot.compose import build_services
from bot.delivery import Messenger
from bot.notices import follow_notices
from bot.outbox import OutboxWorker
from bot.settings import Settings
from bot.sms import build_sms
from handlers.core import Core
from reminders.jobs import Jobs
from reminders.scheduler import build_scheduler

log = logging.getLogger(__name__)


class Handler(Protocol):
    """A runtime's update handler: it only has to finish what it started when asked."""

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait up to ``timeout`` seconds for the updates under way."""


async def serve_core(
    settings: Settings,
    *,
    bot_username: str,
    messenger: Messenger,
    make_handler: Callable[[Core, OutboxWorker], Handler],
    serve: Callable[[Handler, asyncio.Event], Awaitable[None]],
    scheduler: bool = True,
) -> None:
    """Run the core behind one Telegram door until SIGINT or SIGTERM.

    Args:
        settings: the process's settings.
        bot_username: the bot's @name, for the deep links the core writes.
        messenger: the door's sending side (platform ``telegram``).
        make_handler: builds the door's update handler over the core and the worker.
        serve: receives updates (polling or a webhook) until the event is set.
        scheduler: run the campaign calendar here (the leader).
    """
    services = await build_services(settings, bot_username=bot_username)
    try:
        sms = await build_sms(settings, services.core, services.store)
        messengers: dict[str, Messenger] = {messenger.platform: messenger}
        if sms is not None:
            messengers[sms.messenger.platform] = sms.messenger
        worker = services.worker(messengers)
        if sms is not None:
            await sms.start(worker)
        handler = make_handler(services.core, worker)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, _on_signal, sig, stop)
        worker_stop = asyncio.Event()
        worker_task = asyncio.create_task(worker.run(worker_stop))
        calendar = None
        notices_task = None
        if scheduler:
            # the senders' notice messages, edited in place as delivery goes (bot/notices.py)
            notices_task = asyncio.create_task(
                follow_notices(services.store, worker, worker_stop, every=settings.notice_every)
            )
            # The leader runs the campaign calendar; what it queues is delivered by the worker.
            calendar = build_scheduler(
                Jobs(services.store, services.core.codec, documents=services.documents),
                after_tick=worker.kick,
            )
            calendar.start()
        try:
            await serve(handler, stop)
        finally:
            log.info("stopping: sending what is left")
            if calendar is not None:
                calendar.shutdown(wait=False)
            await handler.drain()
            worker_stop.set()
            try:
                await asyncio.wait_for(worker_task, timeout=10)
            except TimeoutError:
                worker_task.cancel()
            if notices_task is not None:
                with suppress(Exception):
                    await asyncio.wait_for(notices_task, timeout=5)
            if sms is not None:
                await sms.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with suppress(NotImplementedError, ValueError):
                    loop.remove_signal_handler(sig)
    finally:
        await services.close()


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("received %s, shutting down", sig.name)
    stop.set()


async def retrying(
    what: str,
    call: Callable[[], Awaitable[Any]],
    *,
    fatal: type[BaseException],
    attempts: int = 5,
) -> Any:
    """Call the Bot API at start-up, retrying with backoff; ``fatal`` (a refused token) is not."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except fatal:
            raise
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("%s failed (%r); retrying", what, exc)
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
    return None
