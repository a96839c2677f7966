"""S7 综合评承诺: the quarterly evaluation from four sides, graded by the campaign's rule.

At each quarter start the quarter just ended is evaluated: every member with a published pledge
by self, two or three branch-mates (picked fairly, as for peer review), the organization (its
secretary) and the evaluators (评议员) attached to the branch; every organization with a
published pledge by itself, the level above and the public (a poll in its linked group).
Each rater gets one card a quarter with everyone they rate, their items' states from the
records and one-tap grades; whoever has not answered is reminded once. At the close the rule
(data in the campaign, printed with every result) gives each grade; with the decisive side
missing the result is 待评 and that rater is reminded once. 一般 and 差 are flagged for the
secretary with a one-tap record of the follow-up; nothing is automated and nobody earns points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, grouplink, outbox, people, polls, review
from campaign.access import Actor
from campaign.cards import owner_name
from models.base import utcnow
from models.callbacks import CallbackCodec, CallbackData
from models.campaign import Campaign
from models.dialog import Priority
from models.errors import DomainError
from models.evaluation import (
    REQUIRED,
    SIDES,
    EvalStatus,
    Evaluation,
    FollowUp,
    Grade,
    Poll,
    PollStatus,
    PublicVote,
    Quarter,
    Rating,
    Side,
    combine,
    default_rule,
    ended_quarter,
)
from models.org import Member, Org, Role
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.reply import Attachment, Button, Reply

#: subjects per page of a rater's card (a secretary of a large branch pages through)
PAGE = 8
COMMENT_MAX = 200
GROUP_LOCALE = "zh_CN"
#: results named per message to a group or the level above
RESULTS_NAMED = 60
#: a hook that draws a branch's grade chart from ``branch_results`` and keeps it as a file
#: (the calendar wires it to the documents port); None sends the results as text only
ChartHook = Callable[[dict], Awaitable[Attachment | None]]


@dataclass(frozen=True)
class GradeCb(CallbackData):
    """One tap: this grade for one rating; ``page`` is the card page to show again."""

    prefix = "eg"
    rating_id: int
    grade: Grade
    page: int


@dataclass(frozen=True)
class EvalPageCb(CallbackData):
    """Turn a rater's card to another page."""

    prefix = "ep"
    campaign_id: int
    quarter: str
    page: int


@dataclass(frozen=True)
class EvalNoteCb(CallbackData):
    """Add a short comment to one rating (optional)."""

    prefix = "en"
    rating_id: int


@dataclass(frozen=True)
class FollowCb(CallbackData):
    """Record the secretary's follow-up of a 一般 or 差."""

    prefix = "ef"
    evaluation_id: int
    action: FollowUp


EVAL_TYPES: tuple[type[CallbackData], ...] = (GradeCb, EvalPageCb, EvalNoteCb, FollowCb)


def quarter_to_evaluate(camp: Campaign, day: date) -> Quarter | None:
    """Return the quarter a quarter-start day evaluates, if it falls within the campaign."""
    q = ended_quarter(camp.quarter_starts, day)
    if q is None or q.last < camp.starts_on or q.first > camp.ends_on:
        return None
    return q


# --------------------------------------------------------------------------- who rates whom


async def _ancestors(session: AsyncSession, org: Org) -> list[Org]:
    """Return the organizations above ``org``, nearest first."""
    ids = [int(x) for x in org.path.strip("/").split("/") if x and int(x) != org.id]
    rows = (await session.exec(select(Org).where(col(Org.id).in_(ids)))).all()
    by_id = {o.id: o for o in rows}
    return [by_id[i] for i in reversed(ids) if i in by_id]


async def upper_raters(session: AsyncSession, org: Org, exclude: set[int]) -> list[int]:
    """Return who rates an organization from above: reviewers above, else the nearest office."""
    above = await _ancestors(session, org)
    if above:
        found = await people.holders(session, Role.REVIEWER, above[0].id, exclude)
        if found:
            return found
    for level in above:
        found = await people.holders(session, Role.OFFICE, level.id, exclude)
        if found:
            return found
    return []


