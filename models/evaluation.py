"""The quarterly evaluation (每季一评, S7): ratings from each side, and the grade rule as data.

The rule that turns ratings into a grade is data kept in the campaign (``Campaign.grade_rule``):
weights per side, points per grade and thresholds per grade. ``combine`` applies it, exactly
(fractions, no rounding before the comparison), so anyone can recompute a printed result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, enum_type, utcnow
from models.errors import DomainError
from models.pledge import OwnerKind


class Grade(StrEnum):
    """A grade (优秀 / 良好 / 一般 / 差), given by a rater or reached by the rule."""

    EXCELLENT = "excellent"
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"


class Side(StrEnum):
    """Who rates: self, peers, organization, evaluators (members); self, upper, public (orgs)."""

    SELF = "self"
    PEER = "peer"
    ORG = "org"
    EVALUATOR = "evaluator"
    UPPER = "upper"
    PUBLIC = "public"


class PublicVote(StrEnum):
    """The options of a public poll (满意 / 基本满意 / 不满意), in this order."""

    SATISFIED = "satisfied"
    BASIC = "basic"
    DISSATISFIED = "dissatisfied"


class EvalStatus(StrEnum):
    """Where one evaluation stands: open for ratings, 待评 (the decisive side missing), graded."""

    OPEN = "open"
    PENDING = "pending"
    GRADED = "graded"


class FollowUp(StrEnum):
    """What a secretary did about a 一般 or 差 (flagged, never automated)."""

    TALK = "talk"
    CRITICISM = "criticism"
    RECTIFY = "rectify"


#: the sides that rate each kind of subject, in the order results list them
SIDES: dict[OwnerKind, tuple[Side, ...]] = {
    OwnerKind.MEMBER: (Side.SELF, Side.PEER, Side.ORG, Side.EVALUATOR),
    OwnerKind.ORG: (Side.SELF, Side.UPPER, Side.PUBLIC),
}
#: without this side's rating the result is 待评
REQUIRED: dict[OwnerKind, Side] = {OwnerKind.MEMBER: Side.ORG, OwnerKind.ORG: Side.UPPER}

DEFAULT_GRADE_RULE: dict[str, Any] = {
    "weights": {
        "member": {"self": 10, "peer": 20, "org": 40, "evaluator": 30},
        "org": {"self": 20, "upper": 50, "public": 30},
    },
    "points": {"excellent": 100, "good": 85, "fair": 70, "poor": 50},
    "public_points": {"satisfied": 100, "basic": 80, "dissatisfied": 40},
    "thresholds": {"excellent": 90, "good": 80, "fair": 65},
}


def default_rule() -> dict[str, Any]:
    """Return a fresh copy of the default grade rule."""
    return {
        "weights": {k: dict(v) for k, v in DEFAULT_GRADE_RULE["weights"].items()},
        "points": dict(DEFAULT_GRADE_RULE["points"]),
        "public_points": dict(DEFAULT_GRADE_RULE["public_points"]),
        "thresholds": dict(DEFAULT_GRADE_RULE["thresholds"]),
    }


def check_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """Return the rule if it is complete and sensible.

    Raises:
        DomainError: ``eval.bad_rule`` naming what is wrong.
    """

    def bad(what: str) -> DomainError:
        return DomainError("eval.bad_rule", what=what)

    try:
        for kind, sides in SIDES.items():
            weights = rule["weights"][kind.value]
            if set(weights) != {s.value for s in sides}:
                raise bad(f"weights.{kind.value}")
            if any(not isinstance(w, int) or w < 0 for w in weights.values()):
                raise bad(f"weights.{kind.value}")
            if not any(weights.values()):
                raise bad(f"weights.{kind.value}")
        points = rule["points"]
        if set(points) != {g.value for g in Grade} or any(
            not isinstance(p, int) or not 0 <= p <= 100 for p in points.values()
        ):
            raise bad("points")
        public = rule["public_points"]
        if set(public) != {v.value for v in PublicVote} or any(
            not isinstance(p, int) or not 0 <= p <= 100 for p in public.values()
        ):
            raise bad("public_points")
        th = rule["thresholds"]
        if set(th) != {"excellent", "good", "fair"} or any(
            not isinstance(v, int) for v in th.values()
        ):
            raise bad("thresholds")
        if not 100 >= th["excellent"] > th["good"] > th["fair"] >= 0:
            raise bad("thresholds")
    except (KeyError, TypeError, AttributeError):
        raise bad("shape") from None
    return rule


@dataclass(frozen=True)
class SideScore:
    """One side's part of a result: how many rated, their mean in points, its weight."""

    side: Side
    weight: int
    count: int
    mean: Fraction | None

    def as_dict(self) -> dict[str, Any]:
        """Return the part as JSON-friendly data (the mean to one decimal)."""
        return {
            "side": self.side.value,
            "weight": self.weight,
            "count": self.count,
            "mean": None if self.mean is None else round(float(self.mean), 1),
        }


