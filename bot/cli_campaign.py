"""``pledgebot campaign``: open a year's campaign and show the open ones."""

from __future__ import annotations

import asyncio
import copy
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
    @click.option("--eval-day", type=click.IntRange(1, 31), default=None)
    @click.option("--eval-reminder-day", type=click.IntRange(1, 31), default=None)
    @click.option("--eval-close-day", type=click.IntRange(1, 31), default=None)
    @click.option("--poll-days", type=click.IntRange(1, 30), default=None)
    @click.option("--model-quarters", type=click.IntRange(1, 4), default=None)
    @click.option("--weights", default=None, help="Member sides: self=10,peer=20,…")
    @click.option("--org-weights", default=None, help="Org sides: self=20,upper=50,public=30")
    @click.option("--points", default=None, help="Points per grade: excellent=100,good=85,…")
    @click.option("--thresholds", default=None, help="Lowest score per grade: excellent=90,…")
    @click.pass_context
    def set_cmd(
        ctx, year, root, deadline, ends, quarters, weights, org_weights, points, thresholds, **days
    ) -> None:
        """Change a campaign's calendar (每月一报每季一评); unchanged options stay as they are.

        The grade rule is data: ``--weights``, ``--org-weights``, ``--points`` and
        ``--thresholds`` change only the names given; ``campaign show`` prints the whole rule.
        """
        locale = _locale(ctx)
        changes = {k: v for k, v in days.items() if v is not None}
        rule_parts = {
            ("weights", "member"): (weights, "--weights"),
            ("weights", "org"): (org_weights, "--org-weights"),
            ("points",): (points, "--points"),
            ("thresholds",): (thresholds, "--thresholds"),
        }
        rule_changes = {}
        for path, (text, hint) in rule_parts.items():
            if text:
                rule_changes[path] = _pairs(text, hint, locale)
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
                    if rule_changes:
                        changes["grade_rule"] = await _changed_rule(
                            session, root, year, rule_changes
                        )
                    return await change_calendar(session, root, year, changes)
            finally:
                await store.dispose()

        try:
            camp = asyncio.run(go())
        except DomainError as exc:
            click.echo(catalog().render(exc.key, locale, **exc.context), err=True)
            sys.exit(1)
        click.echo(catalog().render("campaign.calendar", locale, c=camp.model_dump(), root=root))
        click.echo(catalog().render("eval.rule_cli", locale, c=camp.model_dump()))

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
            click.echo(catalog().render("eval.rule_cli", locale, c=camp.model_dump()))


def _pairs(text: str, hint: str, locale: str) -> dict[str, int]:
    """Return ``a=1,b=2`` as a dict, or stop with a clear message."""
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = int(value)
        except ValueError:
            raise click.BadParameter(
                catalog().render("eval.bad_option", locale, text=part), param_hint=hint
            ) from None
    return out


async def _changed_rule(session, root: str, year: int, parts: dict) -> dict:
    """Return the campaign's grade rule with the named values changed (checked by the setup)."""
    camp = (
        await session.exec(
            select(Campaign)
            .join(Org, col(Org.id) == Campaign.root_org_id)
            .where(Org.full_name == root, Campaign.year == year)
        )
    ).first()
    if camp is None:
        raise DomainError("campaign.no_such_campaign", root=root, year=year)
    rule = copy.deepcopy(camp.grade_rule)
    for path, values in parts.items():
        target = rule
        for key in path:
            target = target.setdefault(key, {})
        unknown = set(values) - set(target)
        if unknown:
            raise DomainError("eval.bad_rule", what=",".join(sorted(unknown)))
        target.update(values)
    return rule
