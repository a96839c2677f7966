"""The ``pledgebot`` command line: run the bot, import the roster, invite, demo, chat, audit."""

from __future__ import annotations

import asyncio
import sys

import click

from bot.compose import build_services, setup_logging
from bot.settings import load_settings
from campaign import audit
from campaign.db import Store
from templates import catalog


@click.group()
@click.option("--lang", "locale", default=None, help="zh_CN (default) or en, for messages.")
@click.pass_context
def main(ctx: click.Context, locale: str | None) -> None:
    """承诺通 PledgeBot: public pledges (公开承诺) in a chat-bot."""
    ctx.ensure_object(dict)
    try:
        settings = load_settings()
    except ValueError as exc:  # refuse at start-up, in one line, whatever the command
        raise click.ClickException(f"bad settings: {exc}") from exc
    ctx.obj["locale"] = locale or settings.default_locale


@main.command()
@click.pass_context
def chat(ctx: click.Context) -> None:
    """Talk to the bot in this terminal, as any person on the roster (/as PHONE)."""
    from bot.console import repl

    locale = (ctx.find_root().obj or {}).get("locale")

    async def go() -> None:
        services = await build_services(load_settings())
        try:
            await repl(services, locale=locale)
        finally:
            await services.close()

    setup_logging("WARNING")
    asyncio.run(go())


@main.group()
def audit_cmd() -> None:
    """Check the audit trail."""


main.add_command(audit_cmd, name="audit")


@audit_cmd.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Recompute the hash chain and name the first altered event, if any."""
    locale = ctx.find_root().obj["locale"]
    settings = load_settings()

    async def go():
        store = Store(settings.database_url)
        try:
            async with store.read() as session:
                return await audit.verify(session)
        finally:
            await store.dispose()

    result = asyncio.run(go())
    if result.ok:
        click.echo(catalog().render("cli.audit_ok", locale, count=result.checked))
    else:
        click.echo(
            catalog().render(
                "cli.audit_broken",
                locale,
                event=result.broken_id,
                count=result.checked,
                reason=result.reason,
            )
        )
        sys.exit(1)


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
def upgrade() -> None:
    """Migrate the database to the newest schema."""

    async def go() -> None:
        store = Store(load_settings().database_url)
        try:
            await store.migrate()
        finally:
            await store.dispose()

    asyncio.run(go())
    click.echo("ok")


def _register_more() -> None:
    from bot import (
        cli_accounts,
        cli_campaign,
        cli_demo,
        cli_documents,
        cli_group,
        cli_notice,
        cli_roster,
        cli_run,
    )

    for module in (
        cli_run,
        cli_roster,
        cli_accounts,
        cli_campaign,
        cli_demo,
        cli_documents,
        cli_notice,
    ):
        module.register(main)
    cli_group.register(main)
    from bot import cli_sms

    cli_sms.register(main)


_register_more()
