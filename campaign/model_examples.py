"""S5 树立先进典型: candidates from the grades, a named model example and its cultivation plan.

A member or organization graded 优秀 in ``Campaign.model_quarters`` quarters becomes a candidate:
the campaign office above is told once. An office names the model example with its responsible
leader (from the roster) and a cultivation plan (培养计划: goal, measures, milestones by month),
which is then tracked like a pledge: a monthly prompt on the report day (one tap), one reminder,
the leader told of each month's report, and every step in the audit trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, outbox, people
from campaign.access import Actor
from campaign.fulfil import month_code, month_of
from models.base import utcnow
from models.callbacks import CallbackCodec, CallbackData
from models.campaign import Campaign
from models.dialog import Priority
from models.errors import DomainError
from models.evaluation import Evaluation, Grade
from models.model_example import ModelExample, ModelProgress
from models.org import Member, Org, Role
from models.pledge import OwnerKind
from models.progress import Progress
from models.reply import Button, Reply

GOAL_MAX = 500
MEASURES_MAX = 1000
MILESTONES_MAX = 12
_MILESTONE = re.compile(r"^\s*(\d{4})[-./年](\d{1,2})月?\s*[:：,，]?\s*(.+?)\s*$")


@dataclass(frozen=True)
class NameModelCb(CallbackData):
    """命名先进典型: start naming one candidate."""

    prefix = "mn"
    campaign_id: int
    kind: OwnerKind
    subject_id: int


@dataclass(frozen=True)
class ModelReportCb(CallbackData):
    """This month's progress of a cultivation plan, in one tap."""

    prefix = "mr"
    model_id: int
    month: int
    status: Progress


MODEL_TYPES: tuple[type[CallbackData], ...] = (NameModelCb, ModelReportCb)


def subject_key(kind: OwnerKind, subject_id: int) -> str:
    """Return the subject key shared with the evaluation (``m:<id>`` / ``o:<id>``)."""
    return f"{'m' if kind is OwnerKind.MEMBER else 'o'}:{subject_id}"


async def excellent_quarters(session: AsyncSession, campaign_id: int, subject: str) -> list[str]:
    """Return the quarters in which a subject was graded 优秀."""
    rows = await session.exec(
        select(Evaluation.quarter)
        .where(
            Evaluation.campaign_id == campaign_id,
            Evaluation.subject == subject,
            Evaluation.grade == Grade.EXCELLENT,
        )
        .order_by(col(Evaluation.quarter))
    )
    return list(rows.all())


async def _offices_over(session: AsyncSession, org: Org) -> list[int]:
    """Return the campaign office nearest above an organization (or at it)."""
    ids = [int(x) for x in org.path.strip("/").split("/") if x]
    for org_id in reversed(ids):
        found = await people.holders(session, Role.OFFICE, org_id)
        if found:
            return found
    return []


async def tell_candidates(session: AsyncSession, camp: Campaign, *, codec: CallbackCodec) -> int:
    """Tell the office once about each new candidate (优秀 in ``model_quarters`` quarters)."""
    rows = (
        await session.exec(
            select(Evaluation.subject, Evaluation.owner_kind, Evaluation.org_id)
            .where(Evaluation.campaign_id == camp.id, Evaluation.grade == Grade.EXCELLENT)
            .group_by(col(Evaluation.subject), col(Evaluation.owner_kind), col(Evaluation.org_id))
            .having(func.count() >= camp.model_quarters)
        )
    ).all()
    named = set(
        (
            await session.exec(
                select(ModelExample.subject).where(ModelExample.campaign_id == camp.id)
            )
        ).all()
    )
    count = 0
    for subject, kind, org_id in rows:
        if subject in named:
            continue
        org = await session.get(Org, org_id)
        subject_id = int(subject.split(":")[1])
        name = org.name
        if kind is OwnerKind.MEMBER:
            member = await session.get(Member, subject_id)
            name = member.name if member else ""
        card = Reply(
            "model.candidate",
            {
                "name": name,
                "org": org.name,
                "quarters": await excellent_quarters(session, camp.id, subject),
            },
            buttons=(
                (
                    Button(
                        "model.name_button",
                        codec.encode(NameModelCb(camp.id, kind, subject_id)),
                    ),
                ),
            ),
        )
        for member_id in await _offices_over(session, org):
            count += len(
                await outbox.notify_member(
                    session, member_id, card, key=f"model:{camp.id}:{subject}:cand:{member_id}"
                )
            )
    return count


