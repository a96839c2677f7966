"""The review and peer cards: their callback data and their content, built from the database.

Cards are rebuilt from the records whenever they change (a criterion ticked, a peer's
opinion, the decision), so every copy of a card can be edited to the same truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import fit, propose
from campaign.quality import Finding
from models.callbacks import CallbackCodec, CallbackData
from models.campaign import DEFAULT_TIMEZONE, Campaign
from models.org import Member, Org, formal_name
from models.pledge import (
    Criterion,
    OwnerKind,
    Pledge,
    PledgeSnapshot,
    PledgeStatus,
    Review,
    ReviewChecklist,
    Verdict,
)
from models.progress import ProgressReport
from models.reply import Button, Reply

CRITERIA: tuple[Criterion, ...] = tuple(Criterion)


@dataclass(frozen=True)
class ReviewCb(CallbackData):
    """通过 or 退回修改 on one version of a pledge."""

    prefix = "rv"
    pledge_id: int
    version: int
    verdict: Verdict


@dataclass(frozen=True)
class CriterionCb(CallbackData):
    """Tick or untick one of the five criteria on a review card."""

    prefix = "rc"
    pledge_id: int
    version: int
    criterion: Criterion


@dataclass(frozen=True)
class ReasonCb(CallbackData):
    """Return for a short reason tied to a criterion; ``None`` goes back to the card."""

    prefix = "rr"
    pledge_id: int
    version: int
    reason: Criterion | None = None


@dataclass(frozen=True)
class ConfirmCb(CallbackData):
    """符合，通过: the reviewer confirms all five criteria at once, and approves."""

    prefix = "ra"
    pledge_id: int
    version: int


@dataclass(frozen=True)
class FullTextCb(CallbackData):
    """全文: send the whole application form of one version, which the card shows shortened."""

    prefix = "rf"
    pledge_id: int
    version: int


@dataclass(frozen=True)
class PeerCb(CallbackData):
    """A peer's opinion: agree, or suggest a change (a comment follows)."""

    prefix = "pr"
    pledge_id: int
    version: int
    verdict: Verdict


@dataclass(frozen=True)
class RectCb(CallbackData):
    """A step of a rectification: the owner claims it done; the opener closes or reopens it."""

    prefix = "rx"
    rect_id: int
    action: str


CARD_TYPES: tuple[type[CallbackData], ...] = (
    ReviewCb,
    CriterionCb,
    ReasonCb,
    ConfirmCb,
    FullTextCb,
    PeerCb,
    RectCb,
)
#: on a shortened card, at most this many quality hints per 20 characters of cap
FINDINGS_PER_20 = 1
#: a return typed without picking an unmet criterion must say at least this much
REASON_MIN_CHARS = 4
#: earlier monthly reports shown per item, newest last
REPORTS_SHOWN = 12


def card_key(pledge_id: int, version: int) -> str:
    """Return the outbox key prefix of every review card of one version."""
    return f"card:{pledge_id}:{version}:"


def peer_key(pledge_id: int, version: int) -> str:
    """Return the outbox key prefix of every peer card of one version."""
    return f"peer:{pledge_id}:{version}:"


def findings_context(findings: list[Finding] | list[dict], *, reviewer: bool) -> list[dict]:
    """Return findings as message keys with their context, for templates."""
    out = []
    for f in findings:
        if isinstance(f, dict):
            key = f["reviewer_key"] if reviewer else f["key"]
            out.append({"key": key, "ctx": f["ctx"], "severity": f["severity"]})
        else:
            out.append(
                {
                    "key": f.message_key(reviewer=reviewer),
                    "ctx": f.context,
                    "severity": f.severity.value,
                }
            )
    return out


def findings_record(findings: list[Finding]) -> list[dict]:
    """Return findings as they are kept in a snapshot."""
    return [
        {
            "code": f.code,
            "key": f.message_key(),
            "reviewer_key": f.message_key(reviewer=True),
            "ctx": f.context,
            "severity": f.severity.value,
        }
        for f in findings
    ]


async def owner_name(session: AsyncSession, pledge: Pledge) -> str:
    """Return the name shown for a pledge's owner: the member's, or the organization's."""
    if pledge.owner_kind is OwnerKind.MEMBER:
        member = await session.get(Member, pledge.owner_member_id)
        return member.name if member else ""
    org = await session.get(Org, pledge.org_id)
    return org.name if org else ""


async def pledge_context(session: AsyncSession, pledge: Pledge, *, snapshot: bool) -> dict:
    """Return what every pledge template shows: owner, organization, profile and items.

    ``tz`` is the campaign's time zone, for the templates' ``datetime(tz)`` filter.
    """
    org = await session.get(Org, pledge.org_id)
    if snapshot:
        snap = (
            await session.exec(
                select(PledgeSnapshot).where(
                    PledgeSnapshot.pledge_id == pledge.id,
                    PledgeSnapshot.version == pledge.version,
                )
            )
        ).first()
        items = snap.items if snap else []
    else:
        items = [propose.item_snapshot(i) for i in await propose.items_of(session, pledge.id)]
    camp = await session.get(Campaign, pledge.campaign_id)
    return {
        "pledge_id": pledge.id,
        "version": pledge.version,
        "tz": camp.timezone if camp else DEFAULT_TIMEZONE,
        "kind": pledge.owner_kind.value,
        "owner": await owner_name(session, pledge),
        "org": org.name if org else "",
        "org_full": formal_name(org.full_name) if org else "",
        "category": pledge.category,
        "post": pledge.post,
        "status": pledge.status.value,
        "items": items,
    }


