"""S8 回头看承诺: at an item's deadline, or when it is crossed off, look back on it.

The owner answers one question (做到了吗？有什么变化？: one tap, a note or photo if they like),
one or two branch-mates give an opinion, and the public is asked in the linked group with a
poll — batched, at most one poll per organization per week, covering the items due. When the
poll has had its days, whoever oversees the item decides: satisfied (the campaign's share of
满意+基本满意, default two thirds, and the owner did not answer 没做到) → 巩固销号 with a
one-line lasting mechanism (长效机制), posted to the group; otherwise the cause is recorded and
限期整改 opens through the existing flow. Nothing is decided by the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, cards, evaluate, grouplink, outbox, people, polls, review
from campaign.access import Actor
from models.base import utcnow
from models.callbacks import CallbackCodec, CallbackData
from models.campaign import Campaign
from models.dialog import Priority
from models.errors import DomainError
from models.evaluation import Poll, PollStatus, PublicVote
from models.lookback import LookBack, LookBackOpinion, LookBackState, OwnerAnswer, satisfied
from models.org import Org, Role
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.reply import Button, Reply

NOTE_MAX = 500
MECHANISM_MAX = 200
CAUSE_MAX = 1000
#: branch-mates asked for their opinion on one item
PEERS = 2
#: items named in one week's poll question (the rest are counted)
POLL_ITEMS = 5
GROUP_LOCALE = "zh_CN"


@dataclass(frozen=True)
class LookCb(CallbackData):
    """The owner's one tap: 做到了 / 部分做到 / 没做到."""

    prefix = "la"
    lookback_id: int
    answer: OwnerAnswer


@dataclass(frozen=True)
class LookPeerCb(CallbackData):
    """A branch-mate's opinion: 满意 / 基本满意 / 不满意."""

    prefix = "lp"
    lookback_id: int
    vote: PublicVote


@dataclass(frozen=True)
class LookDecideCb(CallbackData):
    """The decision: ``keep`` (巩固销号) or ``rectify`` (限期整改)."""

    prefix = "ld"
    lookback_id: int
    action: str


LOOKBACK_TYPES: tuple[type[CallbackData], ...] = (LookCb, LookPeerCb, LookDecideCb)


def week_key(day: date) -> str:
    """Return the ISO week of a day (``2027W14``): one look-back poll per organization in it."""
    year, week, _ = day.isocalendar()
    return f"{year}W{week:02d}"


async def _context(session: AsyncSession, lb: LookBack) -> dict:
    item = await session.get(PledgeItem, lb.item_id)
    pledge = await session.get(Pledge, lb.pledge_id)
    return {
        "id": lb.id,
        "owner": await cards.owner_name(session, pledge),
        "content": item.content if item else "",
        "deadline": item.deadline.isoformat() if item and item.deadline else "",
        "done": bool(item and item.done_on),
        "answer": lb.owner_answer.value if lb.owner_answer else None,
        "note": lb.owner_note,
        "state": lb.state.value,
        "mechanism": lb.mechanism,
        "cause": lb.cause,
    }


async def deciders(session: AsyncSession, pledge: Pledge) -> list[int]:
    """Return who decides an item's look-back: the branch's secretary, or the level above."""
    org = await session.get(Org, pledge.org_id)
    if pledge.owner_kind is OwnerKind.MEMBER:
        found = await people.holders(session, Role.SECRETARY, org.id, {pledge.owner_member_id})
        if found:
            return found
    return await evaluate.upper_raters(session, org, set())


