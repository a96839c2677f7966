"""Command line for the roster: ``roster import FILE`` and ``demo-data``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from bot.settings import load_settings
from campaign.db import Store
from campaign.demo_data import DEFAULT_SEED, generate_roster, roster_table
from campaign.roster import (
    DRY_RUN_LIST,
    ImportResult,
    format_error,
    import_parsed,
    import_roster,
    iter_errors,
    render_summary,
    validate_rows,
    write_roster,
)
from templates import catalog


class ProgressBar:
    """A one-line progress bar on stderr that tolerates a total that changes as it goes."""

    WIDTH = 30

    def __init__(self, label: str, enabled: bool | None = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` out of ``total``."""
        if not self.enabled or total <= 0:
            return
        percent = min(100, done * 100 // total)
        if percent == self.shown:
            return
        self.shown = percent
        filled = self.WIDTH * percent // 100
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        click.echo(f"\r{self.label} [{bar}] {percent:3d}%", err=True, nl=False)

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled and self.shown >= 0:
            click.echo("", err=True)


def _locale(ctx: click.Context) -> str:
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("locale"):
        return obj["locale"]
    return load_settings().default_locale


def _report(result: ImportResult, locale: str) -> None:
    messages = catalog()
    if result.ok and result.dry_run:
        _report_dry_run(result, locale)
        return
    if result.ok:
        click.echo(render_summary(result, locale))
        return
    click.echo(messages.render("roster.rejected", locale, count=len(result.errors)), err=True)
    for line in iter_errors(result.errors, locale):
        click.echo(line, err=True)
    sys.exit(1)


def _report_dry_run(result: ImportResult, locale: str) -> None:
    messages = catalog()
    click.echo(messages.render("roster.dry_run.title", locale))
    click.echo(
        messages.render(
            "roster.dry_run.summary",
            locale,
            **{
                k: getattr(result, k)
                for k in (
                    "rows",
                    "created",
                    "updated",
                    "unchanged",
                    "deactivated",
                    "orgs_created",
                    "grants_added",
                    "grants_removed",
                )
            },
        )
    )
    for name, phone, org in result.deactivated_people:
        line = messages.render(
            "roster.dry_run.deactivate_line", locale, name=name, phone=phone, org=org
        )
        click.echo(line)
    if result.deactivated > DRY_RUN_LIST:
        click.echo(
            messages.render("roster.dry_run.more", locale, count=result.deactivated - DRY_RUN_LIST)
        )
    if result.refusal is not None:
        reason = format_error(result.refusal, locale)
        click.echo(messages.render("roster.dry_run.refused", locale, reason=reason))


@click.group("roster")
def roster() -> None:
    """Manage the roster (花名册) of organizations and people."""


@roster.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--dry-run", is_flag=True, help="Print what the import would change; write nothing.")
@click.option(
    "--allow-deactivate",
    is_flag=True,
    help="Allow deactivating more than 10% of the active people, or more than 20.",
)
@click.pass_context
def import_cmd(
    ctx: click.Context, file: Path, quiet: bool, dry_run: bool, allow_deactivate: bool
) -> None:
    """Import a roster FILE (CSV in UTF-8 or .xlsx): all rows, or nothing and every error.

    People missing from FILE are deactivated; more than 10% of the active people, or more than
    20, only with --allow-deactivate. --dry-run shows what would change.
    """
    locale = _locale(ctx)
    bar = ProgressBar(
        catalog().render("roster.progress", locale), enabled=False if quiet else None
    )

    async def go() -> ImportResult:
        store = Store(load_settings().database_url)
        try:
            await store.migrate()
            return await import_roster(
                store, file, bar, allow_deactivate=allow_deactivate, dry_run=dry_run
            )
        finally:
            await store.dispose()

    try:
        result = asyncio.run(go())
    finally:
        bar.close()
    _report(result, locale)


@click.command("demo-data")
@click.option(
    "--members",
    "-n",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="How many people the roster lists (the fixed demo cast included).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the roster to this .csv or .xlsx file.",
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option(
    "--import",
    "do_import",
    is_flag=True,
    help="Also import the roster into the DATABASE_URL store (with --out: the file written).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--allow-deactivate",
    is_flag=True,
    help="Allow the import to deactivate more than 10% of the active people, or more than 20.",
)
@click.pass_context
def demo_data(
    ctx: click.Context,
    members: int,
    out: Path | None,
    seed: int,
    do_import: bool,
    quiet: bool,
    allow_deactivate: bool,
) -> None:
    """Generate a Longnan (陇南市) demo roster: write it with --out, import it with --import."""
    locale = _locale(ctx)
    messages = catalog()
    if out is None and not do_import:
        raise click.UsageError(messages.render("roster.demo_needs_out", locale))
    rows = generate_roster(members, seed)
    if out is not None:
        written = write_roster(out, rows)
        click.echo(messages.render("roster.demo_written", locale, rows=written, path=str(out)))
    if not do_import:
        return
    settings = load_settings()
    click.echo(messages.render("roster.demo_importing", locale, url=_safe_url(settings)))
    bar = ProgressBar(messages.render("roster.progress", locale), enabled=False if quiet else None)

    async def go() -> ImportResult:
        store = Store(settings.database_url)
        try:
            await store.migrate()
            if out is not None:
                return await import_roster(store, out, bar, allow_deactivate=allow_deactivate)
            parsed = validate_rows(roster_table(rows))
            return await import_parsed(store, parsed, bar, allow_deactivate=allow_deactivate)
        finally:
            await store.dispose()

    try:
        result = asyncio.run(go())
    finally:
        bar.close()
    _report(result, locale)


def _safe_url(settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def register(group: click.Group) -> None:
    """Add the roster commands to the ``pledgebot`` command group."""
    group.add_command(roster)
    group.add_command(demo_data)
