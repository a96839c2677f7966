"""The calendar's jobs: decide who is due from the database and queue their messages.

``Jobs.tick(now)`` is the one entry point: the scheduler calls it every few minutes, tests call
it with a controlled clock. For each active campaign it runs every job that is due and not yet
recorded in ``JobRun`` — the record and the queued messages commit together, so a re-run, a
restart or a misfire queues nothing twice — and handles reviews waiting past their timeout.
Jobs are campaign-level: one run decides for everyone, never one job per person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import (
    cards,
    evaluate,
    files,
    fulfil,
    grouplink,
    look_back,
    model_examples,
    monthly,
    outbox,
    people,
    polls,
    review,
    rollup,
    supervise,
)
from campaign.db import Store
from campaign.documents import Documents
from campaign.publish import GROUP_LOCALE
from models.base import utcnow
from models.callbacks import CallbackCodec
from models.campaign import Campaign, JobRun
from models.dialog import Priority
from models.org import Account, Member, Org, Role, RoleGrant
from models.pledge import Pledge, PledgeStatus
from models.progress import Rectification, RectificationStatus
from models.reply import Attachment, Reply
from reminders.calendar import DueJob, due_jobs, quarter_key
from templates import catalog

log = logging.getLogger(__name__)


def previous_month(day: date) -> str:
    """Return the month key of the month before a day's month."""
    first = day.replace(day=1) - timedelta(days=1)
    return fulfil.month_of(first)


@dataclass(frozen=True)
class _File:
    """A file of the bulletin, made but not kept yet: its caption's template and the bytes."""

    template: str
    context: dict
    name: str
    data: bytes


@dataclass
class _Prepared:
    """What a job read before its write transaction (the bulletin's figures and files)."""

    key: tuple[int, str]
    summaries: dict[int, dict] = field(default_factory=dict)
    files: dict[tuple[int, str], list[_File]] = field(default_factory=dict)


