"""``pledgebot group add|list|remove|test``: the office links WeCom, DingTalk and Feishu robots.

A robot is an organization's group channel besides (or instead of) a Telegram group linked by
/bindgroup: the display post, notices to groups, the quarterly bulletin and evaluation results
go there too. Robots are outbound only. Webhook URLs and secrets are stored sealed and printed
only masked. Every change is audited (actor: the command line).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from bot.settings import Settings, load_settings
from campaign import audit
from campaign import robots as campaign_robots
from campaign.db import Store
from campaign.store_keys import ROBOT_STORE_KEY, store_key
from models.errors import DomainError
from models.robot import ROBOT_KINDS
from templates import catalog

T = TypeVar("T")


def _locale(ctx: click.Context) -> str:
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("locale"):
        return obj["locale"]
    return load_settings().default_locale


async def robot_key(settings: Settings, store: Store) -> bytes:
    """Return the key that seals robots' webhooks (as ``pledgebot run`` derives it)."""
    return settings.robot_key or await store_key(store, ROBOT_STORE_KEY)


def _run(settings: Settings, work: Callable[[Store, bytes], Awaitable[T]]) -> T:
    async def go() -> T:
        store = Store(settings.database_url)
        await store.migrate()
        try:
            return await work(store, await robot_key(settings, store))
        finally:
            await store.dispose()

    return asyncio.run(go())


def _say(key: str, locale: str, *, err: bool = False, **context) -> None:
    click.echo(catalog().render(key, locale, **context), err=err)


def _refuse(exc: DomainError, locale: str) -> None:
    _say(exc.key, locale, err=True, **exc.context)
    sys.exit(1)


def _view(link: campaign_robots.RobotLink) -> dict:
    return {
        "id": link.chat_id,
        "kind": f"robot.kind.{link.kind}",
        "org": link.org,
        "hint": link.hint,
        "signed": link.signed,
        "linked_at": link.linked_at,
        "broken_at": link.broken_at,
        "reason": link.broken_reason,
    }


@click.group("group")
def group_cmd() -> None:
    """Group robots (WeCom, DingTalk, Feishu) an organization publishes to."""


@group_cmd.command("add")
@click.option("--org", "path", required=True, help="Organization path, e.g. 陇南市/武都区")
@click.option("--kind", type=click.Choice(ROBOT_KINDS), required=True, help="The robot's app.")
@click.option("--webhook", required=True, help="The robot's webhook URL (kept encrypted).")
@click.option("--secret", default="", help="DingTalk 加签 / Feishu signature secret, if set.")
@click.option("--title", default="", help="A name for the group, for lists.")
@click.pass_context
def add_cmd(ctx, path: str, kind: str, webhook: str, secret: str, title: str) -> None:
    """Link a group robot to an organization; it is outbound only."""
    locale = _locale(ctx)

    async def work(store: Store, key: bytes) -> campaign_robots.RobotLink:
        async with store.write() as session:
            return await campaign_robots.add(
                session,
                org_path=path,
                kind=kind,
                webhook=webhook,
                secret=secret,
                key=key,
                title=title,
            )

    try:
        link = _run(load_settings(), work)
    except DomainError as exc:
        _refuse(exc, locale)
    _say("robot.added", locale, **_view(link))
    _say("robot.outbound_only", locale)


@group_cmd.command("list")
@click.option("--org", "path", default=None, help="Only this organization's robots.")
@click.pass_context
def list_cmd(ctx, path: str | None) -> None:
    """List the group robots (URLs masked)."""
    locale = _locale(ctx)

    async def work(store: Store, key: bytes) -> list[campaign_robots.RobotLink]:
        async with store.read() as session:
            return await campaign_robots.links(session, path)

    try:
        found = _run(load_settings(), work)
    except DomainError as exc:
        _refuse(exc, locale)
    if not found:
        _say("robot.list_empty", locale)
    for link in found:
        _say("robot.list_row", locale, **_view(link))


@group_cmd.command("remove")
@click.argument("robot_id")
@click.pass_context
def remove_cmd(ctx, robot_id: str) -> None:
    """Remove a group robot (ROBOT_ID as ``group list`` shows it)."""
    locale = _locale(ctx)

    async def work(store: Store, key: bytes) -> campaign_robots.RobotLink:
        async with store.write() as session:
            return await campaign_robots.remove(session, robot_id.strip())

    try:
        link = _run(load_settings(), work)
    except DomainError as exc:
        _refuse(exc, locale)
    _say("robot.removed", locale, **_view(link))


@group_cmd.command("test")
@click.argument("robot_id")
@click.pass_context
def test_cmd(ctx, robot_id: str) -> None:
    """Send a test message now and print the robot's answer."""
    from bot.robots import Robots

    locale = _locale(ctx)
    settings = load_settings()

    async def work(store: Store, key: bytes):
        robots = Robots(store, key=key, bot_username=settings.bot_username)
        try:
            verdict, answer = await robots.test(
                robot_id.strip(), catalog().render("robot.test_message", locale)
            )
        except (OSError, TimeoutError, Exception) as exc:
            if isinstance(exc, DomainError):
                raise
            return None, f"{type(exc).__name__}"
        finally:
            await robots.close()
        async with store.write() as session:
            await audit.record(
                session,
                "robot.tested",
                actor=None,
                subject=f"robot:{robot_id.strip()}",
                payload={"ok": verdict.ok, "code": verdict.code},
            )
        return verdict, answer

    try:
        verdict, answer = _run(settings, work)
    except DomainError as exc:
        _refuse(exc, locale)
    shown = json.dumps(answer, ensure_ascii=False) if not isinstance(answer, str) else answer
    if verdict is not None and verdict.ok:
        _say("robot.test_ok", locale, answer=shown)
        return
    _say("robot.test_failed", locale, err=True, answer=shown)
    sys.exit(1)


def register(group: click.Group) -> None:
    """Add ``group`` to the ``pledgebot`` command group."""
    group.add_command(group_cmd)
