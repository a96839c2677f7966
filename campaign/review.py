"""S3 科学审承诺: route a submitted pledge up the tree, ask peers, decide, refresh every card.

"上一级党组织审核基层党组织、基层党组织审核党员个人、党员与党员之间互相审核": a member's pledge
goes to their organization's secretary, an organization's pledge to the reviewers (审核人) of the
organization above. When nobody holds that role, the card goes one level further up and the
campaign office of that subtree is told. Two or three branch-mates give advisory opinions.
A decision is taken once: the pledge row is updated only if it is still the submitted version
the card showed, so of many simultaneous presses exactly one wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import access, audit, cards, outbox, people, propose, publish, quality
from campaign.access import Actor
from models.base import utcnow
from models.callbacks import CallbackCodec
from models.dialog import Outbox, OutboxStatus, Priority
from models.errors import DomainError
from models.org import Account, Member, Org, Role, RoleGrant
from models.pledge import (
    Criterion,
    OwnerKind,
    PeerRequest,
    Pledge,
    PledgeEvent,
    PledgeSnapshot,
    PledgeStatus,
    Review,
    ReviewChecklist,
    Verdict,
    apply,
)
from models.reply import Reply

PEERS_MIN = 2
PEERS_MAX = 3
REASON_MIN_CHARS = cards.REASON_MIN_CHARS
ALL_CRITERIA = [c.value for c in Criterion]


@dataclass(frozen=True)
class Routing:
    """Who decides a pledge: the holders of ``role`` at ``org_id``; whom to tell if escalated."""

    org_id: int
    role: Role
    reviewers: tuple[int, ...]
    escalated: bool
    office: tuple[int, ...] = ()


async def _ancestors(session: AsyncSession, org: Org) -> list[Org]:
    ids = [int(x) for x in org.path.strip("/").split("/") if x]
    rows = (await session.exec(select(Org).where(col(Org.id).in_(ids)))).all()
    by_id = {o.id: o for o in rows}
    return [by_id[i] for i in reversed(ids) if i in by_id]  # nearest first, self included


async def route(session: AsyncSession, pledge: Pledge) -> Routing:
    """Return who reviews the pledge, climbing the tree past levels with nobody in the role.

    Raises:
        DomainError: ``review.nobody`` when nobody up to the top can review it.
    """
    org = await session.get(Org, pledge.org_id)
    chain = await _ancestors(session, org)  # [org, parent, grandparent, ...]
    exclude = {pledge.owner_member_id} if pledge.owner_member_id else set()
    exclude.add(pledge.drafted_by)
    first: tuple[Role, int] | None = None
    steps: list[tuple[Role, Org]] = []
    if pledge.owner_kind is OwnerKind.MEMBER:
        steps.append((Role.SECRETARY, chain[0]))
    # Reviewers of the organization above, then further up.
    steps += [(Role.REVIEWER, o) for o in chain[1:]]
    for role, level in steps:
        if first is None:
            first = (role, level.id)
        found = await people.holders(session, role, level.id, exclude)
        if found:
            escalated = (role, level.id) != first
            office: list[int] = []
            if escalated:
                for anc in chain:
                    office = await people.holders(session, Role.OFFICE, anc.id, set())
                    if office:
                        break
            return Routing(level.id, role, tuple(found), escalated, tuple(office))
    raise DomainError("review.nobody")


async def _choose_peers(session: AsyncSession, pledge: Pledge, skip: set[int]) -> list[int]:
    """Pick two or three branch-mates to give their opinion on a pledge."""
    return await pick_branch_mates(session, pledge.org_id, str(pledge.id), skip)


async def pick_branch_mates(
    session: AsyncSession,
    org_id: int,
    seed: str,
    skip: set[int],
    *,
    load: dict[int, int] | None = None,
) -> list[int]:
    """Pick two or three bound branch-mates, those asked least often first (fair by construction).

    Args:
        session: the caller's transaction.
        org_id: the branch whose members are picked.
        skip: members never picked (the pledge's owner, its drafter).
        seed: what the choice is for; ties are broken by a hash of (seed, member), so no one
            is always first among equals.
        load: how often each member was asked already, when not counted by peer requests
            (the quarterly evaluation balances the ratings it assigns in one quarter).
    """
    bound = (
        select(Account.member_id)
        .where(Account.active == True)  # noqa: E712
        .distinct()
        .subquery()
    )
    asked = (
        select(PeerRequest.member_id, func.count().label("n"))
        .group_by(col(PeerRequest.member_id))
        .subquery()
    )
    rows = (
        await session.exec(
            select(Member.id, func.coalesce(asked.c.n, 0))
            .join(bound, bound.c.member_id == Member.id)
            .outerjoin(asked, asked.c.member_id == Member.id)
            .join(RoleGrant, col(RoleGrant.member_id) == Member.id)
            .where(
                Member.org_id == org_id,
                Member.active == True,  # noqa: E712
                RoleGrant.role == Role.MEMBER,
                RoleGrant.org_id == org_id,
            )
        )
    ).all()

    def spread(member_id: int) -> str:
        return hashlib.sha256(f"{seed}:{member_id}".encode()).hexdigest()

    def asked_so_far(member_id: int, n: int) -> int:
        return n if load is None else load.get(member_id, 0)

    candidates = sorted(
        ((asked_so_far(mid, n), spread(mid), mid) for mid, n in rows if mid not in skip),
        key=lambda t: t[:2],
    )
    picked = [mid for _, _, mid in candidates[:PEERS_MAX]]
    return picked if len(picked) >= PEERS_MIN else picked[:PEERS_MIN]


@dataclass(frozen=True)
class Submitted:
    """The outcome of a submission: the routing and the peers asked."""

    routing: Routing
    peers: tuple[int, ...]
    findings: tuple[quality.Finding, ...]


async def submit(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    *,
    today: date,
    codec: CallbackCodec,
) -> Submitted:
    """Submit a draft for review: snapshot it, route it, send the cards, ask the peers.

    Raises:
        DomainError: ``pledge.blocked`` while a blocking finding remains, ``error.forbidden``,
            ``pledge.not_editable``, ``review.nobody``.
    """
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None or not access.may_draft(actor, pledge):
        raise DomainError("error.forbidden")
    if pledge.status is not PledgeStatus.DRAFT:
        raise DomainError("pledge.not_editable", status=pledge.status.value)
    findings = await propose.check(session, pledge, today)
    if quality.blocking(findings):
        raise DomainError(
            "pledge.blocked", count=sum(1 for f in findings if f.severity == "block")
        )
    routing = await route(session, pledge)
    rows = await propose.items_of(session, pledge.id)
    content = [propose.item_snapshot(i) for i in rows]
    digest = propose.content_hash(content, pledge.category, pledge.post)
    # each item keeps its row's id, which a revision keeps: the link to its earlier reports
    items = [{"id": row.id, **item} for row, item in zip(rows, content, strict=True)]
    now = utcnow()
    pledge.status = apply(pledge.status, PledgeEvent.SUBMIT)
    pledge.submitted_at = now
    pledge.updated_at = now
    pledge.review_org_id = routing.org_id
    pledge.review_role = routing.role.value
    pledge.routed_at = now
    session.add(pledge)
    session.add(
        PledgeSnapshot(
            pledge_id=pledge.id,
            version=pledge.version,
            items=items,
            findings=cards.findings_record(findings),
            content_hash=digest,
            submitted_by=actor.member_id,
            submitted_at=now,
        )
    )
    await session.flush()
    await audit.record(
        session,
        "pledge.submitted",
        actor=actor.member_id,
        subject=f"pledge:{pledge.id}",
        payload={
            "version": pledge.version,
            "content_hash": digest,
            "review_org_id": routing.org_id,
            "review_role": routing.role.value,
            "warnings": [f.code for f in findings],
        },
    )
    prefix = cards.card_key(pledge.id, pledge.version)
    for reviewer in routing.reviewers:
        card = await cards.review_card(session, codec, pledge, reviewer)
        await outbox.notify_member(session, reviewer, card, key=f"{prefix}{reviewer}")
    if routing.escalated:
        org = await session.get(Org, pledge.org_id)
        level = await session.get(Org, routing.org_id)
        notice = Reply("review.escalated", {"org": org.name, "level": level.name})
        for office in routing.office:
            await outbox.notify_member(
                session, office, notice, key=f"esc:{pledge.id}:{pledge.version}:{office}"
            )
    peers: list[int] = []
    if pledge.owner_kind is OwnerKind.MEMBER:
        peers = await _choose_peers(
            session, pledge, {actor.member_id, *routing.reviewers, pledge.owner_member_id}
        )
        for peer in peers:
            session.add(PeerRequest(pledge_id=pledge.id, version=pledge.version, member_id=peer))
        await session.flush()
        for peer in peers:
            card = await cards.peer_card(session, codec, pledge, peer)
            await outbox.notify_member(
                session, peer, card, key=f"{cards.peer_key(pledge.id, pledge.version)}{peer}"
            )
    return Submitted(routing, tuple(peers), tuple(findings))


async def _current(session: AsyncSession, pledge_id: int, version: int) -> Pledge:
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None:
        raise DomainError("error.forbidden")
    if pledge.version != version or pledge.status is not PledgeStatus.SUBMITTED:
        raise DomainError("error.stale_card")
    return pledge


async def toggle_criterion(
    session: AsyncSession, actor: Actor, pledge_id: int, version: int, criterion: Criterion
) -> Pledge:
    """Tick or untick one criterion on the actor's card."""
    pledge = await _current(session, pledge_id, version)
    if not access.may_decide(actor, pledge):
        raise DomainError("review.not_yours")
    row = (
        await session.exec(
            select(ReviewChecklist).where(
                ReviewChecklist.pledge_id == pledge_id,
                ReviewChecklist.version == version,
                ReviewChecklist.reviewer_id == actor.member_id,
            )
        )
    ).first()
    if row is None:
        row = ReviewChecklist(
            pledge_id=pledge_id, version=version, reviewer_id=actor.member_id, criteria=[]
        )
    ticks = set(row.criteria)
    ticks ^= {criterion.value}
    row.criteria = [c.value for c in Criterion if c.value in ticks]
    session.add(row)
    await session.flush()
    return pledge


async def _record_ticks(
    session: AsyncSession, pledge_id: int, version: int, reviewer_id: int, criteria: list[str]
) -> None:
    """Keep the reviewer's checklist as decided, so every copy of the card shows it."""
    row = (
        await session.exec(
            select(ReviewChecklist).where(
                ReviewChecklist.pledge_id == pledge_id,
                ReviewChecklist.version == version,
                ReviewChecklist.reviewer_id == reviewer_id,
            )
        )
    ).first()
    if row is None:
        row = ReviewChecklist(pledge_id=pledge_id, version=version, reviewer_id=reviewer_id)
    row.criteria = list(criteria)
    session.add(row)
    await session.flush()


async def may_read(session: AsyncSession, actor: Actor, pledge: Pledge, version: int) -> bool:
    """Tell whether the actor was shown this version: its owner, reviewer, peer or overseer."""
    if access.may_draft(actor, pledge) or access.may_decide(actor, pledge):
        return True
    asked = (
        await session.exec(
            select(PeerRequest.id).where(
                PeerRequest.pledge_id == pledge.id,
                PeerRequest.version == version,
                PeerRequest.member_id == actor.member_id,
            )
        )
    ).first()
    reviewed = (
        await session.exec(
            select(Review.id).where(
                Review.pledge_id == pledge.id, Review.reviewer_id == actor.member_id
            )
        )
    ).first()
    return bool(asked or reviewed) or await access.may_supervise(session, actor, pledge)


async def check_may_decide(
    session: AsyncSession, actor: Actor, pledge_id: int, version: int
) -> Pledge:
    """Return the pledge if the actor may decide this version now, else refuse."""
    pledge = await _current(session, pledge_id, version)
    if not access.may_decide(actor, pledge):
        raise DomainError("review.not_yours")
    return pledge


async def decide(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    version: int,
    verdict: Verdict,
    *,
    codec: CallbackCodec,
    reasons: list[Criterion] | None = None,
    opinion: str = "",
    confirmed: bool = False,
) -> Pledge:
    """Approve (确认) or return (退回修改完善) one version; exactly one decision ever counts.

    Approving needs the five criteria confirmed: all ticked on the card, or ``confirmed``
    (the reviewer answered 符合，通过), which ticks them all. Returning needs at least one
    unmet criterion in ``reasons`` or a typed ``opinion`` of at least four characters; a
    criterion given as a reason is recorded as not met.

    Raises:
        DomainError: ``error.stale_card`` when the version was decided or changed meanwhile,
            ``review.not_yours``, ``review.confirm_criteria`` for an approval with the
            criteria unconfirmed, ``review.reason_required`` for a return without reasons,
            ``review.reason_short`` for a typed reason under four characters.
    """
    if verdict not in (Verdict.APPROVE, Verdict.RETURN):
        raise DomainError("error.bad_button")
    pledge = await check_may_decide(session, actor, pledge_id, version)
    reasons = reasons or []
    opinion = opinion.strip()
    criteria = await cards.ticked(session, pledge_id, version, actor.member_id)
    if verdict is Verdict.APPROVE:
        if not confirmed and set(criteria) != set(ALL_CRITERIA):
            raise DomainError("review.confirm_criteria")
        criteria = list(ALL_CRITERIA)
    else:
        if not reasons and not opinion:
            raise DomainError("review.reason_required")
        if not reasons and len(opinion) < REASON_MIN_CHARS:
            raise DomainError("review.reason_short", min=REASON_MIN_CHARS)
        unmet = {r.value for r in reasons}
        criteria = [c for c in criteria if c not in unmet]
    if len(opinion) > 1000:
        raise DomainError("error.too_long", limit=1000)
    event = PledgeEvent.APPROVE if verdict is Verdict.APPROVE else PledgeEvent.RETURN
    new_status = apply(pledge.status, event)
    now = utcnow()
    # The decision counts only if the row is still the submitted version the card showed.
    result = await session.exec(
        update(Pledge)
        .where(
            Pledge.id == pledge_id,
            Pledge.version == version,
            Pledge.status == PledgeStatus.SUBMITTED,
        )
        .values(status=new_status, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise DomainError("error.stale_card")
    await session.refresh(pledge)
    await _record_ticks(session, pledge_id, version, actor.member_id, criteria)
    session.add(
        Review(
            pledge_id=pledge_id,
            pledge_version=version,
            reviewer_id=actor.member_id,
            kind="decision",
            decision=verdict.value,
            opinion=opinion,
            criteria=criteria,
            reasons=[r.value for r in reasons],
            decided_at=now,
        )
    )
    await session.flush()
    await audit.record(
        session,
        "pledge.approved" if verdict is Verdict.APPROVE else "pledge.returned",
        actor=actor.member_id,
        subject=f"pledge:{pledge_id}",
        payload={
            "version": version,
            "criteria": criteria,
            "reasons": [r.value for r in reasons],
            "opinion": opinion,
        },
        at=now,
    )
    await refresh_cards(session, codec, pledge, version)
    if verdict is Verdict.RETURN:
        ctx = await cards.pledge_context(session, pledge, snapshot=True)
        ctx.update(
            by=actor.name, reasons=[r.value for r in reasons], opinion=opinion, version=version
        )
        for drafter in await people.owners(session, pledge):
            await outbox.notify_member(
                session,
                drafter,
                Reply("review.returned_notice", ctx),
                key=f"ret:{pledge_id}:{version}:{drafter}",
            )
    else:
        await publish.publish(session, pledge, actor_id=actor.member_id, codec=codec)
    return pledge


async def peer_opinion(
    session: AsyncSession,
    actor: Actor,
    pledge_id: int,
    version: int,
    verdict: Verdict,
    *,
    codec: CallbackCodec,
    opinion: str = "",
) -> Pledge:
    """Record a peer's advisory opinion and show it on the reviewers' cards.

    Raises:
        DomainError: ``peer.not_asked``, ``peer.already``, ``error.stale_card``,
            ``peer.comment_required`` for a suggestion without a comment.
    """
    if verdict not in (Verdict.AGREE, Verdict.SUGGEST):
        raise DomainError("error.bad_button")
    pledge = await _current(session, pledge_id, version)
    req = (
        await session.exec(
            select(PeerRequest).where(
                PeerRequest.pledge_id == pledge_id,
                PeerRequest.version == version,
                PeerRequest.member_id == actor.member_id,
            )
        )
    ).first()
    if req is None:
        raise DomainError("peer.not_asked")
    if req.answered_at is not None:
        raise DomainError("peer.already")
    opinion = opinion.strip()
    if verdict is Verdict.SUGGEST and not opinion:
        raise DomainError("peer.comment_required")
    if len(opinion) > 1000:
        raise DomainError("error.too_long", limit=1000)
    now = utcnow()
    req.answered_at = now
    session.add(req)
    session.add(
        Review(
            pledge_id=pledge_id,
            pledge_version=version,
            reviewer_id=actor.member_id,
            kind="peer",
            decision=verdict.value,
            opinion=opinion,
            decided_at=now,
        )
    )
    await session.flush()
    await audit.record(
        session,
        "pledge.peer_opinion",
        actor=actor.member_id,
        subject=f"pledge:{pledge_id}",
        payload={"version": version, "verdict": verdict.value, "opinion": opinion},
        at=now,
    )
    await refresh_cards(session, codec, pledge, version)
    return pledge


async def refresh_cards(
    session: AsyncSession, codec: CallbackCodec, pledge: Pledge, version: int
) -> None:
    """Edit every delivered card of this version to show the latest state; drop unsent ones."""
    rows = (
        await session.exec(
            select(Outbox, Account.member_id)
            .join(
                Account,
                (col(Account.platform) == Outbox.platform)
                & (col(Account.chat_id) == Outbox.chat_id),
            )
            .where(
                col(Outbox.dedup_key).startswith(cards.card_key(pledge.id, version))
                | col(Outbox.dedup_key).startswith(cards.peer_key(pledge.id, version)),
                Outbox.kind == "message",
            )
        )
    ).all()
    stamp = utcnow().strftime("%Y%m%d%H%M%S%f")
    for row, member_id in rows:
        is_peer = row.dedup_key.startswith("peer:")
        if row.status is OutboxStatus.PENDING and row.sent_message_id is None:
            continue  # not out yet: it will be built afresh when the person opens /review
        if row.sent_message_id is None:
            continue
        if is_peer:
            card = await cards.peer_card(
                session,
                codec,
                pledge,
                member_id,
                version=version,
                edit_message_id=row.sent_message_id,
            )
        else:
            card = await cards.review_card(
                session,
                codec,
                pledge,
                member_id,
                version=version,
                edit_message_id=row.sent_message_id,
            )
        await outbox.enqueue(
            session,
            platform=row.platform,
            chat_id=row.chat_id,
            reply=card,
            locale=row.payload.get("locale", "zh_CN"),
            key=f"edit:{row.id}:{stamp}",
            priority=Priority.REPLY,
        )


async def pending_for(session: AsyncSession, actor: Actor) -> list[Pledge]:
    """Return the submitted pledges this actor may decide now, oldest first."""
    conditions = []
    for g in actor.grants:
        if g.role in (Role.SECRETARY, Role.REVIEWER):
            conditions.append(
                (col(Pledge.review_org_id) == g.org_id) & (col(Pledge.review_role) == g.role.value)
            )
    if not conditions:
        return []
    rows = (
        await session.exec(
            select(Pledge)
            .where(Pledge.status == PledgeStatus.SUBMITTED, or_(*conditions))
            .order_by(col(Pledge.submitted_at))
            .limit(20)
        )
    ).all()
    return [p for p in rows if access.may_decide(actor, p)]


async def peer_pending_for(session: AsyncSession, actor: Actor) -> list[Pledge]:
    """Return the pledges a peer was asked about and has not answered yet."""
    rows = (
        await session.exec(
            select(Pledge)
            .join(PeerRequest, col(PeerRequest.pledge_id) == Pledge.id)
            .where(
                PeerRequest.member_id == actor.member_id,
                col(PeerRequest.answered_at).is_(None),
                PeerRequest.version == Pledge.version,
                Pledge.status == PledgeStatus.SUBMITTED,
            )
        )
    ).all()
    return list(rows)


async def escalate(
    session: AsyncSession, pledge: Pledge, *, codec: CallbackCodec, now: datetime
) -> Routing | None:
    """Send a pledge waiting past its timeout to the next level up; never decide it.

    Returns:
        The new routing, or None when there is no level above with a reviewer (the office is
        told once).
    """
    org = await session.get(Org, pledge.org_id)
    chain = await _ancestors(session, org)
    current = next((i for i, o in enumerate(chain) if o.id == pledge.review_org_id), None)
    exclude = {m for m in (pledge.owner_member_id, pledge.drafted_by) if m}
    office: list[int] = []
    for anc in chain:
        office = await people.holders(session, Role.OFFICE, anc.id, set())
        if office:
            break
    old = await people.holders(session, Role(pledge.review_role), pledge.review_org_id, exclude)
    above = chain[current + 1 :] if current is not None else []
    for level in above:
        found = await people.holders(session, Role.REVIEWER, level.id, exclude)
        if not found:
            continue
        pledge.review_org_id = level.id
        pledge.review_role = Role.REVIEWER.value
        pledge.routed_at = now
        session.add(pledge)
        await session.flush()
        await audit.record(
            session,
            "review.escalated",
            actor=None,
            subject=f"pledge:{pledge.id}",
            payload={"version": pledge.version, "to_org": level.id},
            at=now,
        )
        prefix = cards.card_key(pledge.id, pledge.version)
        for reviewer in found:
            card = await cards.review_card(session, codec, pledge, reviewer)
            await outbox.notify_member(
                session, reviewer, card, key=f"{prefix}{reviewer}:esc{level.id}"
            )
        ctx = {
            "org": org.name,
            "level": level.name,
            "owner": await cards.owner_name(session, pledge),
        }
        for member_id in {*old, *office}:
            await outbox.notify_member(
                session,
                member_id,
                Reply("review.timeout_escalated", ctx),
                key=f"revesc:{pledge.id}:{pledge.version}:{level.id}:{member_id}",
            )
        return Routing(level.id, Role.REVIEWER, tuple(found), True, tuple(office))
    ctx = {"org": org.name, "owner": await cards.owner_name(session, pledge)}
    for member_id in office:
        await outbox.notify_member(
            session,
            member_id,
            Reply("review.timeout_stuck", ctx),
            key=f"revstuck:{pledge.id}:{pledge.version}:{member_id}",
        )
    return None


async def remind_reviewers(session: AsyncSession, pledge: Pledge) -> int:
    """Remind the current reviewers of a pledge waiting past its timeout, once per level."""
    exclude = {m for m in (pledge.owner_member_id, pledge.drafted_by) if m}
    found = await people.holders(session, Role(pledge.review_role), pledge.review_org_id, exclude)
    ctx = {"owner": await cards.owner_name(session, pledge)}
    count = 0
    for member_id in found:
        count += len(
            await outbox.notify_member(
                session,
                member_id,
                Reply("review.timeout_reminder", ctx),
                key=f"revrem:{pledge.id}:{pledge.version}:{pledge.review_org_id}:{member_id}",
            )
        )
    return count
