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
    if not active_on(campaign, day) or local.hour < campaign.send_hour:
        return []
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
    return out
