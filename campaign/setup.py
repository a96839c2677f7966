"""Open a year's campaign over a subtree (the office's first act, before anyone pledges)."""

from __future__ import annotations

from datetime import date

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit
from campaign.dates import check_campaign_dates
from models.campaign import Campaign
from models.errors import DomainError
from models.evaluation import check_rule
from models.org import Org


async def open_campaign(
    session: AsyncSession,
    root: str,
    year: int,
    *,
    starts_on: date,
    pledge_deadline: date | None = None,
    ends_on: date | None = None,
    actor: int | None = None,
) -> Campaign:
    """Open (or return the already open) campaign of ``year`` over the org named ``root``.

    The notice's calendar is the default: pledging done by the end of April (T1), items
    honoured within the year.

    Raises:
        DomainError: ``campaign.no_such_org`` or ``campaign.bad_dates``.
    """
    org = (await session.exec(select(Org).where(Org.full_name == root))).first()
    if org is None:
        raise DomainError("campaign.no_such_org", org=root)
    pledge_deadline = pledge_deadline or date(year, 4, 30)
    ends_on = ends_on or date(year, 12, 31)
    check_campaign_dates(year, starts_on, pledge_deadline, ends_on)
    existing = (
        await session.exec(
            select(Campaign).where(Campaign.root_org_id == org.id, Campaign.year == year)
        )
    ).first()
    if existing is not None:
        return existing
    camp = Campaign(
        year=year,
        name=str(year),
        root_org_id=org.id,
        starts_on=starts_on,
        pledge_deadline=pledge_deadline,
        ends_on=ends_on,
    )
    session.add(camp)
    await session.flush()
    await audit.record(
        session,
        "campaign.opened",
        actor=actor,
        subject=f"campaign:{camp.id}",
        payload={"year": year, "root": root, "deadline": pledge_deadline.isoformat()},
    )
    return camp


CALENDAR_FIELDS = frozenset(
    {
        "pledge_deadline",
        "ends_on",
        "report_day",
        "reminder_day",
        "summary_day",
        "send_hour",
        "quarter_starts",
        "review_timeout_hours",
        "rectification_notice_days",
        "eval_day",
        "eval_reminder_day",
        "eval_close_day",
        "poll_days",
        "grade_rule",
        "lookback_share",
        "model_quarters",
    }
)


async def change_calendar(
    session: AsyncSession, root: str, year: int, changes: dict, *, actor: int | None = None
) -> Campaign:
    """Change a campaign's calendar and record the change.

    Raises:
        DomainError: ``campaign.no_such_campaign``, ``campaign.bad_dates`` or
            ``campaign.bad_days`` (the reminder must come after the prompt, the summary after
            the reminder).
    """
    unknown = set(changes) - CALENDAR_FIELDS
    if unknown:
        raise ValueError(f"not calendar fields: {sorted(unknown)}")
    camp = (
        await session.exec(
            select(Campaign)
            .join(Org, Org.id == Campaign.root_org_id)
            .where(Org.full_name == root, Campaign.year == year)
        )
    ).first()
    if camp is None:
        raise DomainError("campaign.no_such_campaign", root=root, year=year)
    for key, value in changes.items():
        setattr(camp, key, value)
    check_campaign_dates(camp.year, camp.starts_on, camp.pledge_deadline, camp.ends_on)
    if not camp.report_day < camp.reminder_day <= camp.summary_day:
        raise DomainError("campaign.bad_days")
    if not camp.eval_day < camp.eval_reminder_day < camp.eval_close_day:
        raise DomainError("campaign.bad_days")
    check_rule(camp.grade_rule)
    session.add(camp)
    await audit.record(
        session,
        "campaign.calendar",
        actor=actor,
        subject=f"campaign:{camp.id}",
        payload={k: str(v) for k, v in changes.items()},
    )
    return camp
