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


def script(invite_token: str, year: int, locale: str = "zh_CN") -> list[Step]:
    """Return the scripted session; the invite token is made fresh for each run.

    Lines are what people type. ``@key`` presses the newest visible button whose label holds
    the catalog text of ``key`` (the transcript shows the number a person would type), and
    ``@#N`` the button of item N on a picker; a button that is not there stops the demo, so
    every announced action happens. ``%key`` types the catalog text of ``key`` in the demo's
    language (a plain request such as "how do I write a pledge"). ``!clock ISO`` moves the
    bot's clock (the calendar), ``!tick`` runs the calendar's jobs as the scheduler would.
    """
    c = DEMO_CAST
    other = "zh" if locale == "en" else "en"
    here = "en" if locale == "en" else "zh"
    return [
        ("demo.unknown", "guest:visitor", ("/start", "/contact 13912345678")),
        ("demo.member", c.member.phone, ()),
        ("demo.lang", None, (f"/lang {other}", f"/lang {here}")),
        ("demo.secretary", c.secretary.phone, ("/group /bindgroup",)),
        ("demo.peers", c.peer_a.phone, ()),
        ("demo.invite", "guest:invitee", (f"/start inv_{invite_token}",)),
        ("demo.reviewer", c.reviewer.phone, ()),
        ("demo.evaluator", c.evaluator.phone, ("%demo.say.want_pledge",)),
        (
            "demo.draft",
            c.member.phone,
            (
                "%demo.say.how_pledge",
                "@category.rural",
                "@pledge.btn.keep_post",
                "帮助本组3户困难户发展花椒种植",
                "10月底前户均增收2000元",
                "联系镇农技站来村培训2次，帮助联系收购商上门收购",
                "10月底",
                "@vanguard.serve",
                "@pledge.btn.add",
                "全心全意为人民服务，发挥先锋模范作用",
                "做一名合格党员",
                "每月参加组织生活，认真学习党的理论",
                "年底",
                "@vanguard.study",
                "@pledge.btn.submit",
            ),
        ),
        (
            "demo.fix",
            None,
            (
                "@pledge.btn.back_edit",
                "@pledge.btn.edit",
                "@#2",
                "@pledge.field.content",
                "每月在村委会为本组群众讲解1次惠农政策，提前在群里通知时间",
                "@pledge.btn.edit",
                "@#2",
                "@pledge.field.goal",
                "全年讲解12次，覆盖本组40户群众",
                "@pledge.btn.submit",
            ),
        ),
        ("demo.peer_opinions", c.peer_a.phone, ("@peer.agree",)),
        (None, "guest:invitee", ("@peer.suggest", "建议第二条写明在哪里讲、怎样让群众知道时间")),
        ("demo.return", c.secretary.phone, ("@review.return", "@review.reason.post")),
        (
            "demo.revise",
            c.member.phone,
            (
                "/pledge",
                "@pledge.btn.edit",
                "@#1",
                "@pledge.field.measures",
                "以村文书岗位为依托，联系镇农技站来村培训2次，帮助联系收购商上门收购",
                "@pledge.btn.submit",
            ),
        ),
        (
            "demo.approve",
            c.secretary.phone,
            (
                "@criterion.sci",
                "@criterion.adv",
                "@criterion.use",
                "@criterion.post",
                "@criterion.pub",
                "@review.approve",
            ),
        ),
        ("demo.public", None, ("/group /public",)),
        (None, c.member.phone, ("%menu.btn.mine",)),
        (
            "demo.month",
            c.member.phone,
            (f"!clock {year}-05-20T10:00:00+08:00", "!tick", "@report.button.rest"),
        ),
        (
            "demo.summary",
            c.secretary.phone,
            (f"!clock {year}-05-28T10:00:00+08:00", "!tick", "@summary.confirm"),
        ),
        ("demo.rollup", c.reviewer.phone, ("/summary",)),
    ]


class DemoStopped(RuntimeError):
    """The script asked for a button that is not on screen: the demo would tell a lie."""


def _press(console: ConsoleSession, line: str, locale: str) -> str:
    """Return the number to type for ``@key`` or ``@#N`` in the current seat."""
    seat = console.seat or ""
    target = line[1:]
    if target.startswith("#"):
        label = f"{target[1:]}. "
        numbers = sorted(console.messenger.buttons.get(seat, {}), reverse=True)
        found = next(
            (n for n in numbers if console.messenger.buttons[seat][n][0].startswith(label)), None
        )
    else:
        label = catalog().render(target, locale)
        found = console.messenger.find(seat, label)
    if found is None:
        raise DemoStopped(f"no button {label!r} for {seat}")
    return str(found)


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
        console = ConsoleSession(services, out=out, locale=locale)
        jobs = Jobs(services.store, services.core.codec, clock=clock, documents=services.documents)
        for narration, seat, lines in script(invite.token, year, locale):
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
                    await jobs.tick(clock.now)
                    await console.flush()
                elif line.startswith("@"):
                    await console.feed(_press(console, line, locale))
                elif line.startswith("%"):
                    await console.feed(cat.render(line[1:], locale))
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
        try:
            asyncio.run(run_demo(members, locale=locale))
        except DemoStopped as exc:
            raise click.ClickException(str(exc)) from exc