async def _member_raters(
    session: AsyncSession, pledge: Pledge, quarter: str, load: dict[int, int]
) -> list[tuple[Side, int]]:
    me = pledge.owner_member_id
    out: list[tuple[Side, int]] = [(Side.SELF, me)]
    peers = await review.pick_branch_mates(
        session, pledge.org_id, f"eval:{quarter}:{me}", {me}, load=load
    )
    for peer in peers:
        load[peer] = load.get(peer, 0) + 1
        out.append((Side.PEER, peer))
    org = await session.get(Org, pledge.org_id)
    secretaries = await people.holders(session, Role.SECRETARY, org.id, {me})
    # A secretary is rated for the organization by the level above, not by themself.
    for rater in secretaries or await upper_raters(session, org, {me}):
        out.append((Side.ORG, rater))
    for rater in await people.holders(session, Role.EVALUATOR, org.id, {me}):
        out.append((Side.EVALUATOR, rater))
    return out


async def _org_raters(session: AsyncSession, pledge: Pledge) -> list[tuple[Side, int]]:
    org = await session.get(Org, pledge.org_id)
    out = [(Side.SELF, m) for m in await people.owners(session, pledge)]
    mine = {m for _, m in out}
    out += [(Side.UPPER, m) for m in await upper_raters(session, org, mine)]
    return out


def _cutoff(camp: Campaign, q: Quarter) -> datetime:
    return datetime.combine(q.last + timedelta(days=1), time(), tzinfo=ZoneInfo(camp.timezone))


async def open_quarter(
    session: AsyncSession, camp: Campaign, q: Quarter, *, codec, today: date | None = None
) -> int:
    """Create the quarter's evaluations and ratings asked, then send one card per rater.

    Subjects are the pledges published by the quarter's end; each organization's linked groups
    get a poll for the public side (closed by the calendar after ``poll_days``). Returns the
    messages queued.
    """
    today = today or q.last + timedelta(days=1)
    opened = datetime.combine(today, time(camp.send_hour), tzinfo=ZoneInfo(camp.timezone))
    root = await session.get(Org, camp.root_org_id)
    pledges = (
        await session.exec(
            select(Pledge)
            .join(Org, col(Org.id) == Pledge.org_id)
            .where(
                Pledge.campaign_id == camp.id,
                Pledge.status == PledgeStatus.PUBLISHED,
                col(Pledge.published_at) < _cutoff(camp, q),
                col(Org.path).startswith(root.path),
            )
            .order_by(col(Pledge.org_id), col(Pledge.owner_kind).desc(), col(Pledge.id))
        )
    ).all()
    existing = set(
        (
            await session.exec(
                select(Evaluation.subject).where(
                    Evaluation.campaign_id == camp.id, Evaluation.quarter == q.key
                )
            )
        ).all()
    )
    load: dict[int, int] = {}
    raters: set[int] = set()
    poll_messages = 0
    for pledge in pledges:
        if pledge.owner_kind is OwnerKind.MEMBER:
            member = await session.get(Member, pledge.owner_member_id)
            if member is None or not member.active:
                continue
            subject = f"m:{pledge.owner_member_id}"
        else:
            subject = f"o:{pledge.org_id}"
        if subject in existing:
            continue
        existing.add(subject)
        ev = Evaluation(
            campaign_id=camp.id,
            quarter=q.key,
            subject=subject,
            owner_kind=pledge.owner_kind,
            org_id=pledge.org_id,
            member_id=pledge.owner_member_id,
            pledge_id=pledge.id,
            rule=camp.grade_rule or default_rule(),
        )
        session.add(ev)
        await session.flush()
        if pledge.owner_kind is OwnerKind.MEMBER:
            asked = await _member_raters(session, pledge, q.key, load)
        else:
            asked = await _org_raters(session, pledge)
            org = await session.get(Org, pledge.org_id)
            opened_polls = await polls.open_polls(
                session,
                camp,
                org_id=pledge.org_id,
                purpose="eval",
                period=q.key,
                template="eval.poll_question",
                context={"org": org.name, "quarter": q.key, "days": camp.poll_days},
                now=opened,
            )
            poll_messages += len(opened_polls)
        for side, rater in dict.fromkeys(asked):
            session.add(Rating(evaluation_id=ev.id, rater_id=rater, side=side))
            raters.add(rater)
        await session.flush()
    count = poll_messages
    for rater in sorted(raters):
        card = await rater_card(session, codec, camp, q.key, rater, today=today)
        if card is None:
            continue
        count += len(
            await outbox.notify_member(
                session,
                rater,
                card,
                key=f"eval:{camp.id}:{q.key}:card:{rater}",
                priority=Priority.BROADCAST,
            )
        )
    await audit.record(
        session,
        "evaluation.opened",
        actor=None,
        subject=f"campaign:{camp.id}",
        payload={"quarter": q.key, "raters": len(raters), "rule": camp.grade_rule},
    )
    return count


