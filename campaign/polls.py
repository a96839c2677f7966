"""Native polls in an organization's linked groups: open, read their totals, close on time.

A poll goes out through the outbox as a reply with a ``PollSpec`` (its row's key names the
poll: ``poll:<id>:send``); the messenger returns ``<message id>:<platform poll id>``, which is how
a platform's poll update (anonymous: totals only) finds its poll. The calendar closes each poll
after the campaign's ``poll_days``: the stop goes out as an edit of the poll's message, and the
totals the platform reports are what the evaluation and the look-back read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, grouplink, outbox
from models.base import utcnow
from models.campaign import Campaign
from models.dialog import Outbox
from models.evaluation import Poll, PollStatus, PublicVote
from models.reply import PollSpec, Reply

GROUP_LOCALE = "zh_CN"
#: the options of every public poll, as label keys, in ``PublicVote`` order
OPTIONS: tuple[str, ...] = tuple(f"eval.vote.{v.value}" for v in PublicVote)


def send_key(poll_id: int) -> str:
    """Return the outbox key of a poll's message."""
    return f"poll:{poll_id}:send"


async def open_polls(
    session: AsyncSession,
    camp: Campaign,
    *,
    org_id: int,
    purpose: str,
    period: str,
    template: str,
    context: dict,
    now: datetime | None = None,
    item_ids: Iterable[int] = (),
) -> list[Poll]:
    """Open one poll in each group linked to an organization (none without a group)."""
    now = now or utcnow()
    groups = await grouplink.groups_of(session, org_id, polls=True)
    out = []
    for group in groups:
        existing = (
            await session.exec(
                select(Poll).where(
                    Poll.campaign_id == camp.id,
                    Poll.purpose == purpose,
                    Poll.org_id == org_id,
                    Poll.period == period,
                    Poll.platform == group.platform,
                    Poll.chat_id == group.chat_id,
                )
            )
        ).first()
        if existing is not None:
            continue
        poll = Poll(
            campaign_id=camp.id,
            purpose=purpose,
            org_id=org_id,
            period=period,
            platform=group.platform,
            chat_id=group.chat_id,
            item_ids=list(item_ids),
            totals=dict.fromkeys((v.value for v in PublicVote), 0),
            opened_at=now,
            closes_at=now + timedelta(days=camp.poll_days),
        )
        session.add(poll)
        await session.flush()
        await outbox.enqueue(
            session,
            platform=group.platform,
            chat_id=group.chat_id,
            reply=Reply(template, context, poll=PollSpec(OPTIONS, anonymous=True, ref=poll.id)),
            locale=GROUP_LOCALE,
            key=send_key(poll.id),
        )
        await audit.record(
            session,
            "poll.opened",
            actor=None,
            subject=f"org:{org_id}",
            payload={"poll": poll.id, "purpose": purpose, "period": period},
        )
        out.append(poll)
    return out


def _split(sent_message_id: str | None) -> tuple[str | None, str | None]:
    if not sent_message_id:
        return None, None
    message_id, _, poll_id = sent_message_id.partition(":")
    return message_id, poll_id or None


async def _learn_ids(session: AsyncSession, poll: Poll) -> None:
    """Fill in the poll's message and platform ids from its delivered outbox row."""
    if poll.message_id is not None:
        return
    sent = (
        await session.exec(
            select(Outbox.sent_message_id).where(Outbox.dedup_key == send_key(poll.id))
        )
    ).first()
    poll.message_id, poll.platform_poll_id = _split(sent)


async def close_due(session: AsyncSession, camp: Campaign, now: datetime) -> int:
    """Close the campaign's polls whose time is up: stop them in their groups, keep the totals."""
    due = (
        await session.exec(
            select(Poll).where(
                Poll.campaign_id == camp.id,
                Poll.status == PollStatus.OPEN,
                col(Poll.closes_at) <= now,
            )
        )
    ).all()
    count = 0
    for poll in due:
        await _learn_ids(session, poll)
        poll.status = PollStatus.CLOSED
        poll.closed_at = now
        session.add(poll)
        if poll.message_id is not None:
            stop = Reply(
                "eval.poll_closed",
                {},
                edit_message_id=poll.message_id,
                poll=PollSpec(OPTIONS, ref=poll.id, stop=True),
            )
            if await outbox.enqueue(
                session,
                platform=poll.platform,
                chat_id=poll.chat_id,
                reply=stop,
                locale=GROUP_LOCALE,
                key=f"poll:{poll.id}:stop",
            ):
                count += 1
        await audit.record(
            session,
            "poll.closed",
            actor=None,
            subject=f"org:{poll.org_id}",
            payload={"poll": poll.id, "totals": poll.totals},
        )
    return count


async def record_update(
    session: AsyncSession, platform: str, poll_id: str, counts: tuple[int, ...], closed: bool
) -> Poll | None:
    """Keep a poll's latest totals (anonymous: counts only); None for a poll not ours."""
    poll = (
        await session.exec(
            select(Poll).where(Poll.platform == platform, Poll.platform_poll_id == poll_id)
        )
    ).first()
    if poll is None:
        row = (
            await session.exec(
                select(Outbox.dedup_key).where(
                    Outbox.platform == platform,
                    col(Outbox.dedup_key).like("poll:%:send"),
                    col(Outbox.sent_message_id).endswith(f":{poll_id}"),
                )
            )
        ).first()
        if row is None:
            return None
        poll = await session.get(Poll, int(row.split(":")[1]))
        if poll is None:
            return None
        await _learn_ids(session, poll)
    poll.totals = {
        v.value: int(counts[i]) if i < len(counts) else 0 for i, v in enumerate(PublicVote)
    }
    if closed and poll.status is PollStatus.OPEN:
        poll.status = PollStatus.CLOSED
        poll.closed_at = utcnow()
    session.add(poll)
    await session.flush()
    return poll