async def _subject(session: AsyncSession, kind: OwnerKind, subject_id: int) -> tuple[Org, str]:
    if kind is OwnerKind.MEMBER:
        member = await session.get(Member, subject_id)
        if member is None:
            raise DomainError("error.forbidden")
        return await session.get(Org, member.org_id), member.name
    org = await session.get(Org, subject_id)
    if org is None:
        raise DomainError("error.forbidden")
    return org, org.name


async def check_may_name(
    session: AsyncSession, actor: Actor, campaign_id: int, kind: OwnerKind, subject_id: int
) -> str:
    """Return the candidate's name if the actor, an office above it, may name it now.

    Raises:
        DomainError: ``error.forbidden``, ``model.not_candidate`` or ``model.named_already``.
    """
    camp = await session.get(Campaign, campaign_id)
    if camp is None:
        raise DomainError("error.forbidden")
    org, name = await _subject(session, kind, subject_id)
    if not actor.is_office_over(org.path):
        raise DomainError("error.forbidden")
    subject = subject_key(kind, subject_id)
    if len(await excellent_quarters(session, camp.id, subject)) < camp.model_quarters:
        raise DomainError("model.not_candidate", name=name, quarters=camp.model_quarters)
    exists = (
        await session.exec(
            select(ModelExample.id).where(
                ModelExample.campaign_id == camp.id, ModelExample.subject == subject
            )
        )
    ).first()
    if exists is not None:
        raise DomainError("model.named_already", name=name)
    return name


async def leader_by_phone(session: AsyncSession, phone: str) -> Member:
    """Return the responsible leader named by mobile number (on the roster, active).

    Raises:
        DomainError: ``model.no_leader``.
    """
    phone = re.sub(r"\D", "", phone or "")[-11:]
    member = (await session.exec(select(Member).where(Member.phone == phone))).first()
    if member is None or not member.active:
        raise DomainError("model.no_leader", phone=phone)
    return member


def parse_milestones(text: str) -> list[dict]:
    """Return the milestones typed one a line as ``2027-09 完成…``.

    Raises:
        DomainError: ``model.bad_milestone`` naming the line, ``model.no_milestones``.
    """
    out = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        m = _MILESTONE.match(line)
        if m is None or not 1 <= int(m.group(2)) <= 12:
            raise DomainError("model.bad_milestone", line=line.strip()[:40])
        out.append({"month": f"{int(m.group(1)):04d}-{int(m.group(2)):02d}", "text": m.group(3)})
    if not out:
        raise DomainError("model.no_milestones")
    if len(out) > MILESTONES_MAX:
        raise DomainError("error.too_long", limit=MILESTONES_MAX)
    return sorted(out, key=lambda x: x["month"])


async def name_model(
    session: AsyncSession,
    actor: Actor,
    campaign_id: int,
    kind: OwnerKind,
    subject_id: int,
    *,
    leader_id: int,
    goal: str,
    measures: str,
    milestones: list[dict],
) -> ModelExample:
    """Name a model example with its leader and cultivation plan; tell them both.

    Raises:
        DomainError: as ``check_may_name``; ``model.goal_required``; ``error.too_long``.
    """
    name = await check_may_name(session, actor, campaign_id, kind, subject_id)
    goal, measures = goal.strip(), measures.strip()
    if not goal or not measures:
        raise DomainError("model.goal_required")
    if len(goal) > GOAL_MAX or len(measures) > MEASURES_MAX:
        raise DomainError("error.too_long", limit=MEASURES_MAX)
    org, _ = await _subject(session, kind, subject_id)
    model = ModelExample(
        campaign_id=campaign_id,
        subject=subject_key(kind, subject_id),
        owner_kind=kind,
        org_id=org.id,
        member_id=subject_id if kind is OwnerKind.MEMBER else None,
        leader_id=leader_id,
        goal=goal,
        measures=measures,
        milestones=milestones,
        named_by=actor.member_id,
    )
    session.add(model)
    await session.flush()
    await audit.record(
        session,
        "model.named",
        actor=actor.member_id,
        subject=model.subject,
        payload={
            "model": model.id,
            "leader": leader_id,
            "goal": goal,
            "measures": measures,
            "milestones": milestones,
        },
    )
    ctx = await model_context(session, model)
    for member_id in {*await reporters(session, model), leader_id}:
        await outbox.notify_member(
            session,
            member_id,
            Reply("model.named_notice", {**ctx, "name": name}),
            key=f"model:{model.id}:named:{member_id}",
        )
    return model


async def reporters(session: AsyncSession, model: ModelExample) -> list[int]:
    """Return who reports a plan's progress: the member, or the organization's secretaries."""
    if model.member_id is not None:
        return [model.member_id]
    return await people.secretaries(session, model.org_id)