# --------------------------------------------------------------------------- the rater's card


async def _item_states(session: AsyncSession, pledge_id: int | None, today: date) -> dict:
    """Return how many of a pledge's items are done, on track and overdue (from the records)."""
    out = {"done": 0, "on_track": 0, "overdue": 0}
    if pledge_id is None:
        return out
    items = (await session.exec(select(PledgeItem).where(PledgeItem.pledge_id == pledge_id))).all()
    for item in items:
        if item.done_on is not None:
            out["done"] += 1
        elif item.deadline is not None and item.deadline < today:
            out["overdue"] += 1
        else:
            out["on_track"] += 1
    return out


async def subject_name(session: AsyncSession, ev: Evaluation) -> str:
    """Return the name of whom an evaluation is about: the member, or the organization."""
    if ev.member_id is not None:
        member = await session.get(Member, ev.member_id)
        return member.name if member else ""
    org = await session.get(Org, ev.org_id)
    return org.name if org else ""


_SIDE_ORDER = {s: i for i, s in enumerate(Side)}


async def _rater_rows(
    session: AsyncSession, campaign_id: int, quarter: str, rater_id: int
) -> list[tuple[Rating, Evaluation]]:
    rows = (
        await session.exec(
            select(Rating, Evaluation)
            .join(Evaluation, col(Evaluation.id) == Rating.evaluation_id)
            .where(
                Rating.rater_id == rater_id,
                Evaluation.campaign_id == campaign_id,
                Evaluation.quarter == quarter,
            )
        )
    ).all()
    return sorted(
        rows, key=lambda r: (_SIDE_ORDER[r[0].side], r[1].owner_kind != OwnerKind.ORG, r[1].id)
    )


def _open_for(rating: Rating, ev: Evaluation) -> bool:
    """Tell whether a rating may still be given: the evaluation is open, or 待评 on its side."""
    if ev.status is EvalStatus.OPEN:
        return True
    return ev.status is EvalStatus.PENDING and rating.side is REQUIRED[ev.owner_kind]


