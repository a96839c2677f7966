"""Pledges and their items, reviews, and the pledge state machine as a table.

The diagram beside this file (``pledge.mmd``) draws the same table.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, enum_type, utcnow
from models.errors import DomainError


class OwnerKind(StrEnum):
    """Whose pledge: a member's own (attachment 2) or an organization's (attachment 1)."""

    MEMBER = "member"
    ORG = "org"


class PledgeStatus(StrEnum):
    """Where a pledge stands in the loop of S2–S4."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"
    PUBLISHED = "published"


class PledgeEvent(StrEnum):
    """What can happen to a pledge."""

    SUBMIT = "submit"
    APPROVE = "approve"
    RETURN = "return"
    REVISE = "revise"
    PUBLISH = "publish"


#: (state, event) -> next state. Anything not in the table is refused.
TRANSITIONS: dict[tuple[PledgeStatus, PledgeEvent], PledgeStatus] = {
    (PledgeStatus.DRAFT, PledgeEvent.SUBMIT): PledgeStatus.SUBMITTED,
    (PledgeStatus.SUBMITTED, PledgeEvent.APPROVE): PledgeStatus.APPROVED,
    (PledgeStatus.SUBMITTED, PledgeEvent.RETURN): PledgeStatus.RETURNED,
    (PledgeStatus.RETURNED, PledgeEvent.REVISE): PledgeStatus.DRAFT,
    (PledgeStatus.APPROVED, PledgeEvent.PUBLISH): PledgeStatus.PUBLISHED,
}


def apply(state: PledgeStatus, event: PledgeEvent) -> PledgeStatus:
    """Return the state after ``event``, or raise if the table does not allow it.

    Raises:
        DomainError: with key ``error.pledge_wrong_state``.
    """
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise DomainError(
            "error.pledge_wrong_state", state=state.value, event=event.value
        ) from None


class Pledge(SQLModel, table=True):
    """A pledge (公开承诺) of a member or an organization in one campaign.

    Attributes:
        version: bumped on every change; review cards carry it so a stale card is refused.
    """

    __table_args__ = (
        CheckConstraint(
            "(owner_kind = 'member' AND owner_member_id IS NOT NULL)"
            " OR (owner_kind = 'org' AND owner_member_id IS NULL)",
            name="ck_pledge_owner",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    owner_kind: OwnerKind = Field(sa_type=enum_type(OwnerKind, 8))
    org_id: int = Field(foreign_key="org.id", index=True)
    owner_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    drafted_by: int = Field(foreign_key="member.id")
    status: PledgeStatus = Field(
        default=PledgeStatus.DRAFT, sa_type=enum_type(PledgeStatus), index=True
    )
    version: int = 1
    category: str | None = Field(default=None, max_length=16)
    post: str = Field(default="", max_length=128)
    #: where the review was routed at submission: whose reviewers decide, and as which role
    review_org_id: int | None = Field(default=None, foreign_key="org.id", index=True)
    review_role: str | None = Field(default=None, max_length=16)
    #: when the pledge reached its current reviewers (a review timeout counts from here)
    routed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    published_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class PledgeSnapshot(SQLModel, table=True):
    """The pledge exactly as submitted in one version: what reviewers saw and decided on."""

    __table_args__ = (UniqueConstraint("pledge_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    version: int
    items: list[dict] = Field(default_factory=list, sa_column=Column(JsonColumn))
    findings: list[dict] = Field(default_factory=list, sa_column=Column(JsonColumn))
    content_hash: str = Field(max_length=64)
    submitted_by: int = Field(foreign_key="member.id")
    submitted_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class PeerRequest(SQLModel, table=True):
    """A member asked for their opinion on a branch-mate's pledge (党员互审)."""

    __table_args__ = (UniqueConstraint("pledge_id", "version", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    version: int
    member_id: int = Field(foreign_key="member.id", index=True)
    asked_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))


class PledgeItem(SQLModel, table=True):
    """One item (承诺事项): content, goal, measures, deadline (Q4 操作性).

    Attributes:
        standing: a standing duty of the basic pledge (到村坐班, 公开村务, 公示电话), kept
            长期 instead of by a deadline; it has no deadline and is never overdue.
    """

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    seq: int = 0
    content: str = Field(default="", max_length=2000)
    goal: str = Field(default="", max_length=1000)
    measures: str = Field(default="", max_length=2000)
    deadline: date | None = None
    vanguard: str | None = Field(default=None, max_length=16)
    basic: bool = False
    standing: bool = False
    opinion_ids: list[int] = Field(default_factory=list, sa_column=Column(JsonColumn))
    done_on: date | None = None


class Review(SQLModel, table=True):
    """A decision or an opinion on one version of a pledge."""

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    pledge_version: int
    reviewer_id: int = Field(foreign_key="member.id", index=True)
    kind: str = Field(max_length=16)
    decision: str | None = Field(default=None, max_length=16)
    opinion: str = Field(default="", max_length=2000)
    criteria: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn))
    decided_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class ReviewChecklist(SQLModel, table=True):
    """The criteria one reviewer has ticked so far on one version's card (S3's five)."""

    __table_args__ = (UniqueConstraint("pledge_id", "version", "reviewer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    version: int
    reviewer_id: int = Field(foreign_key="member.id")
    criteria: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn))


class Criterion(StrEnum):
    """The five review criteria of S3 (审诺标准)."""

    SCIENTIFIC = "sci"
    ADVANCED = "adv"
    USEFUL = "use"
    POST = "post"
    PUBLIC = "pub"


class Verdict(StrEnum):
    """A reviewer's decision, or a peer's opinion."""

    APPROVE = "ok"
    RETURN = "back"
    AGREE = "agree"
    SUGGEST = "suggest"
