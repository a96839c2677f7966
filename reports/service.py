"""The documents port (``campaign.documents.Documents``) made of this package's parts."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import cards, files
from campaign.access import Actor
from campaign.documents import Chart, Made
from models.campaign import Campaign
from models.org import Org
from models.pledge import OwnerKind, Pledge
from reports import charts, export, forms, spot


class Reports:
    """Make attachments, charts and the spot check (registers the CJK font when built)."""

    def __init__(self) -> None:
        charts.register_font()

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
        """Return attachment ``form`` of ``org``, or None when it is empty."""
        return await export.build(
            session,
            campaign,
            org,
            form,
            today=today,
            now=now,
            locale=locale,
            month=month,
            actor=actor,
        )

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
        """Return the pledge letter or the display table of one published pledge."""
        org = await session.get(Org, pledge.org_id)
        owner = await cards.owner_name(session, pledge)
        if what == "letter":
            data = await forms.letter_docx(session, campaign, pledge, locale=locale)
            name = files.file_name(locale, "letter", org=org.name, owner=owner)
            return Made(0, name, data, org.name, today.isoformat(), 1)
        form = 6 if pledge.owner_kind is OwnerKind.ORG else 7
        data, rows = await forms.display_docx(
            session, campaign, org, form, today=today, now=now, locale=locale, pledges=[pledge]
        )
        name = files.file_name(locale, form, org=org.name, period=owner)
        return Made(form, name, data, org.name, today.isoformat(), rows)

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
        """Return the charts of a level."""
        return await charts.charts_of_level(
            session, campaign, org, today=today, locale=locale, which=which
        )

    async def grades_chart(self, results: dict, *, locale: str) -> Chart:
        """Return a branch's grade chart (每季一评)."""
        return await charts.draw_grades(results, locale=locale)

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
        """Return the spot check of a subtree and its message's context."""
        name, data, context = await spot.spotcheck_xlsx(
            session, campaign, org, today=today, now=now, locale=locale
        )
        return Made(0, name, data, org.name, today.isoformat(), context["total"]), context

    async def selfcheck(
        self, session: AsyncSession, campaign: Campaign, org: Org, *, today: date, locale: str
    ) -> dict:
        """Return a branch's self-check."""
        return await spot.selfcheck(session, campaign, org, today=today, locale=locale)