async def rater_card(
    session: AsyncSession,
    codec: CallbackCodec,
    camp: Campaign,
    quarter: str,
    rater_id: int,
    *,
    today: date,
    page: int = 0,
    template: str = "eval.card",
    edit_message_id: str | None = None,
) -> Reply | None:
    """Return a rater's card: everyone they rate this quarter, with one-tap grades, paged."""
    rows = [(r, ev) for r, ev in await _rater_rows(session, camp.id, quarter, rater_id)]
    open_rows = [(r, ev) for r, ev in rows if _open_for(r, ev)]
    if not open_rows:
        return None
    pages = (len(open_rows) + PAGE - 1) // PAGE
    page = max(0, min(page, pages - 1))
    chunk = open_rows[page * PAGE : (page + 1) * PAGE]
    entries = []
    buttons: list[tuple[Button, ...]] = []
    for n, (rating, ev) in enumerate(chunk, start=page * PAGE + 1):
        entries.append(
            {
                "n": n,
                "name": await subject_name(session, ev),
                "kind": ev.owner_kind.value,
                "side": rating.side.value,
                "states": await _item_states(session, ev.pledge_id, today),
                "grade": rating.grade.value if rating.grade else None,
                "comment": rating.comment,
            }
        )
        row = tuple(
            Button(
                "eval.grade_button",
                codec.encode(GradeCb(rating.id, g, page)),
                context={"n": n, "grade": g.value, "chosen": rating.grade is g},
            )
            for g in Grade
        )
        row += (Button("eval.note_button", codec.encode(EvalNoteCb(rating.id)), context={"n": n}),)
        buttons.append(row)
    nav = []
    if page > 0:
        back = EvalPageCb(camp.id, quarter, page - 1)
        nav.append(Button("eval.prev_button", codec.encode(back)))
    if page + 1 < pages:
        on = EvalPageCb(camp.id, quarter, page + 1)
        nav.append(Button("eval.next_button", codec.encode(on)))
    if nav:
        buttons.append(tuple(nav))
    answered = sum(1 for r, _ in open_rows if r.grade is not None)
    return Reply(
        template,
        {
            "quarter": quarter,
            "entries": entries,
            "page": page + 1,
            "pages": pages,
            "answered": answered,
            "total": len(open_rows),
        },
        buttons=tuple(buttons),
        edit_message_id=edit_message_id,
    )


async def my_open_quarters(session: AsyncSession, rater_id: int) -> list[tuple[Campaign, str]]:
    """Return the (campaign, quarter) pairs in which someone still has ratings they may give."""
    rows = (
        await session.exec(
            select(Campaign, Evaluation.quarter)
            .join(Evaluation, col(Evaluation.campaign_id) == Campaign.id)
            .join(Rating, col(Rating.evaluation_id) == Evaluation.id)
            .where(
                Rating.rater_id == rater_id,
                col(Evaluation.status).in_([EvalStatus.OPEN, EvalStatus.PENDING]),
            )
            .distinct()
        )
    ).all()
    return [(camp, quarter) for camp, quarter in rows]


# --------------------------------------------------------------------------- answering


async def _rating_for(session: AsyncSession, actor: Actor, rating_id: int):
    rating = await session.get(Rating, rating_id)
    if rating is None or rating.rater_id != actor.member_id:
        raise DomainError("error.forbidden")
    ev = await session.get(Evaluation, rating.evaluation_id)
    if not _open_for(rating, ev):
        raise DomainError("eval.closed")
    return rating, ev


async def rate(
    session: AsyncSession,
    actor: Actor,
    rating_id: int,
    grade: Grade,
    *,
    codec: CallbackCodec,
    now: datetime | None = None,
) -> tuple[Rating, Evaluation]:
    """Give (or change, while open) one grade; a late decisive grade finishes a 待评 result.

    Raises:
        DomainError: ``error.forbidden`` for someone else's rating, ``eval.closed`` after the
            close (except the decisive side of a 待评).
    """
    rating, ev = await _rating_for(session, actor, rating_id)
    rating.grade = grade
    rating.rated_at = now or utcnow()
    session.add(rating)
    await session.flush()
    await audit.record(
        session,
        "evaluation.rated",
        actor=actor.member_id,
        subject=f"evaluation:{ev.id}",
        payload={"rating": rating.id, "side": rating.side.value, "grade": grade.value},
    )
    if ev.status is EvalStatus.PENDING:
        camp = await session.get(Campaign, ev.campaign_id)
        if await _grade(session, camp, ev):
            await _send_result(session, ev)
            await _send_follow_ups(session, codec, [ev], key_suffix=f"late:{ev.id}")
    return rating, ev


