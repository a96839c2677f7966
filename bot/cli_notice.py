"""``pledgebot notice send``: an office's notice (公告) from the command line, with progress.

The same campaign function as /notice queues it (``campaign.notices.send``); the running bot
(``pledgebot run``) delivers it, and this command follows the figures in a progress bar until
every message is delivered or given up (``--no-wait`` returns at once). Running the same command
again finds the notice it made and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from pathlib import Path

import click
from sqlmodel import select

from bot.settings import load_settings
from campaign import files, notices
from campaign.db import Store
from models.errors import DomainError
from models.notice import Audience, Notice
from models.org import Org
from templates import catalog

#: seconds between two looks at the figures
POLL = 1.0


def _locale(ctx: click.Context) -> str:
    return (ctx.find_root().obj or {}).get("locale", "zh_CN")


def _say(locale: str, key: str, *, err: bool = False, **context) -> None:
    click.echo(catalog().render(key, locale, **context), err=err)


def _fail(locale: str, key: str, **context) -> None:
    _say(locale, key, err=True, **context)
    sys.exit(1)


async def _org(session, path: str) -> Org | None:
    return (await session.exec(select(Org).where(Org.full_name == path.strip("/")))).first()


def register(group: click.Group) -> None:
    """Add ``notice send`` to the command line."""

    @group.group("notice")
    def notice_group() -> None:
        """Public notices (公告) to an organization and everything below it."""

    @notice_group.command("send")
    @click.option("--org", "path", required=True, help="Organization path, e.g. 陇南市/武都区")
    @click.option(
        "--audience",
        default="members",
        show_default=True,
        help="members, secretaries, groups, or org:PATH (every member of one organization below).",
    )
    @click.option("--file", "text_file", required=True, help="The notice's text (UTF-8).")
    @click.option("--attach", default=None, help="A photo (.png) or a document to send with it.")
    @click.option("--wait/--no-wait", default=True, help="Follow the delivery in a progress bar.")
    @click.option("--timeout", type=float, default=3600.0, help="Stop following after seconds.")
    @click.pass_context
    def send_cmd(
        ctx,
        path: str,
        audience: str,
        text_file: str,
        attach: str | None,
        wait: bool,
        timeout: float,
    ) -> None:
        """Queue a notice to an organization's subtree; the running bot delivers it."""
        locale = _locale(ctx)
        child_path = None
        if audience.startswith("org:"):
            child_path, kind = audience[4:], Audience.ORG
        else:
            try:
                kind = Audience(audience)
            except ValueError:
                kind = None
            if kind in (None, Audience.ORG):
                _fail(locale, "notice.cli.bad_audience", audience=audience)
        try:
            text = Path(text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            _fail(locale, "notice.cli.bad_file", path=text_file)
        data = None
        if attach:
            try:
                data = Path(attach).read_bytes()
            except OSError:
                _fail(locale, "notice.cli.bad_file", path=attach)
            if len(data) > notices.MAX_ATTACHMENT_BYTES:
                _fail(
                    locale,
                    "notice.cli.too_big",
                    size=len(data),
                    limit=notices.MAX_ATTACHMENT_BYTES,
                )
        settings = load_settings()
        digest = hashlib.sha256(data).hexdigest() if data else ""
        token = notices.token_for(path.strip("/"), audience, text.strip(), digest)

        async def queue(store: Store):
            async with store.write() as session:
                scope = await _org(session, path)
                if scope is None:
                    return "notice.cli.no_org", {"path": path}, None
                child_id = None
                if child_path is not None:
                    child = await _org(session, child_path)
                    if child is None:
                        return "notice.cli.no_org", {"path": child_path}, None
                    child_id = child.id
                existing = await notices.find(session, token)
                attachment = None
                if data is not None and existing is None:
                    attachment = await files.keep(session, Path(attach).name, data)
                try:
                    notice, made = await notices.send(
                        session,
                        None,
                        token=token,
                        scope_org_id=scope.id,
                        audience=kind,
                        org_id=child_id,
                        text=text,
                        attachment=attachment,
                    )
                except DomainError as exc:
                    return exc.key, exc.context, None
                figs = await notices.figures(session, notice)
                key = "notice.cli.queued" if made else "notice.cli.already"
                return key, {**figs, "members": notice.members}, notice.id

        async def follow(store: Store, notice_id: int) -> dict:
            started = time.monotonic()
            async with store.read() as session:
                figs = await notices.figures(session, await session.get(Notice, notice_id))
            with click.progressbar(
                length=max(1, figs["messages"]),
                label=catalog().render("notice.cli.progress", locale),
                file=sys.stderr,
                show_pos=True,
            ) as bar:
                while True:
                    done = figs["sent"] + figs["dead"]
                    bar.update(done - bar.pos)
                    if figs["done"] or time.monotonic() - started > timeout:
                        return figs
                    await asyncio.sleep(POLL)
                    async with store.read() as session:
                        notice = await session.get(Notice, notice_id)
                        figs = await notices.figures(session, notice)

        async def go():
            store = Store(settings.database_url)
            try:
                await store.migrate()
                key, context, notice_id = await queue(store)
                if notice_id is None:
                    return key, context, None
                _say(locale, key, **context)
                if not wait:
                    return None, {}, None
                return None, {}, await follow(store, notice_id)
            finally:
                await store.dispose()

        key, context, figs = asyncio.run(go())
        if key is not None:
            _fail(locale, key, **context)
        if figs is not None:
            _say(locale, "notice.cli.done", **figs)
            if figs["pending"]:
                _say(locale, "notice.cli.waiting", **figs)