@dataclass(frozen=True)
class Combined:
    """The rule applied: score and grade, or ``grade=None`` when the decisive side is missing."""

    grade: Grade | None
    score: Fraction | None
    parts: tuple[SideScore, ...] = field(default_factory=tuple)

    @property
    def missing(self) -> list[str]:
        """Return the sides left out because nobody of them rated."""
        return [p.side.value for p in self.parts if p.mean is None and p.weight]

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-friendly data (kept with the evaluation, shown in results)."""
        return {
            "grade": self.grade.value if self.grade else None,
            "score": None if self.score is None else round(float(self.score), 1),
            "parts": [p.as_dict() for p in self.parts],
            "missing": self.missing,
        }


def public_mean(rule: dict[str, Any], totals: dict[str, int]) -> Fraction | None:
    """Return a poll's totals as points (votes weighted by ``public_points``), or None if empty."""
    votes = sum(totals.get(v.value, 0) for v in PublicVote)
    if not votes:
        return None
    points = rule["public_points"]
    return Fraction(sum(totals.get(v.value, 0) * points[v.value] for v in PublicVote), votes)


def grade_for(rule: dict[str, Any], score: Fraction) -> Grade:
    """Return the grade of a score: at or above a threshold reaches that grade."""
    th = rule["thresholds"]
    for grade in (Grade.EXCELLENT, Grade.GOOD, Grade.FAIR):
        if score >= th[grade.value]:
            return grade
    return Grade.POOR


def combine(
    rule: dict[str, Any],
    kind: OwnerKind,
    grades: dict[Side, list[Grade]],
    public: dict[str, int] | None = None,
) -> Combined:
    """Apply the rule: each side's mean in points, weighted over the sides that rated.

    score = Σ weight·mean / Σ weight over the sides with at least one rating (the public side
    from the poll's totals). Without the decisive side (``REQUIRED``) there is no grade (待评).
    """
    weights = rule["weights"][kind.value]
    points = rule["points"]
    parts = []
    for side in SIDES[kind]:
        if side is Side.PUBLIC:
            mean = public_mean(rule, public or {})
            count = sum((public or {}).values()) if mean is not None else 0
        else:
            given = grades.get(side, [])
            count = len(given)
            mean = Fraction(sum(points[g.value] for g in given), count) if given else None
        parts.append(SideScore(side, int(weights[side.value]), count, mean))
    used = [p for p in parts if p.mean is not None and p.weight]
    decisive = next(p for p in parts if p.side is REQUIRED[kind])
    if decisive.mean is None or not used:
        return Combined(None, None, tuple(parts))
    total = sum(p.weight for p in used)
    score = sum((p.weight * p.mean for p in used), Fraction(0)) / total
    return Combined(grade_for(rule, score), score, tuple(parts))


@dataclass(frozen=True)
class Quarter:
    """A quarter of the campaign's calendar: its key (``2027Q1``) and first and last day."""

    key: str
    first: date
    last: date


