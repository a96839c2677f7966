"""The composition root: settings in, a wired store, core and outbox worker out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.delivery import Messenger
from bot.outbox import OutboxWorker
from bot.ratelimit import ROBOT_LIMITS, RateLimiter, sms_limits, telegram_limits
from bot.robots import Robots
from bot.settings import Settings
from campaign.db import Store
from campaign.documents import Documents
from campaign.store_keys import ROBOT_STORE_KEY, store_key
from handlers.app import build_core
from handlers.context import CoreConfig
from handlers.core import Core
from models.base import utcnow
from reports.service import Reports


@dataclass
class Services:
    """What every runtime shares: one store, one core, the settings."""

    settings: Settings
    store: Store
    core: Core
    robots: Robots

    @property
    def documents(self) -> Documents | None:
        """Return the maker of attachments and charts the core uses."""
        return self.core.documents

    def worker(self, messengers: dict[str, Messenger], **kwargs) -> OutboxWorker:
        """Return an outbox worker that delivers through ``messengers`` at the set rate."""
        kwargs.setdefault(
            "limiter",
            RateLimiter(
                {
                    "telegram": telegram_limits(per_second=self.settings.telegram_rate),
                    **ROBOT_LIMITS,
                    "sms": sms_limits(per_second=self.settings.sms_rate),
                }
            ),
        )
        # group robots (WeCom, DingTalk, Feishu) are always there: any organization may link one
        return OutboxWorker(self.store, {**self.robots.messengers(), **messengers}, **kwargs)

    async def close(self) -> None:
        """Release the database connections."""
        await self.robots.close()
        await self.store.dispose()


async def build_services(
    settings: Settings,
    *,
    migrate: bool = True,
    clock: Callable[[], datetime] = utcnow,
    bot_username: str | None = None,
) -> Services:
    """Open the store (migrating it to the newest schema) and wire the core.

    Buttons are signed with the key the settings derive (CALLBACK_SECRET or BOT_TOKEN); offline,
    with neither, with a random key this store made for itself on first use.
    """
    store = Store(settings.database_url)
    # routes members to SMS (campaign.channels): on with a gateway, or on a process without one
    # (a web worker) when SMS_ENABLED says another process sends them
    store.sms_enabled = settings.sms_enabled or bool(settings.sms_gateway)
    if migrate:
        await store.migrate()
    secret = settings.signing_key or await store_key(store)
    core = build_core(
        store,
        documents=Reports(),
        secret=secret,
        config=CoreConfig(
            bot_username=bot_username or settings.bot_username,
            default_locale=settings.default_locale,
        ),
        clock=clock,
    )
    robots = Robots(
        store,
        key=settings.robot_key or await store_key(store, ROBOT_STORE_KEY),
        retry_after=settings.robot_retry_after,
        bot_username=bot_username or settings.bot_username,
    )
    return Services(settings=settings, store=store, core=core, robots=robots)


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr with time stamps; quiet the chatty libraries."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # phone numbers never reach a log beyond their last four digits
    from bot.sms import MaskPhones

    masking = MaskPhones()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskPhones) for f in handler.filters):
            handler.addFilter(masking)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