async def peer_opinions(session: AsyncSession, pledge_id: int, version: int) -> list[dict]:
    """Return the peers' opinions on one version, oldest first."""
    rows = (
        await session.exec(
            select(Review, Member.name)
            .join(Member, col(Member.id) == Review.reviewer_id)
            .where(
                Review.pledge_id == pledge_id,
                Review.pledge_version == version,
                Review.kind == "peer",
            )
            .order_by(col(Review.id))
        )
    ).all()
    return [{"name": name, "verdict": r.decision, "opinion": r.opinion} for r, name in rows]


async def decision_of(session: AsyncSession, pledge_id: int, version: int) -> dict | None:
    """Return the decision taken on one version, if any."""
    row = (
        await session.exec(
            select(Review, Member.name)
            .join(Member, col(Member.id) == Review.reviewer_id)
            .where(
                Review.pledge_id == pledge_id,
                Review.pledge_version == version,
                Review.kind == "decision",
            )
        )
    ).first()
    if row is None:
        return None
    review, name = row
    return {
        "verdict": review.decision,
        "by": name,
        "at": review.decided_at.isoformat(),
        "reasons": review.reasons,
        "opinion": review.opinion,
        "criteria": review.criteria,
    }


async def ticked(session: AsyncSession, pledge_id: int, version: int, reviewer_id: int) -> list:
    """Return the criteria one reviewer has ticked on one version."""
    row = (
        await session.exec(
            select(ReviewChecklist).where(
                ReviewChecklist.pledge_id == pledge_id,
                ReviewChecklist.version == version,
                ReviewChecklist.reviewer_id == reviewer_id,
            )
        )
    ).first()
    return list(row.criteria) if row else []


async def snapshot_of(
    session: AsyncSession, pledge_id: int, version: int
) -> PledgeSnapshot | None:
    """Return the snapshot taken when one version was submitted."""
    return (
        await session.exec(
            select(PledgeSnapshot).where(
                PledgeSnapshot.pledge_id == pledge_id, PledgeSnapshot.version == version
            )
        )
    ).first()


async def earlier_reports(session: AsyncSession, items: list[dict]) -> list[list[dict]]:
    """Return, for each item of a snapshot, the monthly reports made on it, oldest first.

    An item keeps its identity across versions (a revision edits the same rows, and the
    snapshot keeps each row's id), so the reports on a revised item are those on its row.
    """
    ids = [it["id"] for it in items if it.get("id")]
    found: dict[int, list[dict]] = {}
    if ids:
        rows = (
            await session.exec(
                select(ProgressReport)
                .where(col(ProgressReport.item_id).in_(ids))
                .order_by(col(ProgressReport.month))
            )
        ).all()
        for r in rows:
            found.setdefault(r.item_id, []).append(
                {"month": r.month, "status": r.status.value, "note": r.note}
            )
    return [found.get(it.get("id"), [])[-REPORTS_SHOWN:] for it in items]


