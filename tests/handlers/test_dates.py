"""Every date the bot accepts lies in the campaign window, rectification deadlines included.

Found: a rectification deadline of 9999-12-31 was accepted.
"""

from __future__ import annotations

from datetime import date

import pytest

from campaign import propose
from campaign.access import load_actor
from campaign.setup import change_calendar, open_campaign
from models import Campaign, Pause, Rectification
from models.errors import DomainError
from templates import catalog
from tests.chat import MEMBER, REVIEWER, SECRETARY
from tests.conftest import a_campaign, seed_people
from tests.handlers.test_report import Bot, publish_member_pledge


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    b = Bot(store, people)
    for chat in (MEMBER, SECRETARY, REVIEWER):
        await b.bind(chat)
    b.pledge_id, b.item_ids = await publish_member_pledge(store, people, b.core.codec)
    await b.worker.run_once()
    b.messenger.sent.clear()
    return b


def outside(day: str, earliest: str, latest: str = "2026-12-31") -> str:
    return catalog().render(
        "date.outside_campaign", "zh_CN", date=day, earliest=earliest, latest=latest
    )


@pytest.mark.parametrize("typed", ["9999-12-31", "2027-01-05", "2030年6月"])
async def test_a_rectification_deadline_after_the_campaign_is_refused(bot, typed):
    await bot.cmd(SECRETARY, "ledger")
    await bot.press(SECRETARY, "限期整改 1")
    await bot.say(SECRETARY, "事项已超期未完成，群众有意见")
    await bot.say(SECRETARY, typed)
    assert "不在本次活动期内" in bot.last(SECRETARY)
    assert "2026年5月21日至2026年12月31日" in bot.last(SECRETARY)
    assert await bot.rows(Rectification) == []
    # the question stays open: a date inside the window is taken
    await bot.say(SECRETARY, "12月31日")
    (rect,) = await bot.rows(Rectification)
    assert rect.deadline == date(2026, 12, 31)


async def test_a_pause_past_the_campaign_end_is_refused(bot):
    await bot.cmd(MEMBER, "report")
    await bot.press(MEMBER, "暂停提醒")
    await bot.press(MEMBER, "外出务工")
    await bot.say(MEMBER, "2027-03-01")  # within a year, but after the campaign
    assert bot.last(MEMBER) == outside("2027-03-01", "2026-05-20")
    assert await bot.rows(Pause) == []
    await bot.say(MEMBER, "12月31日")
    (pause,) = await bot.rows(Pause)
    assert pause.ends_on == date(2026, 12, 31)


async def test_a_draft_item_deadline_in_9999_is_refused(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    async with store.read() as s:
        me = await load_actor(s, people.ids["member"])
    async with store.write() as s:
        (target,) = [t for t in await propose.targets(s, me) if t.owner.value == "member"]
        pledge = await propose.open_draft(
            s, me, target, today=date(2026, 4, 1), render=lambda k: catalog().render(k, "zh_CN")
        )
        item = await propose.add_item(s, me, pledge.id)
        pid, iid = pledge.id, item.id
    for typed in ("9999-12-31", "0001-01-01", "2026-02-28", "2027-01-01"):
        with pytest.raises(DomainError) as caught:
            async with store.write() as s:
                await propose.set_item_field(s, me, pid, iid, "deadline", typed, year=2026)
        assert caught.value.key == "date.outside_campaign"
    async with store.write() as s:
        await propose.set_item_field(s, me, pid, iid, "deadline", "2026-12-31", year=2026)


async def test_a_campaign_cannot_end_in_9999(store):
    people = await seed_people(store)
    with pytest.raises(DomainError) as caught:
        async with store.write() as s:
            await open_campaign(
                s, "陇南市", 2026, starts_on=date(2026, 1, 1), ends_on=date(9999, 12, 31)
            )
    assert caught.value.key == "date.campaign_year"
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    with pytest.raises(DomainError) as caught:
        async with store.write() as s:
            await change_calendar(s, "陇南市", 2026, {"ends_on": date(9999, 12, 31)})
    assert caught.value.key == "date.campaign_year"
    (camp,) = [c async for c in _campaigns(store)]
    assert camp.ends_on == date(2026, 12, 31)


async def _campaigns(store):
    from sqlmodel import select

    async with store.read() as s:
        for c in (await s.exec(select(Campaign))).all():
            yield c