async def comment(session: AsyncSession, actor: Actor, rating_id: int, text: str) -> Rating:
    """Keep a short comment with a rating.

    Raises:
        DomainError: ``eval.comment_empty`` or ``error.too_long``.
    """
    rating, ev = await _rating_for(session, actor, rating_id)
    text = text.strip()
    if not text:
        raise DomainError("eval.comment_empty")
    if len(text) > COMMENT_MAX:
        raise DomainError("error.too_long", limit=COMMENT_MAX)
    rating.comment = text
    session.add(rating)
    await audit.record(
        session,
        "evaluation.commented",
        actor=actor.member_id,
        subject=f"evaluation:{ev.id}",
        payload={"rating": rating.id, "comment": text},
    )
    return rating


async def rating_subject(session: AsyncSession, actor: Actor, rating_id: int) -> str:
    """Return the name a rating is about, for the person asked to comment on it."""
    _, ev = await _rating_for(session, actor, rating_id)
    return await subject_name(session, ev)


# --------------------------------------------------------------------------- reminder, close


async def remind(session: AsyncSession, camp: Campaign, q: Quarter, *, codec, today: date) -> int:
    """Remind once each rater who has not answered all of their card (never chase further)."""
    raters = (
        await session.exec(
            select(Rating.rater_id)
            .join(Evaluation, col(Evaluation.id) == Rating.evaluation_id)
            .where(
                Evaluation.campaign_id == camp.id,
                Evaluation.quarter == q.key,
                Evaluation.status == EvalStatus.OPEN,
                col(Rating.grade).is_(None),
            )
            .distinct()
        )
    ).all()
    count = 0
    for rater in sorted(raters):
        card = await rater_card(
            session, codec, camp, q.key, rater, today=today, template="eval.reminder"
        )
        if card is None:
            continue
        count += len(
            await outbox.notify_member(
                session,
                rater,
                card,
                key=f"eval:{camp.id}:{q.key}:remind:{rater}",
                priority=Priority.BROADCAST,
            )
        )
    return count


async def public_totals(session: AsyncSession, ev: Evaluation) -> dict[str, int] | None:
    """Return the public's votes on an organization in the quarter: its closed polls, summed."""
    if ev.owner_kind is not OwnerKind.ORG:
        return None
    polls = (
        await session.exec(
            select(Poll).where(
                Poll.campaign_id == ev.campaign_id,
                Poll.purpose == "eval",
                Poll.org_id == ev.org_id,
                Poll.period == ev.quarter,
                Poll.status == PollStatus.CLOSED,
            )
        )
    ).all()
    if not polls:
        return None
    totals = dict.fromkeys((v.value for v in PublicVote), 0)
    for poll in polls:
        for key in totals:
            totals[key] += int(poll.totals.get(key, 0))
    return totals


async def _grade(session: AsyncSession, camp: Campaign, ev: Evaluation) -> bool:
    """Apply the rule kept with the evaluation; return whether it reached a grade."""
    ratings = (
        await session.exec(
            select(Rating).where(Rating.evaluation_id == ev.id, col(Rating.grade).is_not(None))
        )
    ).all()
    grades: dict[Side, list[Grade]] = defaultdict(list)
    for r in ratings:
        grades[r.side].append(r.grade)
    rule = ev.rule or camp.grade_rule or default_rule()
    combined = combine(rule, ev.owner_kind, grades, await public_totals(session, ev))
    ev.result = combined.as_dict()
    ev.grade = combined.grade
    ev.status = EvalStatus.GRADED if combined.grade else EvalStatus.PENDING
    ev.graded_at = utcnow() if combined.grade else None
    session.add(ev)
    await session.flush()
    await audit.record(
        session,
        "evaluation.graded" if combined.grade else "evaluation.pending",
        actor=None,
        subject=f"evaluation:{ev.id}",
        payload={"quarter": ev.quarter, "subject": ev.subject, "result": ev.result, "rule": rule},
    )
    return combined.grade is not None


def rule_context(rule: dict, kind: OwnerKind) -> dict:
    """Return the rule as a template shows it: weights of the kind's sides, points, thresholds."""
    return {
        "weights": [
            {"side": s.value, "weight": rule["weights"][kind.value][s.value]} for s in SIDES[kind]
        ],
        "points": [{"grade": g.value, "points": rule["points"][g.value]} for g in Grade],
        "public_points": [
            {"vote": v.value, "points": rule["public_points"][v.value]} for v in PublicVote
        ]
        if kind is OwnerKind.ORG
        else [],
        "thresholds": rule["thresholds"],
    }