async def start_due(
    session: AsyncSession, camp: Campaign, today: date, *, codec: CallbackCodec
) -> int:
    """Start the look-back of every item that reached its deadline or was crossed off."""
    started = select(LookBack.item_id).where(LookBack.campaign_id == camp.id)
    rows = (
        await session.exec(
            select(PledgeItem, Pledge)
            .join(Pledge, col(Pledge.id) == PledgeItem.pledge_id)
            .where(
                Pledge.campaign_id == camp.id,
                Pledge.status == PledgeStatus.PUBLISHED,
                or_(col(PledgeItem.done_on).is_not(None), col(PledgeItem.deadline) <= today),
                col(PledgeItem.id).not_in(started),
            )
            .order_by(col(PledgeItem.id))
        )
    ).all()
    count = 0
    for item, pledge in rows:
        lb = LookBack(
            campaign_id=camp.id,
            item_id=item.id,
            pledge_id=pledge.id,
            org_id=pledge.org_id,
            started_on=today,
        )
        session.add(lb)
        await session.flush()
        ctx = await _context(session, lb)
        ask = Reply(
            "lookback.ask_owner",
            ctx,
            buttons=(
                tuple(
                    Button(f"lookback.answer.{a.value}", codec.encode(LookCb(lb.id, a)))
                    for a in OwnerAnswer
                ),
            ),
        )
        owners = await people.owners(session, pledge)
        for member_id in owners:
            count += len(
                await outbox.notify_member(
                    session, member_id, ask, key=f"lookback:{lb.id}:ask:{member_id}"
                )
            )
        peers = await review.pick_branch_mates(
            session, pledge.org_id, f"lookback:{item.id}", set(owners)
        )
        opinion = Reply(
            "lookback.ask_peer",
            ctx,
            buttons=(
                tuple(
                    Button(f"eval.vote.{v.value}", codec.encode(LookPeerCb(lb.id, v)))
                    for v in PublicVote
                ),
            ),
        )
        for member_id in peers[:PEERS]:
            session.add(LookBackOpinion(lookback_id=lb.id, member_id=member_id))
            count += len(
                await outbox.notify_member(
                    session,
                    member_id,
                    opinion,
                    key=f"lookback:{lb.id}:peer:{member_id}",
                    priority=Priority.BROADCAST,
                )
            )
        await audit.record(
            session,
            "lookback.started",
            actor=None,
            subject=f"pledge:{pledge.id}",
            payload={"lookback": lb.id, "item": item.id, "peers": peers[:PEERS]},
        )
    return count


async def _open_lookback(session: AsyncSession, lookback_id: int) -> LookBack:
    lb = await session.get(LookBack, lookback_id)
    if lb is None:
        raise DomainError("error.forbidden")
    if lb.state is not LookBackState.OPEN:
        raise DomainError("lookback.decided")
    return lb


async def owner_lookback(session: AsyncSession, actor: Actor, lookback_id: int) -> LookBack:
    """Return an open look-back the actor answers for (its item's owner).

    Raises:
        DomainError: ``error.forbidden`` or ``lookback.decided``.
    """
    lb = await _open_lookback(session, lookback_id)
    pledge = await session.get(Pledge, lb.pledge_id)
    if actor.member_id not in await people.owners(session, pledge):
        raise DomainError("error.forbidden")
    return lb


async def answer(
    session: AsyncSession, actor: Actor, lookback_id: int, given: OwnerAnswer
) -> LookBack:
    """Keep the owner's one-tap answer (it may be changed until the decision)."""
    lb = await owner_lookback(session, actor, lookback_id)
    lb.owner_answer = given
    lb.answered_at = utcnow()
    session.add(lb)
    await audit.record(
        session,
        "lookback.answered",
        actor=actor.member_id,
        subject=f"pledge:{lb.pledge_id}",
        payload={"lookback": lb.id, "answer": given.value},
    )
    return lb


async def add_note(
    session: AsyncSession,
    actor: Actor,
    lookback_id: int,
    *,
    text: str = "",
    photo: str | None = None,
) -> LookBack:
    """Keep the owner's optional note or photo on what changed.

    Raises:
        DomainError: ``lookback.note_empty`` or ``error.too_long``.
    """
    lb = await owner_lookback(session, actor, lookback_id)
    text = text.strip()
    if not text and not photo:
        raise DomainError("lookback.note_empty")
    if len(text) > NOTE_MAX:
        raise DomainError("error.too_long", limit=NOTE_MAX)
    lb.owner_note = text or lb.owner_note
    lb.owner_photo = photo or lb.owner_photo
    session.add(lb)
    await audit.record(
        session,
        "lookback.noted",
        actor=actor.member_id,
        subject=f"pledge:{lb.pledge_id}",
        payload={"lookback": lb.id, "note": lb.owner_note, "photo": lb.owner_photo},
    )
    return lb


