"""Every date the bot accepts lies in its campaign's window; one check, one answer."""

from __future__ import annotations

from datetime import date

from models.campaign import Campaign
from models.errors import DomainError

#: a 年度 campaign ends in its year or the next at the latest (so 9999-12-31 is no end date)
YEAR_SLACK = 1


def within_campaign(day: date, campaign: Campaign, *, earliest: date | None = None) -> date:
    """Return ``day`` if it lies in the campaign (and not before ``earliest``).

    Raises:
        DomainError: ``date.outside_campaign``, naming the window.
    """
    lo = max(campaign.starts_on, earliest) if earliest else campaign.starts_on
    hi = campaign.ends_on
    if not lo <= day <= hi:
        raise DomainError(
            "date.outside_campaign",
            date=day.isoformat(),
            earliest=lo.isoformat(),
            latest=hi.isoformat(),
        )
    return day


def check_campaign_dates(year: int, starts_on: date, pledge_deadline: date, ends_on: date) -> None:
    """Refuse a campaign calendar out of order or ending long after the campaign's year.

    Raises:
        DomainError: ``campaign.bad_dates`` or ``date.campaign_year``.
    """
    if not starts_on <= pledge_deadline <= ends_on:
        raise DomainError("campaign.bad_dates")
    if ends_on.year > year + YEAR_SLACK:
        raise DomainError("date.campaign_year", year=year, last=year + YEAR_SLACK)