async def result_context(session: AsyncSession, ev: Evaluation) -> dict:
    """Return what a result shows: the grade, each side's part, the missing sides, the rule."""
    return {
        "quarter": ev.quarter,
        "name": await subject_name(session, ev),
        "kind": ev.owner_kind.value,
        "grade": ev.grade.value if ev.grade else None,
        "score": ev.result.get("score"),
        "parts": ev.result.get("parts", []),
        "missing": ev.result.get("missing", []),
        "rule": rule_context(ev.rule, ev.owner_kind),
    }


async def _send_result(session: AsyncSession, ev: Evaluation) -> int:
    ctx = await result_context(session, ev)
    if ev.owner_kind is OwnerKind.MEMBER:
        targets = [ev.member_id]
    else:
        targets = await people.secretaries(session, ev.org_id)
    count = 0
    for member_id in targets:
        count += len(
            await outbox.notify_member(
                session,
                member_id,
                Reply("eval.result", ctx),
                key=f"eval:{ev.campaign_id}:{ev.quarter}:result:{ev.id}:{member_id}",
            )
        )
    return count


async def _follow_up_raters(session: AsyncSession, ev: Evaluation) -> list[int]:
    """Return who records the follow-up: the branch's secretaries, or the level above an org."""
    org = await session.get(Org, ev.org_id)
    if ev.owner_kind is OwnerKind.MEMBER:
        found = await people.holders(session, Role.SECRETARY, org.id, {ev.member_id})
        return found or await upper_raters(session, org, {ev.member_id})
    return await upper_raters(session, org, set())


async def _send_follow_ups(
    session: AsyncSession, codec: CallbackCodec, evs: list[Evaluation], *, key_suffix: str
) -> int:
    """Flag 一般 and 差 to whoever follows them up, with one-tap records (never automated)."""
    flagged: dict[int, list[Evaluation]] = defaultdict(list)
    for ev in evs:
        if ev.grade in (Grade.FAIR, Grade.POOR):
            for member_id in await _follow_up_raters(session, ev):
                flagged[member_id].append(ev)
    count = 0
    for member_id, rows in flagged.items():
        entries, buttons = [], []
        for n, ev in enumerate(rows, start=1):
            entries.append(
                {"n": n, "name": await subject_name(session, ev), "grade": ev.grade.value}
            )
            buttons.append(
                tuple(
                    Button(
                        f"eval.follow.{action.value}",
                        codec.encode(FollowCb(ev.id, action)),
                        context={"n": n},
                    )
                    for action in FollowUp
                )
            )
        count += len(
            await outbox.notify_member(
                session,
                member_id,
                Reply(
                    "eval.follow_card",
                    {"quarter": rows[0].quarter, "entries": entries},
                    buttons=tuple(buttons),
                ),
                key=f"eval:{rows[0].campaign_id}:{rows[0].quarter}:follow:{key_suffix}:{member_id}",
            )
        )
    return count


