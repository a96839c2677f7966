"""Who may do what: roles come from the roster and the organization tree, never from input."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.org import Member, Org, Role, RoleGrant
from models.pledge import OwnerKind, Pledge


class Action(StrEnum):
    """Things a person may ask the bot to do."""

    PLEDGE = "pledge"
    MINE = "mine"
    PUBLIC = "public"
    REPORT = "report"
    REVIEW = "review"
    BIND_GROUP = "bindgroup"
    SUMMARY = "summary"
    LEDGER = "ledger"
    EVALUATE = "evaluate"
    EXPORT = "export"
    CHART = "chart"
    SPOTCHECK = "spotcheck"
    SELFCHECK = "selfcheck"
    MODELS = "models"
    NOTICE = "notice"
    NOTICES = "notices"


@dataclass(frozen=True)
class Grant:
    """One role over one organization, with that organization's materialized path."""

    role: Role
    org_id: int
    org_path: str


@dataclass(frozen=True)
class Actor:
    """A bound person with their grants, as every campaign function receives them."""

    member_id: int
    org_id: int
    org_path: str
    name: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    def has(self, role: Role) -> bool:
        """Tell whether the person holds ``role`` anywhere."""
        return any(g.role is role for g in self.grants)

    def orgs_with(self, role: Role) -> list[int]:
        """Return the organizations over which the person holds ``role``."""
        return [g.org_id for g in self.grants if g.role is role]

    def is_secretary_of(self, org_id: int) -> bool:
        """Tell whether the person is secretary of that very organization."""
        return any(g.role is Role.SECRETARY and g.org_id == org_id for g in self.grants)

    def is_office_over(self, org_path: str) -> bool:
        """Tell whether the person is the campaign office of that organization or above it."""
        return any(g.role is Role.OFFICE and org_path.startswith(g.org_path) for g in self.grants)

    def reviews_children_of(self, parent_id: int | None) -> bool:
        """Tell whether the person reviews the organizations directly below ``parent_id``."""
        return parent_id is not None and any(
            g.role is Role.REVIEWER and g.org_id == parent_id for g in self.grants
        )

    @property
    def is_party_member(self) -> bool:
        """Tell whether the person pledges as a Party member (an 评议员 alone does not)."""
        return any(g.role is not Role.EVALUATOR for g in self.grants)

    def may(self, action: Action) -> bool:
        """Tell whether any of the person's roles allows ``action`` at all (for menus)."""
        return action in allowed_actions(self)


def allowed_actions(actor: Actor | None) -> list[Action]:
    """Return the actions a person's roles allow, in menu order."""
    if actor is None:
        return []
    if actor.is_party_member:
        out = [Action.PLEDGE, Action.MINE, Action.PUBLIC, Action.REPORT]
    else:
        out = [Action.PUBLIC]  # an 评议员 from outside the Party rates pledges, makes none
    if actor.has(Role.SECRETARY) or actor.has(Role.REVIEWER):
        out.append(Action.REVIEW)
    if actor.has(Role.SECRETARY) or actor.has(Role.REVIEWER) or actor.has(Role.OFFICE):
        out.append(Action.SUMMARY)
    if actor.has(Role.SECRETARY) or actor.has(Role.REVIEWER) or actor.has(Role.OFFICE):
        out.append(Action.LEDGER)
    if actor.has(Role.SECRETARY) or actor.has(Role.OFFICE):
        out.append(Action.BIND_GROUP)
    if actor.has(Role.EVALUATOR):
        out.append(Action.EVALUATE)
    overseer = any(actor.has(r) for r in (Role.SECRETARY, Role.REVIEWER, Role.OFFICE))
    if actor.is_party_member or overseer:  # a member exports their own form 2; 评议员 none
        out.append(Action.EXPORT)
    if actor.has(Role.REVIEWER) or actor.has(Role.OFFICE):
        out.append(Action.CHART)
    if actor.has(Role.OFFICE):
        out.append(Action.SPOTCHECK)
    if actor.has(Role.SECRETARY):
        out.append(Action.SELFCHECK)
    if actor.has(Role.SECRETARY) or actor.has(Role.OFFICE):
        out.append(Action.MODELS)
    if overseer:  # a notice (公告) to one's own subtree
        out += [Action.NOTICE, Action.NOTICES]
    return out


async def load_actor(session: AsyncSession, member_id: int) -> Actor | None:
    """Load a member and their grants, or None if they are unknown or inactive."""
    member = await session.get(Member, member_id)
    if member is None or not member.active:
        return None
    org = await session.get(Org, member.org_id)
    rows = (
        await session.exec(
            select(RoleGrant.role, RoleGrant.org_id, Org.path)
            .join(Org, col(Org.id) == RoleGrant.org_id)
            .where(RoleGrant.member_id == member_id)
        )
    ).all()
    return Actor(
        member_id=member_id,
        org_id=member.org_id,
        org_path=org.path if org else "",
        name=member.name,
        grants=tuple(Grant(Role(role), org_id, path) for role, org_id, path in rows),
    )