class Jobs:
    """Run the calendar of every active campaign."""

    def __init__(
        self,
        store: Store,
        codec: CallbackCodec,
        *,
        clock: Callable[[], datetime] = utcnow,
        documents: Documents | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.clock = clock
        #: makes the bulletin's chart and attachment 5; without it the bulletin is text only
        self.documents = documents
        self._prepared: _Prepared | None = None

    async def tick(self, now: datetime | None = None) -> dict[str, int]:
        """Run whatever is due now; return how many messages each job queued."""
        now = now or self.clock()
        queued: dict[str, int] = {}
        async with self.store.read() as session:
            campaigns = (
                await session.exec(select(Campaign).where(Campaign.active == True))  # noqa: E712
            ).all()
        for camp in campaigns:
            local = fulfil.local_now(camp, now)
            # Polls whose days are over close first, so a close due now reads their totals.
            n = await self._close_polls(camp, now)
            if n:
                queued["poll_close"] = queued.get("poll_close", 0) + n
            for due in due_jobs(camp, local):
                n = await self._run_once(camp, due, local)
                if n is not None:
                    queued[due.job] = queued.get(due.job, 0) + n
            n = await self._review_timeouts(camp, now)
            if n:
                queued["review_timeout"] = queued.get("review_timeout", 0) + n
        return queued

    async def _run_once(self, camp: Campaign, due: DueJob, local: datetime) -> int | None:
        runner = getattr(self, f"_job_{due.job}")
        prepare = getattr(self, f"_prepare_{due.job}", None)
        if prepare is not None:
            # the heavy reading (charts, spreadsheets) happens before the write transaction,
            # so that it does not hold the store's writer (SQLite has one) while it draws
            async with self.store.read() as session:
                ran = await session.get(JobRun, (due.job, camp.id, due.period))
                if ran is not None:
                    return None
                await prepare(session, camp, due, local.date())
        async with self.store.write() as session:
            try:
                async with session.begin_nested():
                    await session.exec(
                        insert(JobRun).values(job=due.job, campaign_id=camp.id, period=due.period)
                    )
            except IntegrityError:
                return None  # ran already for this period
            n = await runner(session, camp, due, local.date())
            await session.exec(
                update(JobRun)
                .where(
                    JobRun.job == due.job,
                    JobRun.campaign_id == camp.id,
                    JobRun.period == due.period,
                )
                .values(queued=n)
            )
        log.info("job %s %s for campaign %s queued %d", due.job, due.period, camp.id, n)
        return n

    async def _prompts(
        self, session: AsyncSession, camp: Campaign, month: str, day: date, kind: str
    ) -> int:
        count = 0
        cards: dict[int, Reply] = {}
        for due in await fulfil.due_reporters(session, camp, month, day):
            card = cards.get(due.pledge_id)
            if card is None:
                pledge = await session.get(Pledge, due.pledge_id)
                card = await monthly.report_card(
                    session, self.codec, pledge, month, today=day, template=f"report.{kind}"
                )
                cards[due.pledge_id] = card
            key = monthly.prompt_key(camp.id, month, due.pledge_id, due.member_id, kind)
            count += len(
                await outbox.notify_member(
                    session, due.member_id, card, key=key, priority=Priority.BROADCAST
                )
            )
        return count

    async def _job_prompt(self, session, camp, due, day) -> int:
        return await self._prompts(session, camp, due.period, day, "prompt")

    async def _job_remind(self, session, camp, due, day) -> int:
        # Only those still owing now are reminded: whoever answered is left alone.
        return await self._prompts(session, camp, due.period, day, "reminder")

    async def _job_summary(self, session, camp, due, day) -> int:
        root = await session.get(Org, camp.root_org_id)
        count = 0
        for org_id, _, _ in await supervise.reporting_branches(session, camp.id, root.path):
            card = await monthly.summary_card(
                session, self.codec, camp.id, org_id, due.period, today=day
            )
            for member_id in await people.secretaries(session, org_id):
                count += len(
                    await outbox.notify_member(
                        session,
                        member_id,
                        card,
                        key=f"summary:{camp.id}:{due.period}:{org_id}:{member_id}",
                        priority=Priority.BROADCAST,
                    )
                )
        return count

    async def _job_sweep(self, session, camp, due, day) -> int:
        count = 0
        for item, pledge in await fulfil.overdue_items(session, camp, day):
            ctx = {
                "content": item.content,
                "deadline": item.deadline.isoformat(),
                "owner": await cards.owner_name(session, pledge),
            }
            for member_id in await people.owners(session, pledge):
                count += len(
                    await outbox.notify_member(
                        session,
                        member_id,
                        Reply("report.overdue_notice", ctx),
                        key=f"overdue:{item.id}:{member_id}",
                    )
                )
        count += await self._rectifications(session, camp, day)
        return count

    async def _rectifications(self, session: AsyncSession, camp: Campaign, day: date) -> int:
        rows = (
            await session.exec(
                select(Rectification)
                .join(Pledge, col(Pledge.id) == Rectification.pledge_id)
                .where(
                    Pledge.campaign_id == camp.id,
                    Rectification.status != RectificationStatus.CLOSED,
                )
            )
        ).all()
        count = 0
        for rect in rows:
            ctx = await supervise.rect_context(session, rect)
            if rect.deadline < day:
                count += len(
                    await outbox.notify_member(
                        session,
                        rect.opened_by,
                        Reply("rect.lapsed_notice", ctx),
                        key=f"rect:{rect.id}:lapsed",
                    )
                )
            elif (
                rect.status is RectificationStatus.OPEN
                and rect.deadline - timedelta(days=camp.rectification_notice_days) <= day
            ):
                pledge = await session.get(Pledge, rect.pledge_id)
                for member_id in await people.owners(session, pledge):
                    count += len(
                        await outbox.notify_member(
                            session,
                            member_id,
                            Reply("rect.due_notice", ctx),
                            key=f"rect:{rect.id}:due:{member_id}",
                        )
                    )
        return count

    async def _job_quarter(self, session, camp, due, day) -> int:
        """Send the quarterly bulletin (季度通报) of the quarter just ended to each level.

        Each level's offices and reviewers, and every group linked to an organization of the
        campaign, get the level's figures, its chart (fulfilment by unit) and the month's
        attachment 5 (the monthly report form).
        """
        month = previous_month(day)
        ended = quarter_key(date.fromisoformat(f"{month}-01"))  # the quarter just ended
        grants, groups = await self._bulletin_audience(session, camp)
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared.key != (camp.id, due.period):
            prepared = _Prepared((camp.id, due.period))
        count = 0
        summaries = prepared.summaries
        files_of: dict[tuple[int, str], list[Reply]] = {}

        async def summary_of(org_id: int) -> dict:
            if org_id not in summaries:
                summaries[org_id] = await rollup.monthly_rollup(
                    session, camp.id, org_id, month, day
                )
            return summaries[org_id]

        async def attachments(org_id: int, locale: str) -> list[Reply]:
            if (org_id, locale) not in files_of:
                made = prepared.files.get((org_id, locale))
                if made is None:  # not prepared (a level that appeared since): made here
                    made = await self._bulletin_files(session, camp, org_id, month, day, locale)
                files_of[(org_id, locale)] = [
                    Reply(
                        f.template, f.context, attachment=await files.keep(session, f.name, f.data)
                    )
                    for f in made
                ]
            return files_of[(org_id, locale)]

        for member_id, org_id in grants:
            summary = await summary_of(org_id)
            if not summary["figures"]["items"]:
                continue
            key = f"bulletin:{camp.id}:{due.period}:{org_id}:{member_id}"
            replies = [Reply("bulletin.quarter", {**summary, "quarter": ended})]
            # the files in the language of the member's first account (a file is not rendered
            # again for each account)
            locales = await self._locales(session, member_id)
            if locales:
                replies += await attachments(org_id, locales[0])
            for i, reply in enumerate(replies):
                count += len(
                    await outbox.notify_member(
                        session,
                        member_id,
                        reply,
                        key=key if i == 0 else f"{key}:{i}",
                        priority=Priority.BROADCAST,
                    )
                )
        for group in groups:
            summary = await summary_of(group.org_id)
            if not summary["figures"]["items"]:
                continue
            key = f"bulletin:{camp.id}:{due.period}:group:{group.platform}:{group.chat_id}"
            replies = [Reply("bulletin.quarter", {**summary, "quarter": ended})]
            replies += await attachments(group.org_id, GROUP_LOCALE)
            for i, reply in enumerate(replies):
                row = await outbox.enqueue(
                    session,
                    platform=group.platform,
                    chat_id=group.chat_id,
                    reply=reply,
                    locale=GROUP_LOCALE,
                    key=f"{key}:{i}",
                    priority=Priority.BROADCAST,
                )
                count += row is not None
        return count

    async def _job_eval_open(self, session, camp, due, day) -> int:
        """Open the quarter's evaluation: one card per rater (S7)."""
        q = evaluate.quarter_to_evaluate(camp, day)
        if q is None:
            return 0
        return await evaluate.open_quarter(session, camp, q, codec=self.codec, today=day)

    async def _job_eval_remind(self, session, camp, due, day) -> int:
        """Remind once whoever has not answered their evaluation card."""
        q = evaluate.quarter_to_evaluate(camp, day)
        return await evaluate.remind(session, camp, q, codec=self.codec, today=day) if q else 0

    async def _job_eval_close(self, session, camp, due, day) -> int:
        """Grade the quarter and send the results, each branch's with its grade chart."""
        q = evaluate.quarter_to_evaluate(camp, day)
        if q is None:
            return 0

        async def chart(results: dict) -> Attachment | None:
            return await self._grades_chart(session, results)

        hook = chart if self.documents is not None else None
        n = await evaluate.close_quarter(session, camp, q, codec=self.codec, chart=hook)
        return n + await model_examples.tell_candidates(session, camp, codec=self.codec)

    async def _grades_chart(self, session: AsyncSession, results: dict) -> Attachment | None:
        """Draw a branch's grade chart (in the groups' language) and keep it as a file."""
        try:
            drawn = await self.documents.grades_chart(results, locale=GROUP_LOCALE)
        except Exception:  # a chart that cannot be drawn must not hold the results back
            log.exception("grade chart of %s failed", results.get("org"))
            return None
        period = catalog().render("eval_chart.quarter", GROUP_LOCALE, q=results["quarter"])
        name = files.file_name(
            GROUP_LOCALE, "chart", name=drawn.name, org=results["org"], period=period
        )
        return await files.keep(session, name, drawn.png)

    async def _job_model_prompt(self, session, camp, due, day) -> int:
        """Ask for the month's progress of each model example's cultivation plan (S5)."""
        return await model_examples.prompt(
            session, camp, due.period, codec=self.codec, kind="prompt"
        )

    async def _job_model_remind(self, session, camp, due, day) -> int:
        """Remind once those who have not reported their plan's month."""
        return await model_examples.prompt(
            session, camp, due.period, codec=self.codec, kind="reminder"
        )

    async def _job_lookback(self, session, camp, due, day) -> int:
        """Start the look-back of items due or crossed off; send the decisions now due (S8)."""
        n = await look_back.start_due(session, camp, day, codec=self.codec)
        return n + await look_back.decide_due(session, camp, day, codec=self.codec)

    async def _job_lookback_poll(self, session, camp, due, day) -> int:
        """Ask the public once this week per organization about the items looked back on."""
        return await look_back.weekly_polls(session, camp, day)

    async def _close_polls(self, camp: Campaign, now: datetime) -> int:
        """Close the public polls whose days are over (each once: its status says so)."""
        async with self.store.write() as session:
            return await polls.close_due(session, camp, now)

    async def _locales(self, session: AsyncSession, member_id: int) -> list[str]:
        rows = await session.exec(
            select(Account.locale).where(
                Account.member_id == member_id,
                Account.active == True,  # noqa: E712
            )
        )
        return list(dict.fromkeys(rows.all()))

    async def _bulletin_audience(self, session: AsyncSession, camp: Campaign):
        """Return who gets the bulletin: (member, level) of offices and reviewers, and groups."""
        root = await session.get(Org, camp.root_org_id)
        grants = (
            await session.exec(
                select(RoleGrant.member_id, RoleGrant.org_id)
                .join(Org, col(Org.id) == RoleGrant.org_id)
                .join(Member, col(Member.id) == RoleGrant.member_id)
                .where(
                    col(RoleGrant.role).in_([Role.OFFICE, Role.REVIEWER]),
                    col(Org.path).startswith(root.path),
                    Member.active == True,  # noqa: E712
                )
            )
        ).all()
        groups = await grouplink.groups_of(session, under=root.path)
        return grants, groups

    async def _prepare_quarter(self, session: AsyncSession, camp, due, day) -> None:
        """Read the bulletin's figures and make its files, outside the write transaction."""
        month = previous_month(day)
        prepared = _Prepared((camp.id, due.period))
        grants, groups = await self._bulletin_audience(session, camp)
        wanted: list[tuple[int, str]] = []
        for member_id, org_id in grants:
            locales = await self._locales(session, member_id)
            wanted.append((org_id, locales[0] if locales else ""))
        wanted += [(group.org_id, GROUP_LOCALE) for group in groups]
        for org_id, locale in dict.fromkeys(wanted):
            if org_id not in prepared.summaries:
                prepared.summaries[org_id] = await rollup.monthly_rollup(
                    session, camp.id, org_id, month, day
                )
            if locale and prepared.summaries[org_id]["figures"]["items"]:
                prepared.files[(org_id, locale)] = await self._bulletin_files(
                    session, camp, org_id, month, day, locale
                )
        self._prepared = prepared

    async def _bulletin_files(
        self, session: AsyncSession, camp: Campaign, org_id: int, month: str, day: date, locale
    ) -> list[_File]:
        """Return the chart and attachment 5 of a level, made but not kept yet (no writes)."""
        if self.documents is None:
            return []
        org = await session.get(Org, org_id)
        now = utcnow()
        out = []
        try:
            drawn = await self.documents.charts(
                session, camp, org, today=day, locale=locale, which=("fulfilment",)
            )
            for chart in drawn:
                name = files.file_name(
                    locale, "chart", name=chart.name, org=org.name, period=month
                )
                out.append(
                    _File(
                        "bulletin.chart_caption",
                        {"org": org.name, "name": chart.name, "period": month},
                        name,
                        chart.png,
                    )
                )
            made = await self.documents.export(
                session, camp, org, 5, today=day, now=now, locale=locale, month=month
            )
        except Exception:  # a file that cannot be made must not hold the bulletin back
            log.exception("bulletin files for org %s failed", org_id)
            return out
        if made is not None:
            form = catalog().render("doc.form.5", locale)
            out.append(
                _File(
                    "bulletin.file_caption",
                    {"form": form, "org": org.name, "period": month},
                    made.name,
                    made.data,
                )
            )
        return out

    async def _review_timeouts(self, camp: Campaign, now: datetime) -> int:
        timeout = timedelta(hours=camp.review_timeout_hours)
        async with self.store.write() as session:
            waiting = (
                await session.exec(
                    select(Pledge).where(
                        Pledge.campaign_id == camp.id,
                        Pledge.status == PledgeStatus.SUBMITTED,
                        col(Pledge.routed_at) <= now - timeout,
                    )
                )
            ).all()
            count = 0
            for pledge in waiting:
                if now >= pledge.routed_at + 2 * timeout:
                    routing = await review.escalate(session, pledge, codec=self.codec, now=now)
                    count += len(routing.reviewers) if routing else 0
                else:
                    count += await review.remind_reviewers(session, pledge)
            return count