def _shorten_card(ctx: dict[str, Any], cap: int) -> dict[str, Any]:
    """Return a copy of a card's context with every free text cut to ``cap`` characters."""
    out = dict(ctx)
    out["clipped"] = True
    out["items"] = [
        {
            **it,
            "content": fit.clip(it.get("content"), cap),
            "goal": fit.clip(it.get("goal"), cap),
            "measures": fit.clip(it.get("measures"), cap),
            "reports": [
                {**r, "note": fit.clip(r["note"], cap // 4) if cap >= 4 * fit.CAP_FLOOR else ""}
                for r in it.get("reports", [])
            ],
        }
        for it in ctx["items"]
    ]
    if "peers" in ctx:
        out["peers"] = [{**p, "opinion": fit.clip(p["opinion"], cap)} for p in ctx["peers"]]
    if ctx.get("decision"):
        out["decision"] = {**ctx["decision"], "opinion": fit.clip(ctx["decision"]["opinion"], cap)}
    if ctx.get("answer"):
        out["answer"] = {**ctx["answer"], "opinion": fit.clip(ctx["answer"]["opinion"], cap)}
    if ctx.get("findings"):
        shown = min(len(ctx["findings"]), FINDINGS_PER_20 * cap // 20)
        out["findings"] = ctx["findings"][:shown]
        out["findings_more"] = len(ctx["findings"]) - shown
    return out


def _fitted(
    template: str, ctx: dict[str, Any], codec: CallbackCodec, rows: list, pledge_id: int
) -> tuple[dict[str, Any], tuple[tuple[Button, ...], ...]]:
    """Shorten a card to one message if it must be; a shortened card offers 全文."""
    ctx.setdefault("clipped", False)
    ctx.setdefault("findings_more", 0)
    ctx, clipped = fit.fit(template, ctx, _shorten_card)
    if clipped:
        full = codec.encode(FullTextCb(pledge_id, ctx["version"]))
        rows = [*rows, (Button("review.full_button", full),)]
    return ctx, tuple(rows)


async def review_card(
    session: AsyncSession,
    codec: CallbackCodec,
    pledge: Pledge,
    reviewer_id: int,
    *,
    version: int | None = None,
    edit_message_id: str | None = None,
    choosing_reason: bool = False,
    confirming: bool = False,
) -> Reply:
    """Return the review card of one version as one reviewer sees it now.

    ``choosing_reason`` shows the unmet criteria to return for; ``confirming`` asks once
    whether all five criteria are met before approving. A card too long for one message shows
    its texts shortened and a 全文 button.
    """
    version = version or pledge.version
    snap = await snapshot_of(session, pledge.id, version)
    ctx: dict[str, Any] = await pledge_context(session, pledge, snapshot=True)
    ctx["version"] = version
    items = snap.items if snap else ctx["items"]
    reports = await earlier_reports(session, items)
    ctx["items"] = [{**it, "reports": r} for it, r in zip(items, reports, strict=True)]
    ctx["findings"] = findings_context(snap.findings if snap else [], reviewer=True)
    ctx["peers"] = await peer_opinions(session, pledge.id, version)
    ctx["decision"] = await decision_of(session, pledge.id, version)
    ctx["ticked"] = await ticked(session, pledge.id, version, reviewer_id)
    ctx["criteria"] = [c.value for c in CRITERIA]
    ctx["stale"] = ctx["decision"] is None and (
        pledge.version != version or pledge.status is not PledgeStatus.SUBMITTED
    )
    open_card = ctx["decision"] is None and not ctx["stale"]
    ctx["choosing_reason"] = choosing_reason and open_card
    ctx["confirming"] = confirming and open_card and not choosing_reason
    ctx["reason_min"] = REASON_MIN_CHARS
    rows: list[tuple[Button, ...]] = []
    if ctx["choosing_reason"]:
        unmet = [c for c in CRITERIA if c.value not in ctx["ticked"]]
        rows = [
            (Button(f"review.reason.{c.value}", codec.encode(ReasonCb(pledge.id, version, c))),)
            for c in unmet
        ]
        rows.append((Button("review.back", codec.encode(ReasonCb(pledge.id, version))),))
    elif ctx["confirming"]:
        rows = [
            (Button("review.confirm_all", codec.encode(ConfirmCb(pledge.id, version))),),
            (Button("review.back", codec.encode(ReasonCb(pledge.id, version))),),
        ]
    elif open_card:
        checks = tuple(
            Button(
                "review.criterion_button",
                codec.encode(CriterionCb(pledge.id, version, c)),
                context={"criterion": c.value, "on": c.value in ctx["ticked"]},
            )
            for c in CRITERIA
        )
        verdicts = (
            Button("review.approve", codec.encode(ReviewCb(pledge.id, version, Verdict.APPROVE))),
            Button("review.return", codec.encode(ReviewCb(pledge.id, version, Verdict.RETURN))),
        )
        rows = [checks[:3], checks[3:], verdicts]
    ctx, buttons = _fitted("review.card", ctx, codec, rows, pledge.id)
    return Reply("review.card", ctx, buttons=buttons, edit_message_id=edit_message_id)


async def peer_card(
    session: AsyncSession,
    codec: CallbackCodec,
    pledge: Pledge,
    peer_id: int,
    *,
    version: int | None = None,
    edit_message_id: str | None = None,
) -> Reply:
    """Return the card asking a peer for their opinion, or showing it once given."""
    version = version or pledge.version
    ctx: dict[str, Any] = await pledge_context(session, pledge, snapshot=True)
    ctx["version"] = version
    snap = await snapshot_of(session, pledge.id, version)
    ctx["items"] = snap.items if snap else ctx["items"]
    mine = (
        await session.exec(
            select(Review).where(
                Review.pledge_id == pledge.id,
                Review.pledge_version == version,
                Review.kind == "peer",
                Review.reviewer_id == peer_id,
            )
        )
    ).first()
    ctx["answer"] = {"verdict": mine.decision, "opinion": mine.opinion} if mine else None
    ctx["closed"] = pledge.version != version or pledge.status is not PledgeStatus.SUBMITTED
    rows: list[tuple[Button, ...]] = []
    if mine is None and not ctx["closed"]:
        rows = [
            (
                Button("peer.agree", codec.encode(PeerCb(pledge.id, version, Verdict.AGREE))),
                Button("peer.suggest", codec.encode(PeerCb(pledge.id, version, Verdict.SUGGEST))),
            ),
        ]
    ctx, buttons = _fitted("peer.card", ctx, codec, rows, pledge.id)
    return Reply("peer.card", ctx, buttons=buttons, edit_message_id=edit_message_id)
