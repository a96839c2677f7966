"""The platform-neutral core: one event in, one transaction, replies queued in the outbox.

For each event the core, in one write transaction: records the update id (a redelivered
update is recognised and has no second effect), loads the sender's account, roles and dialog
state, runs the handler inside a savepoint, writes the dialog state back with a version check,
and queues the replies in the outbox. A domain error rolls back the handler's writes and
queues the error's message instead; an unexpected error is logged with its traceback and the
person gets a plain apology. Adapters then deliver the queued rows at once.

When the store cannot record the update at all (locked, down, restarting), nothing is written
and ``handle`` raises ``StoreUnavailable``: no apology, since the update is not lost; the adapter
leaves it unacknowledged so that it comes again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import channels, files, outbox
from campaign.access import load_actor
from campaign.db import Store, StoreUnavailable, is_unavailable
from campaign.documents import Documents
from campaign.identity import account_for
from handlers.callbacks import CallbackCodec
from handlers.context import CoreConfig, Ctx, Later, Outgoing, State
from handlers.events import ButtonPressed, Event
from handlers.input import clean_event, refused_reply
from handlers.router import Router
from models.base import utcnow
from models.dialog import DialogState, Priority, ProcessedUpdate
from models.errors import DomainError
from models.reply import Reply
from templates import catalog, normalize_locale

log = logging.getLogger(__name__)

MAX_RETRIES = 5

__all__ = ["Core", "Handled", "StaleDialog", "StoreUnavailable"]


class StaleDialog(Exception):
    """Another update for the same person changed the dialog first; the event is retried."""


@dataclass(frozen=True)
class Handled:
    """What the core did with one event.

    Attributes:
        outbox_ids: rows queued for the sender (and others), to deliver now.
        toast: the rendered answer to a pressed button, if any.
        duplicate: the update had been handled before; nothing was done.
    """

    outbox_ids: tuple[int, ...] = ()
    toast: str | None = None
    duplicate: bool = False


class Core:
    """Handle events from any platform with the same handlers."""

    def __init__(
        self,
        store: Store,
        router: Router,
        codec: CallbackCodec,
        *,
        config: CoreConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        documents: Documents | None = None,
    ) -> None:
        self.store = store
        self.documents = documents
        self.router = router
        self.codec = codec
        self.config = config or CoreConfig()
        self.clock = clock
        self._locks: OrderedDict[tuple[str, str, str], asyncio.Lock] = OrderedDict()

    def _lock_for(self, key: tuple[str, str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            while len(self._locks) > 10_000:
                oldest, old = next(iter(self._locks.items()))
                if old.locked():
                    break
                del self._locks[oldest]
        self._locks.move_to_end(key)
        return lock

    async def handle(self, event: Event) -> Handled:
        """Handle one event; safe to call again with the same update id.

        Raises:
            StoreUnavailable: the store could not record the event; nothing was done.
        """
        s = event.sender
        async with self._lock_for((s.platform, s.chat_id, s.user_id)):
            for attempt in range(MAX_RETRIES):
                try:
                    return await self._handle_once(event)
                except StaleDialog:
                    log.info("dialog changed concurrently, retrying (%d)", attempt + 1)
                except StoreUnavailable:
                    raise
                except Exception as exc:
                    if is_unavailable(exc):
                        raise StoreUnavailable(_first_line(exc)) from exc
                    raise
            raise RuntimeError("dialog kept changing; gave up")

    async def _handle_once(self, event: Event) -> Handled:
        # One normalizer for every text from every platform, before any handler sees it.
        event, refused = clean_event(event)
        s = event.sender
        later: list[Later] = []
        async with self.store.write() as session:
            if event.update_id is not None and not await self._mark_processed(session, event):
                return Handled(duplicate=True)
            row = (
                await session.exec(
                    select(DialogState).where(
                        DialogState.platform == s.platform,
                        DialogState.chat_id == s.chat_id,
                        DialogState.user_id == s.user_id,
                    )
                )
            ).first()
            state = State(row.dialog, row.step, dict(row.data or {})) if row else State()
            before = state.snapshot()
            account = await account_for(session, s.platform, s.user_id)
            actor = None
            if account is not None and account.active:
                actor = await load_actor(session, account.member_id)
            locale = (
                account.locale
                if account is not None
                else state.data.get("_locale") or normalize_locale(s.language)
            )
            if s.platform == channels.SMS and account is None:
                # An SMS sender is the roster member with that number; nobody binds by SMS.
                member = await channels.member_by_phone(session, s.user_id)
                if member is not None:
                    actor = await load_actor(session, member.id)
                    locale = (await channels.member_locales(session, [member.id]))[member.id]
            ctx = Ctx(
                session=session,
                event=event,
                locale=locale,
                now=self.clock(),
                codec=self.codec,
                config=self.config,
                state=state,
                account=account,
                actor=actor,
                commands=frozenset(self.router.commands),
                documents=self.documents,
            )
            if refused is not None:
                # Refused text leaves everything as it was, the dialog's place included.
                replies = refused_reply(ctx, refused, self.router.group_commands)
            else:
                replies = await self._run(ctx, session)
            if ctx.state.snapshot() != before:
                await self._save_state(session, s, row, ctx.state)
            handled = await self._queue(session, event, ctx, replies)
            later = ctx.later
        if later:
            handled = await self._after_commit(event, ctx.locale, later, handled)
        return handled

    async def _run(self, ctx: Ctx, session: AsyncSession) -> list[Reply]:
        # A button gets its answer as the toast of the pressed button; anything else as a message.
        toast = isinstance(ctx.event, ButtonPressed)
        saved = copy.deepcopy(ctx.state)
        try:
            async with session.begin_nested():
                return await self.router.route(ctx)
        except DomainError as exc:
            ctx.state = saved
            ctx.later.clear()
            return [Reply(exc.key, exc.context, toast=toast)]
        except StaleDialog:
            raise
        except Exception as exc:
            if is_unavailable(exc):
                raise  # the transaction cannot commit: the update will come again
            log.exception("handler failed for %r", ctx.event)
            # Leave the dialog, so nobody is stuck answering a question that keeps failing;
            # drafts live in the database and the dialog's command picks them up again.
            ctx.state = saved
            ctx.state.clear()
            ctx.later.clear()
            return [Reply("error.unexpected", toast=toast)]

    async def _after_commit(
        self, event: Event, locale: str, later: list[Later], handled: Handled
    ) -> Handled:
        """Make what the handler left for after its commit, reading outside the write lock.

        Each piece reads in its own read session; the files are then kept and the replies
        queued in one short write transaction (dedup keys from the update, so a piece is never
        queued twice). The update is recorded already: if the process stops in between, the
        person asks again (a document costs nothing to make twice).
        """
        s = event.sender
        made: list[Outgoing] = []
        for make in later:
            try:
                async with self.store.read() as session:
                    made += await make(session)
            except DomainError as exc:
                made.append(Outgoing(Reply(exc.key, exc.context)))
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("store unavailable while making a file: %s", _first_line(exc))
                    return handled
                log.exception("making a file failed for %r", event)
                made.append(Outgoing(Reply("error.unexpected")))
        if not made:
            return handled
        cause = f"u:{s.platform}:{event.update_id}:later" if event.update_id is not None else None
        async with self.store.write() as session:
            for i, out in enumerate(made):
                reply = out.reply
                if out.data is not None:
                    kept = await files.keep(session, out.name or "file", out.data)
                    reply = replace(reply, attachment=kept)
                await outbox.enqueue(
                    session,
                    platform=s.platform,
                    chat_id=s.chat_id,
                    reply=reply,
                    locale=locale,
                    key=f"{cause}:{i}" if cause else None,
                    priority=Priority.REPLY,
                )
            ids = session.info.pop(outbox.QUEUED, [])
        return Handled(outbox_ids=(*handled.outbox_ids, *ids), toast=handled.toast)

    async def _mark_processed(self, session: AsyncSession, event: Event) -> bool:
        try:
            async with session.begin_nested():
                await session.exec(
                    insert(ProcessedUpdate).values(
                        platform=event.sender.platform,
                        update_id=str(event.update_id),
                        at=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def _save_state(
        self, session: AsyncSession, s, row: DialogState | None, state: State
    ) -> None:
        values = {
            "dialog": state.dialog,
            "step": state.step,
            "data": state.data,
            "updated_at": utcnow(),
        }
        if row is None:
            try:
                async with session.begin_nested():
                    await session.exec(
                        insert(DialogState).values(
                            platform=s.platform,
                            chat_id=s.chat_id,
                            user_id=s.user_id,
                            version=1,
                            **values,
                        )
                    )
            except IntegrityError as exc:
                raise StaleDialog from exc
            return
        result = await session.exec(
            update(DialogState)
            .where(DialogState.id == row.id, DialogState.version == row.version)
            .values(version=row.version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise StaleDialog

    async def _queue(
        self, session: AsyncSession, event: Event, ctx: Ctx, replies: list[Reply]
    ) -> Handled:
        s = event.sender
        toast_text = None
        cause = f"u:{s.platform}:{event.update_id}" if event.update_id is not None else None
        for i, reply in enumerate(replies):
            if reply.toast:
                if toast_text is None:
                    toast_text = catalog().render(reply.template, ctx.locale, **reply.context)
                continue
            # By SMS only short wordings go out; a reply without one is not sent (cost).
            message = channels.sms_reply(reply) if s.platform == channels.SMS else reply
            if message is None:
                continue
            await outbox.enqueue(
                session,
                platform=s.platform,
                chat_id=s.chat_id,
                reply=message,
                locale=ctx.locale,
                key=f"{cause}:{i}" if cause else None,
                priority=Priority.REPLY,
            )
        # Everything queued in this transaction (replies, cards to reviewers, notices) goes out
        # right after the commit, in the order it was queued.
        ids = sorted(set(session.info.pop(outbox.QUEUED, [])) | set(ctx.extra_outbox))
        return Handled(outbox_ids=tuple(ids), toast=toast_text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"
