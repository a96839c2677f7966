"""``pledgebot demo``: build the embedded store with demo data and play a scripted session.

The script is a list of steps, each a narration key and the lines people type, played through
the console runtime against the real core, so what it shows is what the bot does. It leaves the
store behind for ``pledgebot chat``.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from bot.compose import build_services
from bot.console import ConsoleSession
from bot.settings import load_settings
from campaign import identity
from campaign.db import normalize_url
from campaign.demo_data import CITY, DEMO_CAST, load_demo
from campaign.setup import open_campaign
from models.org import Member, Org
from templates import catalog

DEFAULT_MEMBERS = 300

# (narration key, the seat to take: a phone, "guest:<name>", or None to stay, lines typed)
Step = tuple[str, str | None, tuple[str, ...]]


def script(invite_token: str) -> list[Step]:
    """Return the scripted session; the invite token is made fresh for each run."""
    c = DEMO_CAST
    return [
        ("demo.unknown", "guest:visitor", ("/start", "/contact 13912345678", "你好")),
        ("demo.member", c.member.phone, ()),
        ("demo.lang", None, ("/lang en", "/help", "/lang zh")),
        ("demo.secretary", c.secretary.phone, ("/group /bindgroup",)),
        ("demo.reviewer", c.reviewer.phone, ()),
        ("demo.office", c.county_office.phone, ()),
        ("demo.invite", "guest:invitee", (f"/start inv_{invite_token}",)),
    ]


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def _campaign_year(today: date) -> int:
    # Late in a year, the campaign being prepared is next year's (the notice: done by April).
    return today.year + 1 if today.month >= 10 else today.year


async def run_demo(members: int, out=sys.stdout, locale: str = "zh_CN") -> None:
    """Create the demo store, then play the script through the console runtime."""
    settings = load_settings()
    path = _sqlite_path(settings.database_url)
    if path is None:
        raise click.UsageError(catalog().render("demo.needs_sqlite", locale))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    services = await build_services(settings)
    cat = catalog()
    try:
        await load_demo(services.store, members)
        today = date.today()
        async with services.store.write() as session:
            await open_campaign(session, CITY, _campaign_year(today), starts_on=today)
            invite = await identity.create_invite(session, DEMO_CAST.peer_b.phone)
        async with services.store.read() as session:
            n_members = (await session.exec(select(func.count()).select_from(Member))).one()
            n_orgs = (await session.exec(select(func.count()).select_from(Org))).one()
        print(cat.render("demo.title", locale), file=out)
        print(
            cat.render("demo.created", locale, url=str(path), members=n_members, orgs=n_orgs),
            file=out,
        )
        console = ConsoleSession(services, out=out)
        for narration, seat, lines in script(invite.token):
            print(
                "\n" + cat.render("demo.step", locale, text=cat.render(narration, locale)),
                file=out,
            )
            if seat is not None and seat.startswith("guest:"):
                console.take_guest_seat(seat.split(":", 1)[1])
            elif seat is not None:
                await console.take_seat(seat)
            for line in lines:
                await console.feed(line)
        print("\n" + cat.render("demo.done", locale, url=str(path)), file=out)
    finally:
        await services.close()


def register(group: click.Group) -> None:
    """Add ``demo`` to the command line."""

    @group.command()
    @click.option("--members", default=DEFAULT_MEMBERS, show_default=True, help="Demo size.")
    @click.pass_context
    def demo(ctx: click.Context, members: int) -> None:
        """Build the demo store (SQLite) and play a scripted session, offline."""
        locale = (ctx.find_root().obj or {}).get("locale", "zh_CN")
        asyncio.run(run_demo(members, locale=locale))
