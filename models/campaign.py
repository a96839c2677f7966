"""A year's campaign: its organization root and its calendar."""

from __future__ import annotations

from datetime import date

from sqlmodel import Field, SQLModel


class Campaign(SQLModel, table=True):
    """One year's public-pledge campaign over a subtree (the notice: 2011年度公开承诺).

    Attributes:
        pledge_deadline: pledging is done by this date (T1: the end of April).
        ends_on: the last day a pledge item's deadline may fall on.
    """

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    name: str = Field(max_length=128)
    root_org_id: int = Field(foreign_key="org.id")
    starts_on: date
    pledge_deadline: date
    ends_on: date
    active: bool = True
