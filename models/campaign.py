"""A year's campaign: its organization root and its calendar."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import JsonColumn
from models.evaluation import default_rule

DEFAULT_QUARTER_STARTS = [1, 4, 7, 10]
DEFAULT_TIMEZONE = "Asia/Shanghai"


class Campaign(SQLModel, table=True):
    """One year's public-pledge campaign over a subtree (the notice: 2011年度公开承诺).

    The calendar ("每月一报每季一评") is per campaign and changeable with ``pledgebot campaign``.
    Days are days of the month in the campaign's time zone; a day past a month's end means its
    last day.

    Attributes:
        pledge_deadline: pledging is done by this date (T1: the end of April).
        ends_on: the last day a pledge item's deadline may fall on.
        report_day: the monthly progress prompt goes out on this day.
        reminder_day: those who have not reported by then are reminded, once.
        summary_day: each branch's monthly summary goes to its secretary to confirm.
        send_hour: the hour (local) from which scheduled messages go out.
        quarter_starts: the months that start a quarter (for the quarterly evaluation).
        review_timeout_hours: a review waiting this long reminds the reviewer, and after as
            long again escalates to the next level; it never approves by itself.
        rectification_notice_days: the owner of a rectification is reminded this many days
            before its deadline.
        eval_day, eval_reminder_day, eval_close_day: in each quarter-start month, the
            evaluation of the quarter just ended opens (one card per rater), reminds those who
            have not answered (once) and closes with the results.
        poll_days: a public poll in a linked group is closed after this many days.
        grade_rule: weights per side, points per grade, thresholds per grade, as data
            (``models.evaluation.DEFAULT_GRADE_RULE``), printed with every result.
        lookback_share: the share of 满意+基本满意 a look-back needs to be satisfied.
        model_quarters: quarters graded 优秀 that make a member or organization a candidate
            model example (先进典型).
    """

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    name: str = Field(max_length=128)
    root_org_id: int = Field(foreign_key="org.id")
    starts_on: date
    pledge_deadline: date
    ends_on: date
    active: bool = True
    timezone: str = Field(default=DEFAULT_TIMEZONE, max_length=64)
    report_day: int = 20
    reminder_day: int = 25
    summary_day: int = 28
    send_hour: int = 9
    quarter_starts: list[int] = Field(
        default_factory=lambda: list(DEFAULT_QUARTER_STARTS), sa_column=Column(JsonColumn)
    )
    review_timeout_hours: int = 72
    rectification_notice_days: int = 3
    eval_day: int = 1
    eval_reminder_day: int = 8
    eval_close_day: int = 15
    poll_days: int = 7
    grade_rule: dict = Field(default_factory=default_rule, sa_column=Column(JsonColumn))
    lookback_share: str = Field(default="2/3", max_length=8)
    model_quarters: int = 2


class JobRun(SQLModel, table=True):
    """One run of a calendar job for one period: the record that makes every job idempotent."""

    __tablename__ = "jobrun"

    job: str = Field(primary_key=True, max_length=32)
    campaign_id: int = Field(primary_key=True, foreign_key="campaign.id")
    period: str = Field(primary_key=True, max_length=16)
    queued: int = 0