async def close_quarter(
    session: AsyncSession,
    camp: Campaign,
    q: Quarter,
    *,
    codec: CallbackCodec,
    chart: ChartHook | None = None,
) -> int:
    """Grade every open evaluation of the quarter and send the results.

    Each member gets their grade and how it was made up; each branch's results go to its
    linked groups and to the level above (with ``chart``'s attachment when given — the hook
    for the documents work; text only without it); 一般/差 go to the secretary to follow up;
    a 待评 reminds the decisive rater once. Returns the messages queued.
    """
    evs = (
        await session.exec(
            select(Evaluation)
            .where(
                Evaluation.campaign_id == camp.id,
                Evaluation.quarter == q.key,
                Evaluation.status == EvalStatus.OPEN,
            )
            .order_by(col(Evaluation.org_id), col(Evaluation.id))
        )
    ).all()
    count = 0
    pending: dict[int, int] = defaultdict(int)
    by_org: dict[int, list[Evaluation]] = defaultdict(list)
    for ev in evs:
        by_org[ev.org_id].append(ev)
        if await _grade(session, camp, ev):
            count += await _send_result(session, ev)
            continue
        decisive = REQUIRED[ev.owner_kind]
        raters = (
            await session.exec(
                select(Rating.rater_id).where(
                    Rating.evaluation_id == ev.id, Rating.side == decisive
                )
            )
        ).all()
        for rater in raters:
            pending[rater] += 1
    for rater in sorted(pending):
        card = await rater_card(
            session, codec, camp, q.key, rater, today=q.last, template="eval.pending_notice"
        )
        if card is not None:
            count += len(
                await outbox.notify_member(
                    session, rater, card, key=f"eval:{camp.id}:{q.key}:pending:{rater}"
                )
            )
    for org_id, rows in by_org.items():
        count += await _branch_results(session, camp, q, org_id, rows, chart)
    count += await _send_follow_ups(session, codec, list(evs), key_suffix="close")
    count += await _dissatisfied(session, camp, q, list(evs))
    return count


async def branch_results(session: AsyncSession, q: str, org_id: int, rows: list) -> dict:
    """Return a branch's results as data: each member's grade (or 待评), for text or a chart.

    Besides the named entries it holds the outcomes counted: ``kinds`` (members' and the
    organization's final grades, 待评 included) and ``sides`` (the grades each side gave the
    members). Counts only: nobody is ordered by grade.
    """
    org = await session.get(Org, org_id)
    entries = []
    for ev in rows:
        entries.append(
            {
                "name": await subject_name(session, ev),
                "kind": ev.owner_kind.value,
                "grade": ev.grade.value if ev.grade else None,
                "score": ev.result.get("score"),
            }
        )
    counts = {g.value: sum(1 for e in entries if e["grade"] == g.value) for g in Grade}
    counts["pending"] = sum(1 for e in entries if e["grade"] is None)
    kinds = {}
    for kind in OwnerKind:
        mine = [e for e in entries if e["kind"] == kind.value]
        if mine:
            kinds[kind.value] = {
                **{g.value: sum(1 for e in mine if e["grade"] == g.value) for g in Grade},
                "pending": sum(1 for e in mine if e["grade"] is None),
            }
    member_ids = [ev.id for ev in rows if ev.owner_kind is OwnerKind.MEMBER]
    given: dict[str, dict[str, int]] = {}
    if member_ids:
        found = await session.exec(
            select(Rating.side, Rating.grade, func.count())
            .where(col(Rating.evaluation_id).in_(member_ids), col(Rating.grade).is_not(None))
            .group_by(Rating.side, Rating.grade)
        )
        for side, grade, n in found.all():
            given.setdefault(Side(side).value, dict.fromkeys((g.value for g in Grade), 0))
            given[Side(side).value][Grade(grade).value] = int(n)
    sides = [
        {"side": s.value, "counts": given[s.value]}
        for s in SIDES[OwnerKind.MEMBER]
        if s.value in given
    ]
    rule = rows[0].rule if rows else {}
    return {
        "org": org.name if org else "",
        "quarter": q,
        "entries": entries[:RESULTS_NAMED],
        "more": max(0, len(entries) - RESULTS_NAMED),
        "counts": counts,
        "kinds": kinds,
        "sides": sides,
        "rule": rule_context(rule, OwnerKind.MEMBER) if rule else None,
    }


