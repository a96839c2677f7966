"""The public side: a native poll in the linked group, its totals from poll updates, closed by
the calendar after ``poll_days``, read by the quarter's close; 差 with public dissatisfaction is
reported to the office above."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.outbox import OutboxWorker
from campaign import evaluate
from campaign.access import load_actor
from handlers.events import PollUpdated, Sender
from models import (
    Account,
    Evaluation,
    Grade,
    GroupLink,
    Outbox,
    Pledge,
    PledgeItem,
    PledgeStatus,
    Poll,
    PollStatus,
    Rating,
    Side,
)
from models.pledge import OwnerKind
from reminders.jobs import Jobs
from tests.chat import MEMBER, REVIEWER, SECRETARY, ChatBot, EditingMessenger
from tests.conftest import a_campaign, seed_people

CST = ZoneInfo("Asia/Shanghai")
GROUP = "-100500"
OFFICE = "5"


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=CST).astimezone(UTC)


class PollMessenger(EditingMessenger):
    """Answers a sent poll as Telegram does: ``<message id>:<poll id>``."""

    async def send(self, chat_id, message):
        self.sent.append((chat_id, message))
        n = len(self.sent)  # taken before yielding, so lanes sending at once get their own
        await asyncio.sleep(0)
        return f"{n}:poll-{n}" if message.poll else str(n)


class Bot(ChatBot):
    def __init__(self, store, people):
        self.now = at(2026, 7, 1)
        super().__init__(store, people, lambda: self.now, editing=True)
        self.messenger = PollMessenger()
        self.worker = OutboxWorker(store, {"test": self.messenger})
        self.updates = 0

    async def tick(self, when):
        self.now = when
        queued = await Jobs(self.store, self.core.codec).tick(when)
        while await self.worker.run_once():
            pass
        return queued

    async def poll_update(self, poll_id, counts, closed=False):
        self.updates += 1
        return await self.send(
            PollUpdated(
                sender=Sender(platform="test", user_id="poll", chat_id="poll"),
                update_id=f"poll-update-{self.updates}",
                poll_id=poll_id,
                counts=counts,
                closed=closed,
            )
        )


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        camp = a_campaign(people, 2026)
        s.add(camp)
        await s.flush()
        s.add(
            GroupLink(
                platform="test",
                chat_id=GROUP,
                org_id=people.orgs["village"],
                title="东江村",
                linked_by=people.ids["secretary"],
            )
        )
        for key in ("member", None):
            pledge = Pledge(
                campaign_id=camp.id,
                owner_kind=OwnerKind.MEMBER if key else OwnerKind.ORG,
                org_id=people.orgs["village"],
                owner_member_id=people.ids[key] if key else None,
                drafted_by=people.ids[key or "secretary"],
                status=PledgeStatus.PUBLISHED,
                published_at=at(2026, 4, 20),
            )
            s.add(pledge)
            await s.flush()
            s.add(PledgeItem(pledge_id=pledge.id, content="x", deadline=date(2026, 12, 1)))
    async with store.write() as s:
        s.add(
            Account(
                platform="test", external_id=OFFICE, chat_id=OFFICE, member_id=people.ids["office"]
            )
        )
    b = Bot(store, people)
    for chat in (MEMBER, SECRETARY, REVIEWER):
        await b.bind(chat)
    b.messenger.sent.clear()
    return b


async def test_the_public_poll_feeds_the_organizations_grade(bot):
    await bot.tick(at(2026, 7, 1))
    polls = [(c, m) for c, m in bot.messenger.sent if m.poll is not None]
    assert len(polls) == 1
    chat, message = polls[0]
    (sent,) = await bot.rows(Outbox, Outbox.dedup_key == "poll:1:send")
    number, poll_id = sent.sent_message_id.split(":")  # what the platform answered
    assert chat == GROUP and "东江村党支部 2026年第2季度" in message.text
    assert message.poll.options == ("满意", "基本满意", "不满意") and message.poll.anonymous
    # the platform reports votes as they come (anonymous totals only); a redelivered update
    # and an update about somebody else's poll change nothing
    await bot.poll_update(poll_id, (1, 0, 2))
    again = await bot.send(
        PollUpdated(
            sender=Sender(platform="test", user_id="poll", chat_id="poll"),
            update_id="poll-update-1",
            poll_id=poll_id,
            counts=(9, 9, 9),
        )
    )
    assert again.duplicate
    await bot.poll_update("not-ours", (5, 5, 5))
    (poll,) = await bot.rows(Poll)
    assert poll.totals == {"satisfied": 1, "basic": 0, "dissatisfied": 2}
    assert poll.status is PollStatus.OPEN and poll.platform_poll_id == poll_id
    # seven days later the calendar stops it in the group, once
    queued = await bot.tick(at(2026, 7, 8))
    assert queued.get("poll_close") == 1
    stops = [m for c, m in bot.messenger.edits if m.poll is not None and m.poll.stop]
    assert len(stops) == 1 and stops[0].edit_message_id == number
    assert "poll_close" not in await bot.tick(at(2026, 7, 9))
    await bot.poll_update(poll_id, (1, 0, 4), closed=True)  # the final totals
    (poll,) = await bot.rows(Poll)
    assert poll.status is PollStatus.CLOSED
    assert poll.totals == {"satisfied": 1, "basic": 0, "dissatisfied": 4}

    # the organization graded 差 by itself and by the level above
    org_ev = (await bot.rows(Evaluation, Evaluation.owner_kind == OwnerKind.ORG))[0]
    for rating in await bot.rows(Rating, Rating.evaluation_id == org_ev.id):
        async with bot.store.write() as s:
            actor = await load_actor(s, rating.rater_id)
            await evaluate.rate(s, actor, rating.id, Grade.POOR, codec=bot.core.codec)
    await bot.tick(at(2026, 7, 15))
    (org_ev,) = await bot.rows(Evaluation, Evaluation.owner_kind == OwnerKind.ORG)
    # public (1·100 + 4·40)/5 = 52; (20·50 + 50·50 + 30·52)/100 = 50.6 → 差
    assert org_ev.grade is Grade.POOR and org_ev.result["score"] == 50.6
    public = next(p for p in org_ev.result["parts"] if p["side"] == Side.PUBLIC.value)
    assert public == {"side": "public", "weight": 30, "count": 5, "mean": 52.0}
    # the group sees the branch's results; the county office gets the report of 差 together
    # with public dissatisfaction
    assert any("综合评承诺结果" in t for t in bot.messenger.texts(GROUP))
    reported = [m.text for c, m in bot.messenger.sent if c == OFFICE and "【报告】" in m.text]
    assert (
        len(reported) == 1
        and "东江村党支部 2026年第2季度 综合评定为“差”，且群众评价以不满意为主" in reported[0]
    )
    assert "满意1、基本满意0、不满意4" in reported[0]
