"""``pledgebot demo``: build the embedded store with demo data and play a scripted session.

The script is a list of steps, each a narration key and the lines people type, played through
the console runtime against the real core, so what it shows is what the bot does. It leaves the
store behind for ``pledgebot chat``.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from bot.compose import build_services
from bot.console import ConsoleSession
from bot.settings import load_settings
from campaign import audit, identity
from campaign.db import normalize_url
from campaign.demo_data import CITY, DEMO_CAST, load_demo
from campaign.setup import open_campaign
from models.base import utcnow
from models.org import Member, Org
from reminders.jobs import Jobs
from templates import catalog

DEFAULT_MEMBERS = 300

# (narration key or None, the seat to take: a phone, "guest:<name>", or None to stay, lines)
Step = tuple[str | None, str | None, tuple[str, ...]]


def script(invite_token: str, year: int) -> list[Step]:
    """Return the scripted session; the invite token is made fresh for each run.

    Lines are what people type; ``!clock ISO`` moves the bot's clock (the calendar), ``!tick``
    runs the calendar's jobs as the scheduler would at that time.
    """
    c = DEMO_CAST
    return [
        ("demo.unknown", "guest:visitor", ("/start", "/contact 13912345678")),
        ("demo.member", c.member.phone, ()),
        ("demo.lang", None, ("/lang en", "/lang zh")),
        ("demo.secretary", c.secretary.phone, ("/group /bindgroup",)),
        ("demo.peers", c.peer_a.phone, ()),
        ("demo.invite", "guest:invitee", (f"/start inv_{invite_token}",)),
        ("demo.reviewer", c.reviewer.phone, ()),
        (
            "demo.draft",
            c.member.phone,
            (
                "/pledge",
                "1",
                "1",
                "帮助本组3户困难户发展花椒种植",
                "10月底前户均增收2000元",
                "联系镇农技站来村培训2次，帮助联系收购商上门收购",
                "10月底",
                "3",
                "1",
                "全心全意为人民服务，发挥先锋模范作用",
                "做一名合格党员",
                "每月参加组织生活，认真学习党的理论",
                "年底",
                "1",
                "4",
            ),
        ),
        (
            "demo.fix",
            None,
            (
                "2",
                "2",
                "2",
                "1",
                "每月在村委会为本组群众讲解1次惠农政策，提前在群里通知时间",
                "2",
                "2",
                "2",
                "全年讲解12次，覆盖本组40户群众",
                "4",
                "1",
            ),
        ),
        ("demo.peer_opinions", c.peer_a.phone, ("1",)),
        (None, "guest:invitee", ("2", "建议第二条写明在哪里讲、怎样让群众知道时间")),
        ("demo.return", c.secretary.phone, ("7", "4")),
        (
            "demo.revise",
            c.member.phone,
            (
                "/pledge",
                "2",
                "1",
                "3",
                "以村文书岗位为依托，联系镇农技站来村培训2次，帮助联系收购商上门收购",
                "4",
            ),
        ),
        ("demo.approve", c.secretary.phone, ("1", "2", "3", "4", "5", "6")),
        ("demo.public", None, ("/group /public",)),
        (None, c.member.phone, ("/mine",)),
        ("demo.month", c.member.phone, (f"!clock {year}-05-20T10:00:00+08:00", "!tick", "7")),
        ("demo.summary", c.secretary.phone, (f"!clock {year}-05-28T10:00:00+08:00", "!tick", "1")),
        ("demo.rollup", c.reviewer.phone, ("/summary",)),
    ]


class DemoClock:
    """The bot's clock in the demo: the real time until the script moves it on."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        """Return the demo's current time."""
        return self.now


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
    clock = DemoClock()
    services = await build_services(settings, clock=clock)
    cat = catalog()
    try:
        await load_demo(services.store, members)
        today = date.today()
        year = _campaign_year(today)
        async with services.store.write() as session:
            await open_campaign(session, CITY, year, starts_on=today)
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
        jobs = Jobs(services.store, services.core.codec, clock=clock, documents=services.documents)
        for narration, seat, lines in script(invite.token, year):
            if narration:
                text = cat.render(narration, locale)
                print("\n" + cat.render("demo.step", locale, text=text), file=out)
            if seat is not None and seat.startswith("guest:"):
                console.take_guest_seat(seat.split(":", 1)[1])
            elif seat is not None:
                await console.take_seat(seat)
            for line in lines:
                if line.startswith("!clock "):
                    when = line.split(" ", 1)[1]
                    clock.now = datetime.fromisoformat(when).astimezone(UTC)
                    print(cat.render("demo.clock", locale, when=when[:10]), file=out)
                elif line == "!tick":
                    console.messenger.new_turn()
                    await jobs.tick(clock.now)
                    await console.flush()
                else:
                    await console.feed(line)
        async with services.store.read() as session:
            checked = await audit.verify(session)
        print("\n" + cat.render("cli.audit_ok", locale, count=checked.checked), file=out)
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
