"""Keys a store keeps for itself: made once at random, the same for every process after."""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from campaign.db import Store
from models.base import utcnow
from models.store_value import StoreValue

CALLBACK_KEY = "callback_key"
#: the offline key that seals group robots' webhooks (``campaign.robots``)
ROBOT_STORE_KEY = "robot_key"


async def store_key(store: Store, name: str = CALLBACK_KEY) -> bytes:
    """Return this store's random 32-byte key called ``name``, making it on first use.

    Two processes starting together agree: the first insert wins and the other reads it.
    """
    async with store.read() as session:
        row = await session.get(StoreValue, name)
        if row is not None:
            return base64.urlsafe_b64decode(row.value)
    fresh = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    try:
        async with store.write() as session:
            row = {"name": name, "value": fresh, "created_at": utcnow()}
            await session.exec(insert(StoreValue).values(**row))
    except IntegrityError:
        pass  # another process made it first: use theirs
    async with store.read() as session:
        row = (await session.exec(select(StoreValue).where(StoreValue.name == name))).one()
        return base64.urlsafe_b64decode(row.value)
