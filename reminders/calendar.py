"""The campaign's calendar as pure rules: which jobs are due, for which period, on a day.

A job is identified by (job, campaign, period); the period is the month for the monthly jobs,
the day for the daily sweep, the quarter for the quarterly one. A job becomes due on its day
once the send hour has come, and stays due until it has run, so a day the scheduler missed is
caught up once, the next time it looks, and never twice.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
from datetime import date, datetime

from models.campaign import Campaign
from models.evaluation import ended_quarter


@dataclass(frozen=True)
class DueJob:
    """One job to run for one period."""

    job: str
    period: str


def clamp_day(year: int, month: int, day: int) -> int:
    """Return ``day``, or the month's last day when the month is shorter."""
    return min(max(1, day), _cal.monthrange(year, month)[1])


def month_key(day: date) -> str:
    """Return the month key of a day (``2026-05``)."""
    return f"{day.year:04d}-{day.month:02d}"


def quarter_key(day: date) -> str:
    """Return the quarter key of a day (``2026Q2``)."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def active_on(campaign: Campaign, day: date) -> bool:
    """Tell whether the campaign's calendar runs on a day (from its start to its end)."""
    return campaign.active and campaign.starts_on <= day <= campaign.ends_on


def due_jobs(campaign: Campaign, local: datetime) -> list[DueJob]:
    """Return the jobs due at a local time; the caller runs those not yet recorded as run."""
    day = local.date()
    evaluation = (
        evaluation_jobs(campaign, local)
        + lookback_jobs(campaign, local)
        + model_jobs(campaign, local)
    )
    if not active_on(campaign, day) or local.hour < campaign.send_hour:
        return evaluation
    month = month_key(day)
    out = [DueJob("sweep", day.isoformat())]
    monthly = (
        ("prompt", campaign.report_day),
        ("remind", campaign.reminder_day),
        ("summary", campaign.summary_day),
    )
    for job, wanted in monthly:
        if day.day >= clamp_day(day.year, day.month, wanted):
            out.append(DueJob(job, month))
    if day.month in campaign.quarter_starts:
        out.append(DueJob("quarter", quarter_key(day)))
    return out + evaluation


def evaluation_jobs(campaign: Campaign, local: datetime) -> list[DueJob]:
    """Return the quarterly evaluation's jobs due: open, remind once, close (每季一评).

    In a quarter-start month, for the quarter just ended (its key is the period): the
    evaluation opens on ``eval_day``, reminds on ``eval_reminder_day`` (not when only caught up
    on the closing day) and closes on ``eval_close_day``. The last quarter ends with the
    campaign, so its evaluation runs in the month after the campaign's end.
    """
    day = local.date()
    q = ended_quarter(campaign.quarter_starts, day)
    if (
        q is None
        or not campaign.active
        or local.hour < campaign.send_hour
        or q.last < campaign.starts_on
        or q.first > campaign.ends_on
    ):
        return []
    due = {
        job: day.day >= clamp_day(day.year, day.month, wanted)
        for job, wanted in (
            ("eval_open", campaign.eval_day),
            ("eval_remind", campaign.eval_reminder_day),
            ("eval_close", campaign.eval_close_day),
        )
    }
    # A reminder caught up on the closing day would come with the close: it is not sent.
    due["eval_remind"] = due["eval_remind"] and not due["eval_close"]
    return [DueJob(job, q.key) for job, is_due in due.items() if is_due]


#: days after the campaign's end in which look-backs still run (items due on its last day)
LOOKBACK_GRACE_DAYS = 45


def lookback_jobs(campaign: Campaign, local: datetime) -> list[DueJob]:
    """Return the look-back's jobs due (回头看): daily start and decide, one poll round a week.

    They run from the campaign's start until ``LOOKBACK_GRACE_DAYS`` after its end, so the
    items due on its last day are looked back on too.
    """
    day = local.date()
    if (
        not campaign.active
        or local.hour < campaign.send_hour
        or day < campaign.starts_on
        or (day - campaign.ends_on).days > LOOKBACK_GRACE_DAYS
    ):
        return []
    year, week, _ = day.isocalendar()
    return [
        DueJob("lookback", day.isoformat()),
        DueJob("lookback_poll", f"{year}W{week:02d}"),
    ]


def model_jobs(campaign: Campaign, local: datetime) -> list[DueJob]:
    """Return the model examples' monthly jobs due: the plan's prompt and its one reminder."""
    day = local.date()
    if not active_on(campaign, day) or local.hour < campaign.send_hour:
        return []
    month = month_key(day)
    return [
        DueJob(job, month)
        for job, wanted in (
            ("model_prompt", campaign.report_day),
            ("model_remind", campaign.reminder_day),
        )
        if day.day >= clamp_day(day.year, day.month, wanted)
    ]
