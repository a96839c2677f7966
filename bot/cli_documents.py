"""``pledgebot export`` and ``pledgebot spotcheck``: the attachments and the spot check."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import click
from sqlmodel import select

from bot.settings import load_settings
from campaign import propose
from campaign.db import Store
from campaign.documents import GRADES_FORM
from campaign.fulfil import local_now
from models.base import utcnow
from models.org import Org
from templates import catalog

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _locale(ctx: click.Context) -> str:
    return (ctx.find_root().obj or {}).get("locale", "zh_CN")


def _fail(locale: str, key: str, **context) -> None:
    click.echo(catalog().render(key, locale, **context), err=True)
    sys.exit(1)


async def _org_and_campaign(session, path: str):
    org = (await session.exec(select(Org).where(Org.full_name == path.strip("/")))).first()
    if org is None:
        return None, None
    return org, await propose.campaign_for(session, org)


def register(group: click.Group) -> None:
    """Add the ``export`` and ``spotcheck`` commands to the command line."""

    @group.command("export")
    @click.option("--org", "path", required=True, help="Organization path, e.g. 陇南市/武都区")
    @click.option(
        "--form",
        type=int,
        required=True,
        help="Attachment 1-7 of the notice, or 8: the year's grades.",
    )
    @click.option("--month", default=None, help="Month of the report (form 5), e.g. 2027-05.")
    @click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write.")
    @click.pass_context
    def export_cmd(ctx, path: str, form: int, month: str | None, out: str) -> None:
        """Write attachment FORM of an organization and everything below it to a file."""
        from reports import export

        locale = _locale(ctx)
        if form not in range(1, GRADES_FORM + 1):
            _fail(locale, "cli_doc.bad_form")
        if month is not None and not MONTH.match(month):
            _fail(locale, "cli_doc.bad_month")
        settings = load_settings()
        started = time.perf_counter()

        async def go():
            store = Store(settings.database_url)
            try:
                async with store.read() as session:
                    org, camp = await _org_and_campaign(session, path)
                    if org is None:
                        return "campaign.no_such_org", None
                    if camp is None:
                        return "cli_doc.no_campaign", None
                    now = utcnow()
                    with click.progressbar(length=1, file=sys.stderr, show_pos=True) as bar:

                        def progress(done: int, total: int) -> None:
                            bar.length = total
                            bar.update(done - bar.pos)

                        result = await export.build(
                            session,
                            camp,
                            org,
                            form,
                            today=local_now(camp, now).date(),
                            now=now,
                            locale=locale,
                            month=month,
                            progress=progress,
                        )
                    return None, result
            finally:
                await store.dispose()

        error, result = asyncio.run(go())
        t = catalog()
        if error:
            _fail(locale, error, org=path)
        if result is None:
            _fail(locale, "cli_doc.empty", org=path, form=t.render(f"doc.form.{form}", locale))
        Path(out).write_bytes(result.data)
        click.echo(
            t.render(
                "cli_doc.written",
                locale,
                path=out,
                form=t.render(f"doc.form.{form}", locale),
                rows=result.rows,
                seconds=round(time.perf_counter() - started, 1),
            )
        )

    @group.command("spotcheck")
    @click.option("--org", "path", required=True, help="Organization path, e.g. 陇南市/武都区")
    @click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write.")
    @click.pass_context
    def spotcheck_cmd(ctx, path: str, out: str | None) -> None:
        """Check the procedure records of every organization below ORG (T1 抽查)."""
        from reports.service import Reports

        locale = _locale(ctx)
        settings = load_settings()

        async def go():
            store = Store(settings.database_url)
            try:
                async with store.read() as session:
                    org, camp = await _org_and_campaign(session, path)
                    if org is None:
                        return "campaign.no_such_org", None, None
                    if camp is None:
                        return "cli_doc.no_campaign", None, None
                    now = utcnow()
                    made, context = await Reports().spotcheck(
                        session,
                        camp,
                        org,
                        today=local_now(camp, now).date(),
                        now=now,
                        locale=locale,
                    )
                    return None, made, context
            finally:
                await store.dispose()

        error, made, context = asyncio.run(go())
        if error:
            _fail(locale, error, org=path)
        t = catalog()
        click.echo(t.render("spotcheck.summary", locale, **context))
        target = Path(out or made.name)
        target.write_bytes(made.data)
        click.echo(t.render("cli_doc.spot_written", locale, path=str(target)))