def ended_quarter(quarter_starts: list[int], day: date) -> Quarter | None:
    """Return the quarter that ended just before a quarter-start month, or None otherwise.

    Quarters begin in the months ``quarter_starts`` (the campaign's calendar); the key counts
    them in the year the quarter began (the second start month of the year makes ``Q2``).
    """
    months = sorted(set(quarter_starts))
    if day.month not in months:
        return None
    i = months.index(day.month)
    prev = months[i - 1]
    year = day.year if prev < day.month else day.year - 1
    first = date(year, prev, 1)
    last = date(day.year, day.month, 1) - timedelta(days=1)
    return Quarter(f"{year}Q{months.index(prev) + 1}", first, last)


class Evaluation(SQLModel, table=True):
    """One subject's evaluation in one quarter: a member (with a published pledge) or an org.

    Attributes:
        quarter: the quarter evaluated (``2027Q1``).
        subject: ``m:<member id>`` or ``o:<org id>``, unique per campaign and quarter.
        result: the rule's outcome as data (parts, score, missing sides), kept when graded.
        rule: the grade rule as it was applied, printed with the result.
    """

    __table_args__ = (UniqueConstraint("campaign_id", "quarter", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    quarter: str = Field(max_length=8, index=True)
    subject: str = Field(max_length=24)
    owner_kind: OwnerKind = Field(sa_type=enum_type(OwnerKind, 8))
    org_id: int = Field(foreign_key="org.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    pledge_id: int | None = Field(default=None, foreign_key="pledge.id")
    status: EvalStatus = Field(default=EvalStatus.OPEN, sa_type=enum_type(EvalStatus, 8))
    grade: Grade | None = Field(default=None, sa_type=enum_type(Grade, 12))
    result: dict = Field(default_factory=dict, sa_column=Column(JsonColumn))
    rule: dict = Field(default_factory=dict, sa_column=Column(JsonColumn))
    opened_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    graded_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    follow_up: FollowUp | None = Field(default=None, sa_type=enum_type(FollowUp, 12))
    follow_up_by: int | None = Field(default=None, foreign_key="member.id")
    follow_up_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class Rating(SQLModel, table=True):
    """One rater asked to rate one evaluation from one side; ``grade`` is None until answered."""

    __table_args__ = (UniqueConstraint("evaluation_id", "rater_id", "side"),)

    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluation.id", index=True)
    rater_id: int = Field(foreign_key="member.id", index=True)
    side: Side = Field(sa_type=enum_type(Side, 12))
    grade: Grade | None = Field(default=None, sa_type=enum_type(Grade, 12))
    comment: str = Field(default="", max_length=200)
    asked_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    rated_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class PollStatus(StrEnum):
    """A public poll is open until the calendar closes it."""

    OPEN = "open"
    CLOSED = "closed"


class Poll(SQLModel, table=True):
    """A native poll in an organization's linked group (满意 / 基本满意 / 不满意, anonymous).

    Attributes:
        purpose: ``eval`` (the public side of a quarter's evaluation) or ``lookback``.
        period: the quarter (``2027Q1``) or the week (``2027W14``) the poll is about.
        message_id: the poll's message in the group, once delivered (to close it).
        platform_poll_id: the platform's id of the poll, to match its updates.
        totals: votes per option (``PublicVote`` values), from the last poll update seen.
        item_ids: for a look-back poll, the items it asks about.
    """

    __table_args__ = (
        UniqueConstraint("campaign_id", "purpose", "org_id", "period", "platform", "chat_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    purpose: str = Field(max_length=12)
    org_id: int = Field(foreign_key="org.id", index=True)
    period: str = Field(max_length=16)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    platform_poll_id: str | None = Field(default=None, max_length=128, index=True)
    totals: dict = Field(default_factory=dict, sa_column=Column(JsonColumn))
    item_ids: list[int] = Field(default_factory=list, sa_column=Column(JsonColumn))
    status: PollStatus = Field(default=PollStatus.OPEN, sa_type=enum_type(PollStatus, 8))
    opened_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    closes_at: datetime = Field(sa_column=Column(UtcDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
