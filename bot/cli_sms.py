"""``pledgebot sms-test PHONE``: queue one test SMS, which the running bot sends."""

from __future__ import annotations

import asyncio

import click

from bot.settings import load_settings
from campaign.db import Store
from campaign.identity import mask_phone, normalize_phone
from campaign.outbox import enqueue
from models.dialog import Priority
from models.reply import Reply
from templates import catalog


def _locale(ctx: click.Context) -> str:
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("locale"):
        return obj["locale"]
    return load_settings().default_locale


@click.command("sms-test")
@click.argument("phone")
@click.argument("text", required=False, default="")
@click.pass_context
def sms_test(ctx: click.Context, phone: str, text: str) -> None:
    """Queue one test SMS to PHONE; the running ``pledgebot run`` sends it (SMS_GATEWAY)."""
    locale = _locale(ctx)
    cat = catalog()
    settings = load_settings()
    number = normalize_phone(phone)
    if number is None:
        raise click.ClickException(cat.render("cli.sms.bad_phone", locale, phone=phone))

    async def go() -> int | None:
        store = Store(settings.database_url)
        await store.migrate()
        try:
            async with store.write() as session:
                return await enqueue(
                    session,
                    platform="sms",
                    chat_id=number,
                    reply=Reply("sms.gateway.test", {"text": text}),
                    locale=locale,
                    priority=Priority.REPLY,
                )
        finally:
            await store.dispose()

    row = asyncio.run(go())
    click.echo(cat.render("cli.sms.queued", locale, phone=mask_phone(number), row=row))
    if not settings.sms_gateway:
        click.echo(cat.render("cli.sms.off", locale), err=True)


def register(group: click.Group) -> None:
    """Add ``sms-test`` to the ``pledgebot`` command group."""
    group.add_command(sms_test)
