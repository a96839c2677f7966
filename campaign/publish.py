"""S4 公开亮承诺: publish an approved pledge — the pledge letter, the display post, the listing.

Display posts carry no member's phone number: nothing in their context holds one. The basic
pledge's public office and supervision numbers are the exception it exists for, and they sit
in the items' own text, which the secretary wrote for posting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, cards, grouplink, outbox, people, propose
from models.base import utcnow
from models.callbacks import CallbackCodec, CallbackData
from models.campaign import Campaign
from models.dialog import Priority
from models.org import Org
from models.pledge import Pledge, PledgeEvent, PledgeStatus, apply
from models.reply import Button, Reply

GROUP_LOCALE = "zh_CN"


@dataclass(frozen=True)
class PrintCb(CallbackData):
    """The printable version (.docx) of a published pledge: its letter or its display table."""

    prefix = "prn"
    pledge_id: int
    what: str


async def item_states(session: AsyncSession, pledge: Pledge, today: date) -> list[str]:
    """Return each item's state for display: done (crossed off), overdue or on track."""
    out = []
    for item in await propose.items_of(session, pledge.id):
        if item.done_on is not None:
            out.append("done")
        elif item.deadline is not None and item.deadline < today:
            out.append("overdue")
        else:
            out.append("on_track")
    return out


def _with_states(ctx: dict, states: list[str]) -> dict:
    items = [{**it, "state": state} for it, state in zip(ctx["items"], states, strict=False)]
    return {**ctx, "items": items}


async def publish(
    session: AsyncSession, pledge: Pledge, *, actor_id: int, codec: CallbackCodec | None = None
) -> None:
    """Publish an approved pledge: letter to its drafters, post to the org's groups.

    With ``codec`` the letter and the post carry a button for their printable version.
    """
    pledge.status = apply(pledge.status, PledgeEvent.PUBLISH)
    pledge.published_at = utcnow()
    session.add(pledge)
    await session.flush()
    ctx = await cards.pledge_context(session, pledge, snapshot=True)
    ctx["published_at"] = pledge.published_at.isoformat()
    camp = await session.get(Campaign, pledge.campaign_id)
    local = pledge.published_at.astimezone(ZoneInfo(camp.timezone))
    v = pledge.version

    def printable(what: str) -> tuple:
        if codec is None:
            return ()
        try:
            data = codec.encode(PrintCb(pledge.id, what))
        except ValueError:  # a codec without the printable button (a tool's, a test's)
            return ()
        return ((Button("print.button", data),),)

    letter = Reply("publish.letter", ctx, buttons=printable("letter"))
    post = Reply(
        "publish.post",
        _with_states(ctx, await item_states(session, pledge, local.date())),
        buttons=printable("display"),
    )
    for member_id in await people.owners(session, pledge):
        await outbox.notify_member(
            session, member_id, letter, key=f"letter:{pledge.id}:{v}:{member_id}"
        )
    groups = await grouplink.groups_of(session, pledge.org_id)
    for group in groups:
        await outbox.enqueue(
            session,
            platform=group.platform,
            chat_id=group.chat_id,
            reply=post,
            locale=GROUP_LOCALE,
            key=f"post:{pledge.id}:{v}:{group.platform}:{group.chat_id}",
            priority=Priority.NOTICE,
        )
    if not groups:
        org = await session.get(Org, pledge.org_id)
        for member_id in await people.secretaries(session, pledge.org_id):
            await outbox.notify_member(
                session,
                member_id,
                Reply("publish.no_group", {"org": org.name}),
                key=f"nogroup:{pledge.org_id}:{pledge.id}:{v}:{member_id}",
            )
    await audit.record(
        session,
        "pledge.published",
        actor=actor_id,
        subject=f"pledge:{pledge.id}",
        payload={"version": v, "groups": [f"{g.platform}:{g.chat_id}" for g in groups]},
    )


async def listing(
    session: AsyncSession, org_id: int, limit: int = 30, today: date | None = None
) -> list[dict]:
    """Return the published pledges of one organization: its own first, then its members'.

    With ``today`` each item carries its state (crossed off, in progress, overdue).
    """
    rows = (
        await session.exec(
            select(Pledge)
            .where(Pledge.org_id == org_id, Pledge.status == PledgeStatus.PUBLISHED)
            .order_by(col(Pledge.owner_kind).desc(), col(Pledge.published_at))
            .limit(limit)
        )
    ).all()
    out = []
    for p in rows:
        ctx = await cards.pledge_context(session, p, snapshot=True)
        if today is not None:
            ctx = _with_states(ctx, await item_states(session, p, today))
        out.append(ctx)
    return out