# -- who may link a group chat as an organization's display group --------------------------------


def may_administer_chat(is_chat_admin: bool | None) -> bool:
    """Tell whether the platform lets the sender manage the group's link.

    Where the platform can say who administers the group, only its administrators may link or
    unlink it; where it cannot say (None), the roles alone decide.
    """
    return is_chat_admin is not False


def linkable_orgs(actor: Actor) -> list[int]:
    """Return the organizations whose display group the actor may link: as secretary or office."""
    ids = actor.orgs_with(Role.SECRETARY) + actor.orgs_with(Role.OFFICE)
    return list(dict.fromkeys(ids))


def may_link_group(actor: Actor, org_id: int, org_path: str, linked: Org | None) -> bool:
    """Tell whether the actor may make a group the display group of organization ``org_id``.

    A group already linked to another organization moves only at the word of the 创先办 of an
    organization above both (the same organization counts as above itself).
    """
    if org_id not in linkable_orgs(actor):
        return False
    if linked is None or linked.id == org_id:
        return True
    return any(
        g.role is Role.OFFICE
        and linked.path.startswith(g.org_path)
        and org_path.startswith(g.org_path)
        for g in actor.grants
    )


def may_unlink_group(actor: Actor, linked: Org) -> bool:
    """Tell whether the actor may unlink a group: the linked organization's secretary or office."""
    return actor.is_secretary_of(linked.id) or actor.is_office_over(linked.path)


# -- who may do what to a pledge: checked inside every campaign function --------------------------


def may_draft(actor: Actor, pledge: Pledge) -> bool:
    """Tell whether the actor answers for a pledge: its member, or its organization's secretary.

    The same people draft it, revise it and report its progress.
    """
    if pledge.owner_kind is OwnerKind.MEMBER:
        return pledge.owner_member_id == actor.member_id
    return actor.is_secretary_of(pledge.org_id)


def may_decide(actor: Actor, pledge: Pledge) -> bool:
    """Tell whether the actor is among those the pledge was routed to (and not its owner)."""
    if pledge.review_org_id is None or actor.member_id in (
        pledge.owner_member_id,
        pledge.drafted_by,
    ):
        return False
    role = Role(pledge.review_role)
    return any(g.role is role and g.org_id == pledge.review_org_id for g in actor.grants)


def oversees_from_above(actor: Actor, org: Org) -> bool:
    """Tell whether the actor sees an organization from a level above: office or reviewer.

    An office sees its own organization and everything below it; a reviewer everything
    strictly below its organization.
    """
    for g in actor.grants:
        if g.role is Role.OFFICE and org.path.startswith(g.org_path):
            return True
        if g.role is Role.REVIEWER and org.path.startswith(g.org_path) and g.org_id != org.id:
            return True
    return False


def may_see_org(actor: Actor, org: Org) -> bool:
    """Tell whether the actor may open an organization's 台账: its secretary, or from above."""
    return actor.is_secretary_of(org.id) or oversees_from_above(actor, org)


async def may_supervise(session: AsyncSession, actor: Actor, pledge: Pledge) -> bool:
    """Tell whether the actor oversees a pledge: its branch's secretary, or a level above."""
    if pledge.owner_kind is OwnerKind.MEMBER and actor.is_secretary_of(pledge.org_id):
        return True
    org = await session.get(Org, pledge.org_id)
    return org is not None and oversees_from_above(actor, org)


# -- who may see which documents: the policy of /summary ---------------------------------------


def oversight_orgs(actor: Actor) -> list[int]:
    """Return the organizations whose figures and forms the actor may see, in grant order.

    A secretary sees their branch; a reviewer or a campaign office their level and below.
    """
    roles = (Role.SECRETARY, Role.REVIEWER, Role.OFFICE)
    return list(dict.fromkeys(g.org_id for g in actor.grants if g.role in roles))


def may_oversee(actor: Actor, org: Org) -> bool:
    """Tell whether the actor may see an organization's figures and forms (as in /summary)."""
    for g in actor.grants:
        if g.role is Role.SECRETARY and g.org_id == org.id:
            return True
        if g.role in (Role.REVIEWER, Role.OFFICE) and org.path.startswith(g.org_path):
            return True
    return False


def may_export(actor: Actor, org: Org, form: int) -> bool:
    """Tell whether the actor may export attachment ``form`` of ``org``.

    Whoever oversees the organization gets every form; a member gets their own form 2 (the
    forms are then limited to their own pledge).
    """
    if may_oversee(actor, org):
        return True
    return form == 2 and org.id == actor.org_id
