"""The documents port: what handlers and the calendar ask of whoever makes files.

``reports`` implements it (the seven attachments, charts, the spot check); the composition
root hands that implementation to the core and to the calendar. Handlers and jobs only see
this contract, so the layers keep flowing one way and a deployment without documents still
answers every command plainly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from campaign.access import Actor
from models.campaign import Campaign
from models.org import Org
from models.pledge import Pledge

#: /export's form number of the year's grades for the annual 民主评议党员 (after the notice's 1–7)
GRADES_FORM = 8


@dataclass(frozen=True)
class Made:
    """A generated file: its name and bytes, and what it holds.

    Attributes:
        form: the attachment's number (1–7), or 0 for other files (the spot check).
        org: the organization it is about.
        period: the month (attachment 5) or the day it speaks of.
        rows: items, pledges or organizations in it (0 means there was nothing to put in).
    """

    form: int
    name: str
    data: bytes
    org: str
    period: str
    rows: int


@dataclass(frozen=True)
class Chart:
    """A rendered chart: which one, its name in the reader's language, its PNG."""

    key: str
    name: str
    png: bytes


class Documents(Protocol):
    """Makes the attachments, the charts and the spot check from the records.

    Every method reads through ``session`` and writes nothing; files come back as bytes for
    the caller to keep (``campaign.files``) and send. Charts are drawn off the event loop.
    """

    async def export(
        self,
        session: AsyncSession,
        campaign: Campaign,
        org: Org,
        form: int,
        *,
        today: date,
        now: datetime,
        locale: str,
        month: str | None = None,
        actor: Actor | None = None,
    ) -> Made | None:
        """Return attachment ``form`` of ``org`` (and its subtree), or None when it is empty.

        Raises:
            DomainError: ``error.forbidden`` when ``actor`` may not have it.
        """
        ...

    async def printable(
        self,
        session: AsyncSession,
        campaign: Campaign,
        pledge: Pledge,
        what: str,
        *,
        today: date,
        now: datetime,
        locale: str,
    ) -> Made:
        """Return the printable version of a published pledge: ``letter`` or ``display``."""
        ...

    async def charts(
        self,
        session: AsyncSession,
        campaign: Campaign,
        org: Org,
        *,
        today: date,
        locale: str,
        which: tuple[str, ...] = ("fulfilment", "trend", "pledging"),
    ) -> list[Chart]:
        """Return the charts of a level: fulfilment by unit, the monthly trend, pledging."""
        ...

    async def grades_chart(self, results: dict, *, locale: str) -> Chart:
        """Return a branch's grade chart from ``campaign.evaluate.branch_results``.

        It counts 优秀/良好/一般/差/待评 per kind and per side; nobody is ranked.
        """
        ...

    async def spotcheck(
        self,
        session: AsyncSession,
        campaign: Campaign,
        org: Org,
        *,
        today: date,
        now: datetime,
        locale: str,
    ) -> tuple[Made, dict]:
        """Return the spot check of a subtree as a table, and the context of its message."""
        ...

    async def selfcheck(
        self, session: AsyncSession, campaign: Campaign, org: Org, *, today: date, locale: str
    ) -> dict:
        """Return the context of a branch's self-check message."""
        ...