async def peer_opinion(
    session: AsyncSession, actor: Actor, lookback_id: int, vote: PublicVote
) -> LookBack:
    """Keep a branch-mate's opinion (only of those asked, until the decision)."""
    lb = await _open_lookback(session, lookback_id)
    row = (
        await session.exec(
            select(LookBackOpinion).where(
                LookBackOpinion.lookback_id == lb.id,
                LookBackOpinion.member_id == actor.member_id,
            )
        )
    ).first()
    if row is None:
        raise DomainError("error.forbidden")
    row.vote = vote
    row.answered_at = utcnow()
    session.add(row)
    await audit.record(
        session,
        "lookback.opinion",
        actor=actor.member_id,
        subject=f"pledge:{lb.pledge_id}",
        payload={"lookback": lb.id, "vote": vote.value},
    )
    return lb


async def weekly_polls(session: AsyncSession, camp: Campaign, today: date) -> int:
    """Ask the public once this week in each linked group about the items whose look-back began."""
    rows = (
        await session.exec(
            select(LookBack)
            .where(
                LookBack.campaign_id == camp.id,
                LookBack.state == LookBackState.OPEN,
                col(LookBack.poll_id).is_(None),
            )
            .order_by(col(LookBack.org_id), col(LookBack.id))
        )
    ).all()
    by_org: dict[int, list[LookBack]] = {}
    for lb in rows:
        by_org.setdefault(lb.org_id, []).append(lb)
    linked = {g.org_id for g in await grouplink.groups_of(session, list(by_org), polls=True)}
    opened = evaluate_opening(camp, today)
    count = 0
    for org_id, lbs in by_org.items():
        if org_id not in linked:
            continue
        org = await session.get(Org, org_id)
        items = [(await _context(session, lb)) for lb in lbs]
        made = await polls.open_polls(
            session,
            camp,
            org_id=org_id,
            purpose="lookback",
            period=week_key(today),
            template="lookback.poll_question",
            context={
                "org": org.name,
                "items": [f"{i['owner']}：{i['content']}" for i in items[:POLL_ITEMS]],
                "more": max(0, len(items) - POLL_ITEMS),
                "days": camp.poll_days,
            },
            now=opened,
            item_ids=[lb.item_id for lb in lbs],
        )
        if made:
            for lb in lbs:
                lb.poll_id = made[0].id
                session.add(lb)
            count += len(made)
    return count


def evaluate_opening(camp: Campaign, today: date) -> datetime:
    """Return when a poll opened by the calendar on ``today`` counts as opened (the send hour)."""
    return datetime.combine(today, time(camp.send_hour), tzinfo=ZoneInfo(camp.timezone))


async def votes(session: AsyncSession, lb: LookBack) -> dict[str, int]:
    """Return the branch-mates' opinions and the public's votes on an item, added up."""
    out = dict.fromkeys((v.value for v in PublicVote), 0)
    opinions = (
        await session.exec(
            select(LookBackOpinion.vote).where(
                LookBackOpinion.lookback_id == lb.id, col(LookBackOpinion.vote).is_not(None)
            )
        )
    ).all()
    for vote in opinions:
        out[vote.value] += 1
    if lb.poll_id is not None:
        poll = await session.get(Poll, lb.poll_id)
        if poll is not None:
            for key in out:
                out[key] += int(poll.totals.get(key, 0))
    return out


async def decision_card(
    session: AsyncSession, codec: CallbackCodec, camp: Campaign, lb: LookBack
) -> Reply:
    """Return the card on which the item's look-back is decided."""
    totals = await votes(session, lb)
    ok, share = satisfied(camp.lookback_share, lb.owner_answer, totals)
    ctx = {
        **await _context(session, lb),
        "votes": totals,
        "share": None if share is None else f"{share.numerator}/{share.denominator}",
        "needed": camp.lookback_share,
        "satisfied": ok,
    }
    buttons = (
        (
            Button("lookback.keep_button", codec.encode(LookDecideCb(lb.id, "keep"))),
            Button("lookback.rectify_button", codec.encode(LookDecideCb(lb.id, "rectify"))),
        ),
    )
    return Reply("lookback.decide", ctx, buttons=buttons)


async def decide_due(
    session: AsyncSession, camp: Campaign, today: date, *, codec: CallbackCodec
) -> int:
    """Send the decision card of each look-back whose poll has had its days (or has none)."""
    rows = (
        await session.exec(
            select(LookBack).where(
                LookBack.campaign_id == camp.id,
                LookBack.state == LookBackState.OPEN,
                col(LookBack.started_on) <= today - timedelta(days=camp.poll_days),
            )
        )
    ).all()
    count = 0
    for lb in rows:
        if lb.poll_id is not None:
            poll = await session.get(Poll, lb.poll_id)
            if poll is not None and poll.status is not PollStatus.CLOSED:
                continue  # decided on the public's final totals
        pledge = await session.get(Pledge, lb.pledge_id)
        card = await decision_card(session, codec, camp, lb)
        for member_id in await deciders(session, pledge):
            count += len(
                await outbox.notify_member(
                    session, member_id, card, key=f"lookback:{lb.id}:decide:{member_id}"
                )
            )
    return count


