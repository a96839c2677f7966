"""The ``pledgebot`` command line: run the bot, import the roster, invite, demo, chat, audit."""

from __future__ import annotations

import asyncio
import sys

import click

from bot.compose import build_services, setup_logging
from bot.settings import load_settings
from campaign import audit, identity
from campaign.db import Store
from models.errors import DomainError
from templates import catalog


@click.group()
@click.option("--lang", "locale", default=None, help="zh_CN (default) or en, for messages.")
@click.pass_context
def main(ctx: click.Context, locale: str | None) -> None:
    """承诺通 PledgeBot: public pledges (公开承诺) in a chat-bot."""
    ctx.ensure_object(dict)
    ctx.obj["locale"] = locale or load_settings().default_locale


@main.command()
@click.pass_context
def chat(ctx: click.Context) -> None:
    """Talk to the bot in this terminal, as any person on the roster (/as PHONE)."""
    from bot.console import repl

    async def go() -> None:
        services = await build_services(load_settings())
        try:
            await repl(services)
        finally:
            await services.close()

    setup_logging("WARNING")
    asyncio.run(go())


@main.command()
@click.argument("phone")
@click.pass_context
def invite(ctx: click.Context, phone: str) -> None:
    """Print a one-time deep link that binds the person with PHONE."""
    locale = ctx.obj["locale"]
    settings = load_settings()

    async def go() -> str:
        store = Store(settings.database_url)
        await store.migrate()
        try:
            async with store.write() as session:
                inv = await identity.create_invite(session, phone)
            return inv.token
        finally:
            await store.dispose()

    try:
        token = asyncio.run(go())
    except DomainError as exc:
        # The chat wording ("tap the button below") does not fit a terminal.
        key = {"bind.bad_phone": "cli.bad_phone", "bind.not_on_roster": "cli.not_on_roster"}
        click.echo(catalog().render(key.get(exc.key, exc.key), locale, phone=phone), err=True)
        sys.exit(1)
    username = settings.bot_username or asyncio.run(_bot_username(settings))
    if username:
        click.echo(f"https://t.me/{username}?start=inv_{token}")
    else:
        click.echo(catalog().render("cli.invite_no_username", locale, token=f"inv_{token}"))


async def _bot_username(settings) -> str | None:
    """Ask the Bot API for the bot's username; None when offline or without a token."""
    if not settings.bot_token:
        return None
    import aiohttp

    url = f"{settings.telegram_api_base.rstrip('/')}/bot{settings.bot_token}/getMe"
    try:
        async with aiohttp.ClientSession() as http, http.get(url, timeout=5) as resp:
            data = await resp.json(content_type=None)
        return (data.get("result") or {}).get("username")
    except Exception:
        return None


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
    from bot import cli_campaign, cli_demo, cli_documents, cli_roster, cli_run

    for module in (cli_run, cli_roster, cli_campaign, cli_demo, cli_documents):
        module.register(main)


_register_more()
