"""Command line for people's accounts: ``invite PHONE``, ``accounts PHONE``, ``unbind PHONE``.

These are the office's tools: every one of them is audited (actor: the command line).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import click

from bot.settings import Settings, load_settings
from campaign import identity
from campaign.db import Store
from models.base import utcnow
from models.campaign import DEFAULT_TIMEZONE
from models.errors import DomainError
from models.org import Org
from templates import catalog

T = TypeVar("T")

#: chat wording ("tap the button below") does not fit a terminal
_CLI_KEYS = {
    "bind.bad_phone": "cli.bad_phone",
    "bind.not_on_roster": "cli.not_on_roster",
    "bind.inactive": "accounts.inactive",
}


def _locale(ctx: click.Context) -> str:
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("locale"):
        return obj["locale"]
    return load_settings().default_locale


def _write(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    async def go() -> T:
        store = Store(settings.database_url)
        await store.migrate()
        try:
            async with store.write() as session:
                return await work(session)
        finally:
            await store.dispose()

    return asyncio.run(go())


def _refuse(exc: DomainError, locale: str, phone: str) -> None:
    key = _CLI_KEYS.get(exc.key, exc.key)
    click.echo(catalog().render(key, locale, phone=phone, **exc.context), err=True)
    sys.exit(1)


def _when(at: datetime | None, locale: str) -> str:
    if at is None:
        return "-"
    return catalog().format_time(at, locale, DEFAULT_TIMEZONE)


async def _bot_username(settings: Settings) -> str | None:
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


@click.command()
@click.argument("phone")
@click.option(
    "--replace",
    is_flag=True,
    help="The person is bound already: end those bindings now (each account is told).",
)
@click.pass_context
def invite(ctx: click.Context, phone: str, replace: bool) -> None:
    """Print a one-time deep link that binds the person with PHONE (valid INVITE_TTL_DAYS).

    Older unused links of the person stop working. Someone already bound is refused unless
    --replace is given.
    """
    locale = _locale(ctx)
    settings = load_settings()

    async def work(session):
        inv = await identity.create_invite(
            session, phone, ttl_days=settings.invite_ttl_days, replace=replace
        )
        return inv.token, inv.expires_at

    try:
        token, expires = _write(settings, work)
    except DomainError as exc:
        _refuse(exc, locale, phone)
        return
    username = settings.bot_username or asyncio.run(_bot_username(settings))
    if username:
        click.echo(f"https://t.me/{username}?start=inv_{token}")
    else:
        click.echo(catalog().render("cli.invite_no_username", locale, token=f"inv_{token}"))
    click.echo(catalog().render("accounts.invite_valid", locale, until=expires), err=True)


@click.command()
@click.argument("phone")
@click.pass_context
def accounts(ctx: click.Context, phone: str) -> None:
    """Show the accounts (active and ended) and invites of the person with PHONE."""
    locale = _locale(ctx)
    settings = load_settings()

    async def work(session):
        found = await identity.bindings_of(session, phone)
        org = await session.get(Org, found.member.org_id)
        return found, org.name if org else ""

    try:
        found, org = _write(settings, work)
    except DomainError as exc:
        _refuse(exc, locale, phone)
        return
    cat = catalog()
    now = utcnow()
    m = found.member
    lines = [cat.render("accounts.person", locale, name=m.name, phone=m.phone, org=org)]
    lines.append(cat.render("accounts.accounts_head", locale, count=len(found.accounts)))
    for a in found.accounts:
        lines.append(
            "  "
            + cat.render(
                "accounts.account_line",
                locale,
                platform=a.platform,
                external_id=a.external_id,
                bound=_when(a.bound_at, locale),
                active=a.active,
                ended=_when(a.ended_at, locale),
                reason=a.end_reason,
            )
        )
    lines.append(cat.render("accounts.invites_head", locale, count=len(found.invites)))
    for inv in found.invites:
        if inv.used_at is not None:
            state = "used"
        elif inv.revoked_at is not None:
            state = "revoked"
        elif inv.expires_at is not None and inv.expires_at <= now:
            state = "expired"
        else:
            state = "open"
        lines.append(
            "  "
            + cat.render(
                "accounts.invite_line",
                locale,
                created=_when(inv.created_at, locale),
                expires=_when(inv.expires_at, locale),
                state=state,
                used=_when(inv.used_at, locale),
                revoked=_when(inv.revoked_at, locale),
                reason=inv.revoke_reason,
            )
        )
    click.echo("\n".join(lines))


@click.command()
@click.argument("phone")
@click.pass_context
def unbind(ctx: click.Context, phone: str) -> None:
    """End every binding of the person with PHONE and revoke their unused invites.

    Each account is told. The person can bind again by sharing their contact or by a new
    invite.
    """
    locale = _locale(ctx)
    settings = load_settings()

    async def work(session):
        return await identity.unbind(session, phone)

    try:
        member, ended, revoked = _write(settings, work)
    except DomainError as exc:
        _refuse(exc, locale, phone)
        return
    click.echo(
        catalog().render(
            "accounts.unbound",
            locale,
            name=member.name,
            count=len(ended),
            platforms=sorted({a.platform for a in ended}),
            revoked=revoked,
        )
    )


def register(group: click.Group) -> None:
    """Add ``invite``, ``accounts`` and ``unbind`` to the command line."""
    for command in (invite, accounts, unbind):
        group.add_command(command)
