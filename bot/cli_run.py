"""``pledgebot run``: start the Telegram bot (long polling, or a webhook server)."""

from __future__ import annotations

import asyncio
import importlib

import click

from bot.compose import setup_logging
from bot.settings import load_settings

#: RUNTIME setting -> module with ``run_bot(settings, *, webhook)``, ``check_webhook_settings``
#: and ``StartupError``
RUNTIMES = {"aiogram": "bot.telegram", "ptb": "bot.telegram_ptb"}


@click.command("run")
@click.option(
    "--webhook/--polling",
    "webhook",
    default=None,
    help="Force webhook or long-polling mode (default: webhook when WEBHOOK_URL is set).",
)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    help="Run the campaign calendar here (the leader); web workers pass --no-scheduler.",
)
def run_command(webhook: bool | None, scheduler: bool) -> None:
    """Run the bot until SIGINT or SIGTERM."""
    try:
        settings = load_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"bad settings: {exc}") from exc
    setup_logging(settings.log_level)
    module_name = RUNTIMES.get(settings.runtime)
    if module_name is None:
        raise click.ClickException(
            f"unknown RUNTIME {settings.runtime!r}; choose one of {', '.join(RUNTIMES)}"
        )
    try:
        runtime = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.ClickException(
            f"runtime {settings.runtime!r} is not available: {exc}"
        ) from exc
    try:
        settings.require_token()
        if webhook or (webhook is None and settings.webhook_url):
            runtime.check_webhook_settings(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    startup_error = getattr(runtime, "StartupError", ())
    try:
        asyncio.run(runtime.run_bot(settings, webhook=webhook, scheduler=scheduler))
    except startup_error as exc:
        raise click.ClickException(str(exc)) from exc


def register(group: click.Group) -> None:
    """Add ``run`` to the ``pledgebot`` command group."""
    group.add_command(run_command)