async def _branch_results(
    session: AsyncSession,
    camp: Campaign,
    q: Quarter,
    org_id: int,
    rows: list[Evaluation],
    chart: ChartHook | None,
) -> int:
    data = await branch_results(session, q.key, org_id, rows)
    groups = await grouplink.groups_of(session, org_id)
    org = await session.get(Org, org_id)
    above = await upper_raters(session, org, set())
    # the chart is drawn only for a branch whose results go somewhere
    attachment = await chart(data) if chart and (groups or above) else None
    reply = Reply("eval.branch_results", data, attachment=attachment)
    count = 0
    for group in groups:
        if await outbox.enqueue(
            session,
            platform=group.platform,
            chat_id=group.chat_id,
            reply=reply,
            locale=GROUP_LOCALE,
            key=f"eval:{camp.id}:{q.key}:branch:{org_id}:{group.platform}:{group.chat_id}",
        ):
            count += 1
    for member_id in above:
        count += len(
            await outbox.notify_member(
                session,
                member_id,
                reply,
                key=f"eval:{camp.id}:{q.key}:upper:{org_id}:{member_id}",
                priority=Priority.BROADCAST,
            )
        )
    return count


def dissatisfied(totals: dict[str, int] | None) -> bool:
    """Tell whether the public was dissatisfied: 不满意 outnumbers 满意 and 基本满意 together."""
    if not totals:
        return False
    no = totals.get(PublicVote.DISSATISFIED.value, 0)
    return no > totals.get(PublicVote.SATISFIED.value, 0) + totals.get(PublicVote.BASIC.value, 0)


async def _dissatisfied(
    session: AsyncSession, camp: Campaign, q: Quarter, evs: list[Evaluation]
) -> int:
    """Report 差 together with public dissatisfaction to the campaign office above."""
    count = 0
    for ev in evs:
        if ev.grade is not Grade.POOR:
            continue
        org_ev = ev
        if ev.owner_kind is OwnerKind.MEMBER:
            org_ev = (
                await session.exec(
                    select(Evaluation).where(
                        Evaluation.campaign_id == ev.campaign_id,
                        Evaluation.quarter == ev.quarter,
                        Evaluation.subject == f"o:{ev.org_id}",
                    )
                )
            ).first()
        totals = await public_totals(session, org_ev) if org_ev else None
        if not dissatisfied(totals):
            continue
        org = await session.get(Org, ev.org_id)
        ctx = {**await result_context(session, ev), "org": org.name, "totals": totals}
        for level in await _ancestors(session, org):
            office = await people.holders(session, Role.OFFICE, level.id, set())
            for member_id in office:
                count += len(
                    await outbox.notify_member(
                        session,
                        member_id,
                        Reply("eval.poor_reported", ctx),
                        key=f"eval:{camp.id}:{q.key}:poor:{ev.id}:{member_id}",
                    )
                )
            if office:
                break
    return count


# --------------------------------------------------------------------------- follow-up


async def record_follow_up(
    session: AsyncSession, actor: Actor, evaluation_id: int, action: FollowUp
) -> Evaluation:
    """Record what was done about a 一般 or 差 (谈话提醒 / 批评教育 / 限期整改), once.

    Raises:
        DomainError: ``error.forbidden`` unless the actor follows this subject up,
            ``eval.no_follow_up`` unless graded 一般 or 差, ``eval.followed_already``.
    """
    ev = await session.get(Evaluation, evaluation_id)
    if ev is None or actor.member_id not in await _follow_up_raters(session, ev):
        raise DomainError("error.forbidden")
    if ev.grade not in (Grade.FAIR, Grade.POOR):
        raise DomainError("eval.no_follow_up")
    if ev.follow_up is not None:
        raise DomainError("eval.followed_already", action=ev.follow_up.value)
    ev.follow_up = action
    ev.follow_up_by = actor.member_id
    ev.follow_up_at = utcnow()
    session.add(ev)
    await audit.record(
        session,
        "evaluation.follow_up",
        actor=actor.member_id,
        subject=f"evaluation:{ev.id}",
        payload={"action": action.value, "grade": ev.grade.value, "quarter": ev.quarter},
    )
    return ev


async def name_of_pledge(session: AsyncSession, ev: Evaluation) -> str:
    """Return the owner's name of the evaluated pledge (for the rectification prompt)."""
    pledge = await session.get(Pledge, ev.pledge_id)
    return await owner_name(session, pledge) if pledge else ""
