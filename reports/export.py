"""One entry point for the seven attachments: which forms a person may get, and the file.

Access follows /summary (``campaign.access``): a secretary exports their branch, a reviewer or
a campaign office their level's subtree, and a member only their own application form (2).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import access
from campaign.access import Actor
from campaign.documents import GRADES_FORM, Made
from campaign.fulfil import month_of
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Member, Org
from models.pledge import OwnerKind, Pledge, PledgeStatus
from reports import forms, grades, ledger, monthly
from reports.common import FORMS, Labels, file_name


async def _pledges_for_form(
    session: AsyncSession, campaign: Campaign, org: Org, form: int, actor: Actor | None
) -> list[Pledge]:
    kind = OwnerKind.ORG if form == 1 else OwnerKind.MEMBER
    query = select(Pledge).where(
        Pledge.campaign_id == campaign.id,
        Pledge.owner_kind == kind,
        Pledge.status != PledgeStatus.DRAFT,
    )
    if actor is not None and form == 2 and not access.may_oversee(actor, org):
        query = query.where(Pledge.owner_member_id == actor.member_id)
    else:
        query = query.join(Org, col(Org.id) == Pledge.org_id).where(
            col(Org.path).startswith(org.path)
        )
    rows = (await session.exec(query.order_by(col(Pledge.org_id), col(Pledge.id)))).all()
    return list(rows)


async def build(
    session: AsyncSession,
    campaign: Campaign,
    org: Org,
    form: int,
    *,
    today: date,
    now: datetime,
    locale: str,
    month: str | None = None,
    actor: Actor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Made | None:
    """Build attachment ``form`` of an organization (and its subtree); None when it is empty.

    ``actor`` is None for the command line (the operator has the database); otherwise the
    access policy decides.

    Raises:
        DomainError: ``error.forbidden`` when the actor may not export this form here.
    """
    if form == GRADES_FORM:
        return await _grades(
            session, campaign, org, today=today, now=now, locale=locale, actor=actor
        )
    if form not in FORMS:
        raise DomainError("error.forbidden")
    if actor is not None and not access.may_export(actor, org, form):
        raise DomainError("error.forbidden")
    t = Labels(locale)
    month = month or month_of(today)
    period = month if form == 5 else today.isoformat()
    rows = 0
    if form in (3, 4):
        data, rows = await ledger.ledger_xlsx(
            session, campaign, org, form, today=today, now=now, locale=locale, progress=progress
        )
    elif form == 5:
        data, summary = await monthly.monthly_xlsx(
            session, campaign, org, month, today=today, now=now, locale=locale
        )
        rows = summary["figures"]["items"]
    elif form in (6, 7):
        data, rows = await forms.display_docx(
            session, campaign, org, form, today=today, now=now, locale=locale
        )
    else:
        pledges = await _pledges_for_form(session, campaign, org, form, actor)
        if not pledges:
            return None
        rows = len(pledges)
        data = await forms.application_docx(session, campaign, pledges, locale=locale)
        owner = actor.name if actor is not None and form == 2 and rows == 1 else org.name
        if rows == 1 and form == 2 and pledges[0].owner_member_id:
            member = await session.get(Member, pledges[0].owner_member_id)
            owner = member.name if member else owner
        name = file_name(t, form, org=org.name, owner=owner)
        return Made(form, name, data, org.name, period, rows)
    if not rows:
        return None
    name = file_name(t, form, org=org.name, period=period)
    return Made(form, name, data, org.name, period, rows)


async def _grades(
    session: AsyncSession,
    campaign: Campaign,
    org: Org,
    *,
    today: date,
    now: datetime,
    locale: str,
    actor: Actor | None,
) -> Made | None:
    """Return the year's grades of a subtree's members (民主评议党员), or None if none yet."""
    if actor is not None and not access.may_oversee(actor, org):
        raise DomainError("error.forbidden")
    data, rows = await grades.grades_xlsx(
        session, campaign, org, today=today, now=now, locale=locale
    )
    if not rows:
        return None
    t = Labels(locale)
    period = t("eval_form.year", y=campaign.year)
    name = file_name(t, GRADES_FORM, org=org.name, period=period)
    return Made(GRADES_FORM, name, data, org.name, period, rows)
