"""``pledgebot campaign``: open a year's campaign and show the open ones."""

from __future__ import annotations

import asyncio
import sys
from datetime import date

import click
from sqlmodel import col, select

from bot.settings import load_settings
from campaign.db import Store
from campaign.setup import change_calendar, open_campaign
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Org
from templates import catalog


def _locale(ctx: click.Context) -> str:
    return (ctx.find_root().obj or {}).get("locale", "zh_CN")


def register(group: click.Group) -> None:
    """Add the ``campaign`` commands to the command line."""

    @group.group()
    def campaign() -> None:
        """Open and show campaigns (公开承诺年度活动)."""

    @campaign.command("open")
    @click.option("--year", type=int, required=True)
    @click.option("--root", required=True, help="Organization path, e.g. 陇南市")
    @click.option("--starts", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.option("--deadline", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.option("--ends", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.pass_context
    def open_cmd(ctx, year, root, starts, deadline, ends) -> None:
        """Open the campaign of YEAR over the organization ROOT and everything below it."""
        locale = _locale(ctx)

        async def go() -> Campaign:
            store = Store(load_settings().database_url)
            await store.migrate()
            try:
                async with store.write() as session:
                    return await open_campaign(
                        session,
                        root,
                        year,
                        starts_on=starts.date() if starts else min(date.today(), date(year, 1, 1)),
                        pledge_deadline=deadline.date() if deadline else None,
                        ends_on=ends.date() if ends else None,
                    )
            finally:
                await store.dispose()

        try:
            camp = asyncio.run(go())
        except DomainError as exc:
            click.echo(catalog().render(exc.key, locale, **exc.context), err=True)
            sys.exit(1)
        click.echo(
            catalog().render(
                "campaign.opened",
                locale,
                year=camp.year,
                root=root,
                deadline=camp.pledge_deadline.isoformat(),
                ends=camp.ends_on.isoformat(),
            )
        )

    @campaign.command("set")
    @click.option("--year", type=int, required=True)
    @click.option("--root", required=True, help="Organization path, e.g. 陇南市")
    @click.option("--deadline", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.option("--ends", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.option("--report-day", type=click.IntRange(1, 31), default=None)
    @click.option("--reminder-day", type=click.IntRange(1, 31), default=None)
    @click.option("--summary-day", type=click.IntRange(1, 31), default=None)
    @click.option("--send-hour", type=click.IntRange(0, 23), default=None)
    @click.option("--quarters", default=None, help="Months that start a quarter, e.g. 1,4,7,10")
    @click.option("--review-timeout-hours", type=click.IntRange(1, 24 * 60), default=None)
    @click.option("--rectification-notice-days", type=click.IntRange(0, 60), default=None)
    @click.pass_context
    def set_cmd(ctx, year, root, deadline, ends, quarters, **days) -> None:
        """Change a campaign's calendar (每月一报每季一评); unchanged options stay as they are."""
        locale = _locale(ctx)
        changes = {k: v for k, v in days.items() if v is not None}
        if deadline:
            changes["pledge_deadline"] = deadline.date()
        if ends:
            changes["ends_on"] = ends.date()
        if quarters:
            try:
                months = sorted({int(m) for m in quarters.split(",")})
            except ValueError:
                months = []
            if not months or any(m < 1 or m > 12 for m in months):
                raise click.BadParameter(quarters, param_hint="--quarters")
            changes["quarter_starts"] = months

        async def go() -> Campaign:
            store = Store(load_settings().database_url)
            await store.migrate()
            try:
                async with store.write() as session:
                    return await change_calendar(session, root, year, changes)
            finally:
                await store.dispose()

        try:
            camp = asyncio.run(go())
        except DomainError as exc:
            click.echo(catalog().render(exc.key, locale, **exc.context), err=True)
            sys.exit(1)
        click.echo(catalog().render("campaign.calendar", locale, c=camp.model_dump(), root=root))

    @campaign.command("show")
    @click.pass_context
    def show(ctx) -> None:
        """List the open campaigns."""
        locale = _locale(ctx)

        async def go():
            store = Store(load_settings().database_url)
            await store.migrate()
            try:
                async with store.read() as session:
                    return (
                        await session.exec(
                            select(Campaign, Org.full_name)
                            .join(Org, col(Org.id) == Campaign.root_org_id)
                            .where(Campaign.active == True)  # noqa: E712
                        )
                    ).all()
            finally:
                await store.dispose()

        for camp, root in asyncio.run(go()):
            click.echo(
                catalog().render("campaign.calendar", locale, c=camp.model_dump(), root=root)
            )
