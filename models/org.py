"""The organization tree, the people on the roster, their roles and their chat accounts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import UtcDateTime, enum_type, utcnow


class OrgType(StrEnum):
    """Type of an organization, as the roster's 组织类型 column names it."""

    VILLAGE = "village"
    COMMUNITY = "community"
    ENTERPRISE = "enterprise"
    ORGAN = "organ"
    INSTITUTION = "institution"
    SCHOOL = "school"
    PRIVATE_ENTERPRISE = "private_enterprise"
    SOCIAL = "social"
    OTHER = "other"
    #: an inner node of the tree (city, county, township): not a roster type
    LEVEL = "level"


class Category(StrEnum):
    """A member's category (类别), which decides what their pledge is about (SPEC S2)."""

    RURAL = "rural"
    COMMUNITY = "community"
    ENTERPRISE = "enterprise"
    ORGAN = "organ"
    WINDOW = "window"


class Role(StrEnum):
    """A role granted by the roster, scoped to one organization (SPEC: who uses it)."""

    MEMBER = "member"
    SECRETARY = "secretary"
    REVIEWER = "reviewer"
    OFFICE = "office"
    EVALUATOR = "evaluator"


def formal_name(full_name: str) -> str:
    """Return a roster path as the organization's formal name: 武都区城关镇东江村党支部.

    Formal texts within one city name a unit by its county, township and own name, with no
    separators; the city itself is left out below the county level, and a level the unit's own
    name already holds is not said twice.
    """
    out: list[str] = []
    for part in (p for p in full_name.split("/") if p):
        while out and part.startswith(out[-1]):
            out.pop()  # 武都区第一中学党支部 already names its county
        out.append(part)
    return "".join(out[1:] if len(out) > 2 else out)


class Org(SQLModel, table=True):
    """An organization: a node of the tree from the city down to the branches.

    Attributes:
        path: materialized path of ids, ``/1/4/17/``, so a subtree is one ``LIKE`` query.
        full_name: the roster path of names, ``陇南市/武都区/城关镇/东江村党支部``, unique.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    full_name: str = Field(max_length=1024, unique=True)
    type: OrgType = Field(default=OrgType.LEVEL, sa_type=enum_type(OrgType, 24))
    parent_id: int | None = Field(default=None, foreign_key="org.id", index=True)
    path: str = Field(default="", max_length=512, index=True)
    depth: int = 0


class Channel(StrEnum):
    """How a person is reached (通知方式): chosen by the person (/channel) or the office (roster).

    ``auto``: Telegram when bound, else SMS. ``telegram``: bound accounts only, never SMS.
    ``sms``: SMS only. ``group``: the office reaches them in its own group (微信群): no SMS.
    ``none``: opted out (退订, TD): no notices by any channel.
    """

    AUTO = "auto"
    TELEGRAM = "telegram"
    SMS = "sms"
    GROUP = "group"
    NONE = "none"


class ChannelBy(StrEnum):
    """Who set a person's channel: nobody (the default), the office's roster, the person."""

    DEFAULT = ""
    OFFICE = "office"
    PERSON = "person"


class Member(SQLModel, table=True):
    """A person on the roster, matched by mobile number.

    ``channel`` is how notices reach them; a choice of the person (``channel_by`` person, an
    opt-out included) outlives re-imports of the roster, the office's does not.
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    phone: str = Field(max_length=11, unique=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    category: Category | None = Field(default=None, sa_type=enum_type(Category))
    post: str = Field(default="", max_length=128)
    rank: str = Field(default="", max_length=32)
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    channel: Channel = Field(default=Channel.AUTO, sa_type=enum_type(Channel, 8))
    channel_by: ChannelBy = Field(default=ChannelBy.DEFAULT, sa_type=enum_type(ChannelBy, 8))


class RoleGrant(SQLModel, table=True):
    """One role of one member, over one organization (and, for some roles, its subtree)."""

    __table_args__ = (UniqueConstraint("member_id", "role", "org_id"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    role: Role = Field(sa_type=enum_type(Role))
    org_id: int = Field(foreign_key="org.id", index=True)


class Account(SQLModel, table=True):
    """A platform identity bound to a member: a Telegram user, a phone for SMS, a console seat.

    One row per platform identity. A member has at most one active account per platform (a
    partial unique index); a binding that ends keeps its row, inactive, with when and why.
    """

    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index(
            "ux_account_member_platform_active",
            "member_id",
            "platform",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    locale: str = Field(default="zh_CN", max_length=8)
    active: bool = True
    bound_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    #: why the binding ended: ``moved`` (the person bound another account), ``unbound`` or
    #: ``replaced`` (by the office, from the command line)
    end_reason: str = Field(default="", max_length=16)


class Invite(SQLModel, table=True):
    """A one-time deep-link token that binds whoever opens it to one member.

    It works once, until ``expires_at``, and only while unrevoked: every unused invite of a
    person is revoked (kept, not deleted) the moment that person binds by any route.
    """

    token: str = Field(primary_key=True, max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    used_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    used_by_account_id: int | None = Field(default=None, foreign_key="account.id")
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    #: ``bound`` (the person bound), ``reissued`` (a newer invite), ``unbound`` (the office)
    revoke_reason: str = Field(default="", max_length=16)


class GroupLink(SQLModel, table=True):
    """A group chat linked to an organization as its publication channel (/bindgroup)."""

    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    org_id: int = Field(foreign_key="org.id", index=True)
    title: str = Field(default="", max_length=256)
    #: who linked it (None: the office's command line, ``pledgebot group add``)
    linked_by: int | None = Field(default=None, foreign_key="member.id")
    linked_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


Index("ix_rolegrant_role_org", RoleGrant.role, RoleGrant.org_id)