async def decidable(session: AsyncSession, actor: Actor, lookback_id: int) -> LookBack:
    """Return an open look-back the actor decides.

    Raises:
        DomainError: ``error.forbidden`` or ``lookback.decided``.
    """
    lb = await _open_lookback(session, lookback_id)
    pledge = await session.get(Pledge, lb.pledge_id)
    if actor.member_id not in await deciders(session, pledge):
        raise DomainError("error.forbidden")
    return lb


async def consolidate(
    session: AsyncSession, actor: Actor, lookback_id: int, mechanism: str, *, today: date
) -> LookBack:
    """巩固销号: record the lasting mechanism, cross the item off, post it to the group.

    Raises:
        DomainError: ``lookback.mechanism_required``, ``error.too_long``, or as ``decidable``.
    """
    lb = await decidable(session, actor, lookback_id)
    mechanism = mechanism.strip()
    if not mechanism:
        raise DomainError("lookback.mechanism_required")
    if len(mechanism) > MECHANISM_MAX:
        raise DomainError("error.too_long", limit=MECHANISM_MAX)
    item = await session.get(PledgeItem, lb.item_id)
    if item.done_on is None:
        item.done_on = today
        session.add(item)
    lb.state = LookBackState.CONSOLIDATED
    lb.mechanism = mechanism
    lb.decided_by = actor.member_id
    lb.decided_at = utcnow()
    session.add(lb)
    await session.flush()
    await audit.record(
        session,
        "lookback.consolidated",
        actor=actor.member_id,
        subject=f"pledge:{lb.pledge_id}",
        payload={"lookback": lb.id, "item": lb.item_id, "mechanism": mechanism},
    )
    ctx = await _context(session, lb)
    groups = await grouplink.groups_of(session, lb.org_id)
    for group in groups:
        await outbox.enqueue(
            session,
            platform=group.platform,
            chat_id=group.chat_id,
            reply=Reply("lookback.consolidated_post", ctx),
            locale=GROUP_LOCALE,
            key=f"lookback:{lb.id}:post:{group.platform}:{group.chat_id}",
        )
    pledge = await session.get(Pledge, lb.pledge_id)
    for member_id in await people.owners(session, pledge):
        await outbox.notify_member(
            session,
            member_id,
            Reply("lookback.consolidated_notice", ctx),
            key=f"lookback:{lb.id}:kept:{member_id}",
        )
    return lb


async def send_to_rectify(
    session: AsyncSession, actor: Actor, lookback_id: int, cause: str
) -> LookBack:
    """Record why the item was not satisfied; the rectification then opens as usual.

    Raises:
        DomainError: ``rect.reason_required``, ``error.too_long``, or as ``decidable``.
    """
    lb = await decidable(session, actor, lookback_id)
    cause = cause.strip()
    if not cause:
        raise DomainError("rect.reason_required")
    if len(cause) > CAUSE_MAX:
        raise DomainError("error.too_long", limit=CAUSE_MAX)
    lb.state = LookBackState.RECTIFY
    lb.cause = cause
    lb.decided_by = actor.member_id
    lb.decided_at = utcnow()
    session.add(lb)
    await audit.record(
        session,
        "lookback.rectify",
        actor=actor.member_id,
        subject=f"pledge:{lb.pledge_id}",
        payload={"lookback": lb.id, "item": lb.item_id, "cause": cause},
    )
    return lb


async def states(session: AsyncSession, item_ids: list[int]) -> dict[int, dict]:
    """Return each item's look-back (state, mechanism, cause): for the ledger, reports, checks."""
    if not item_ids:
        return {}
    rows = (await session.exec(select(LookBack).where(col(LookBack.item_id).in_(item_ids)))).all()
    return {
        lb.item_id: {"state": lb.state.value, "mechanism": lb.mechanism, "cause": lb.cause}
        for lb in rows
    }