async def model_context(session: AsyncSession, model: ModelExample) -> dict:
    """Return what the plan's messages show: subject, leader, goal, measures, milestones."""
    org = await session.get(Org, model.org_id)
    leader = await session.get(Member, model.leader_id)
    name = org.name if org else ""
    if model.member_id is not None:
        member = await session.get(Member, model.member_id)
        name = member.name if member else ""
    return {
        "id": model.id,
        "name": name,
        "org": org.name if org else "",
        "leader": leader.name if leader else "",
        "goal": model.goal,
        "measures": model.measures,
        "milestones": model.milestones,
    }


async def prompt(
    session: AsyncSession, camp: Campaign, month: str, *, codec: CallbackCodec, kind: str
) -> int:
    """Ask each plan's reporters for the month's progress, or remind once who has not reported.

    ``kind`` is ``prompt`` (the report day) or ``reminder`` (the reminder day).
    """
    models = (
        await session.exec(select(ModelExample).where(ModelExample.campaign_id == camp.id))
    ).all()
    count = 0
    for model in models:
        done = (
            await session.exec(
                select(ModelProgress.id).where(
                    ModelProgress.model_id == model.id, ModelProgress.month == month
                )
            )
        ).first()
        if done is not None:
            continue
        ctx = {
            **await model_context(session, model),
            "month": month,
            "due": [m for m in model.milestones if m["month"] == month],
            "reminder": kind == "reminder",
        }
        buttons = (
            tuple(
                Button(
                    f"model.progress.{s.value}",
                    codec.encode(ModelReportCb(model.id, month_code(month), s)),
                )
                for s in (Progress.ON_TRACK, Progress.DONE, Progress.BLOCKED)
            ),
        )
        for member_id in await reporters(session, model):
            count += len(
                await outbox.notify_member(
                    session,
                    member_id,
                    Reply("model.prompt", ctx, buttons=buttons),
                    key=f"model:{model.id}:{month}:{kind}:{member_id}",
                    priority=Priority.BROADCAST,
                )
            )
    return count


async def report(
    session: AsyncSession,
    actor: Actor,
    model_id: int,
    month: str,
    status: Progress,
    *,
    today: date,
) -> ModelProgress:
    """Keep the month's progress of a plan (revisable that month) and tell its leader once.

    Raises:
        DomainError: ``error.forbidden`` for someone else's plan, ``error.stale_card`` for a
            month that is over.
    """
    model = await session.get(ModelExample, model_id)
    if model is None or actor.member_id not in await reporters(session, model):
        raise DomainError("error.forbidden")
    if month != month_of(today):
        raise DomainError("error.stale_card")
    row = (
        await session.exec(
            select(ModelProgress).where(
                ModelProgress.model_id == model.id, ModelProgress.month == month
            )
        )
    ).first()
    if row is None:
        row = ModelProgress(
            model_id=model.id, month=month, status=status, reported_by=actor.member_id
        )
    row.status = status
    row.reported_by = actor.member_id
    row.reported_at = utcnow()
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        "model.progress",
        actor=actor.member_id,
        subject=model.subject,
        payload={"model": model.id, "month": month, "status": status.value},
    )
    ctx = {**await model_context(session, model), "month": month, "status": status.value}
    await outbox.notify_member(
        session,
        model.leader_id,
        Reply("model.leader_notice", ctx),
        key=f"model:{model.id}:{month}:leader",
    )
    return row


async def ledger(session: AsyncSession, model_id: int) -> dict:
    """Return a plan with its months (the model example's 台账)."""
    model = await session.get(ModelExample, model_id)
    rows = (
        await session.exec(
            select(ModelProgress)
            .where(ModelProgress.model_id == model_id)
            .order_by(col(ModelProgress.month))
        )
    ).all()
    return {
        **await model_context(session, model),
        "months": {r.month: r.status.value for r in rows},
    }


async def ledgers_for(session: AsyncSession, actor: Actor, *, limit: int = 20) -> tuple[list, int]:
    """Return the model examples' ledgers an actor may see, and how many there are in all.

    An office sees the model examples of its organization and below, a secretary those of
    their branch (its members and the branch itself), anyone the plans they lead or are the
    subject of. Each ledger is the plan with its months (``ledger``), in naming order.
    """
    rows = (
        await session.exec(
            select(ModelExample, Org)
            .join(Org, col(Org.id) == ModelExample.org_id)
            .order_by(col(ModelExample.id))
        )
    ).all()
    visible = [
        model
        for model, org in rows
        if actor.is_office_over(org.path)
        or actor.is_secretary_of(org.id)
        or actor.member_id in (model.leader_id, model.member_id)
    ]
    return [await ledger(session, m.id) for m in visible[:limit]], len(visible)
