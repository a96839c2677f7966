"""Supervision in chat: ledgers opened from above, what members say reaching the secretary.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture), through the core, the
outbox and a recording messenger, pressing the buttons the bot actually sent.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import update

from campaign import fulfil
from handlers.events import ContactShared
from handlers.oversee import LedgerCb, PhotosCb, RemindCb
from models import Account, Org, OrgType, Outbox, Pledge
from models.pledge import OwnerKind
from models.progress import Pause, PauseReason, Rectification
from tests.chat import MEMBER, REVIEWER, SECRETARY, sender
from tests.conftest import a_campaign, seed_people
from tests.handlers.test_report import ITEM_2, Bot, publish_member_pledge

OFFICE = "5"


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    b = Bot(store, people)
    for chat in (MEMBER, SECRETARY, REVIEWER):
        await b.bind(chat)
    await b.send(ContactShared(sender=sender(OFFICE), phone="13800000005", contact_user_id=OFFICE))
    b.pledge_id, b.item_ids = await publish_member_pledge(store, people, b.core.codec)
    await b.worker.run_once()
    b.messenger.sent.clear()
    b.messenger.edits.clear()
    return b


async def test_the_district_office_drills_down_to_who_has_not_reported(bot):
    """Found: the district office was refused every branch ledger."""
    sent = len(bot.messenger.sent)
    await bot.cmd(OFFICE, "ledger")
    assert "武都区：下级单位 1 个" in bot.last(OFFICE)
    assert bot.labels(OFFICE) == ["📂 城关镇"]
    await bot.press(OFFICE, "城关镇")
    assert "城关镇：下级单位 1 个" in bot.last(OFFICE)
    await bot.press(OFFICE, "东江村党支部")
    ledger, people = bot.messenger.texts(OFFICE)[-2:]
    assert "【台账】东江村党支部" in ledger and "张建国" in ledger and "超期" in ledger
    assert "本月未报（1 人）：张建国" in people and "尚无公示承诺：李书记、王党员" in people
    # From above, 限期整改 is offered on the overdue item too.
    assert "🔧 限期整改 1" in [b.text for row in bot.messenger.sent[-2][1].buttons for b in row]
    assert bot.taps == 2 and len(bot.messenger.sent) - sent == 4  # one command, two taps


async def test_a_reviewer_sees_below_its_level_and_nobody_outside_it(bot):
    await bot.cmd(REVIEWER, "ledger")
    assert bot.labels(REVIEWER) == ["📂 东江村党支部"]  # the township's own is not below it
    await bot.press(REVIEWER, "东江村党支部")
    assert "本月未报（1 人）：张建国" in bot.last(REVIEWER)
    codec = bot.core.codec
    township = bot.people.orgs["township"]
    county = bot.people.orgs["county"]
    before = len(bot.messenger.sent)
    for chat, cb in (
        (REVIEWER, LedgerCb(township, 0, True)),  # its own level, from above: no
        (REVIEWER, LedgerCb(county)),  # above it: no
        (MEMBER, LedgerCb(bot.people.orgs["village"])),  # a member: no
        (SECRETARY, LedgerCb(township)),  # a secretary, above the branch: no
    ):
        await bot.press_data(chat, codec.encode(cb))
        assert "权限" in bot.toasts[-1] or "无权" in bot.toasts[-1], bot.toasts[-1]
    assert len(bot.messenger.sent) == before
    await bot.cmd(MEMBER, "ledger")
    assert "您没有相应职责" in bot.last(MEMBER)


async def test_a_difficulty_a_note_and_a_photo_reach_the_secretary(bot):
    """Found: members were told the secretary would see the reason; nobody ever did."""
    await bot.cmd(MEMBER, "report")
    await bot.press(MEMBER, "☐2 有困难")
    await bot.say(MEMBER, "苗木款未到位，推迟到6月采购")
    await bot.worker.run_once()
    notice = bot.last(SECRETARY)
    assert "遇到困难" in notice and "张建国" in notice and ITEM_2 in notice
    assert "苗木款未到位" in notice
    # The card is completed: a note and a photo follow, and reach the secretary too.
    await bot.press(MEMBER, "☐1 按计划")
    await bot.say(MEMBER, "已联系县农技站")
    await bot.photo(MEMBER, "photo-file-7", caption="培训现场")
    await bot.worker.run_once()
    mine = [m for c, m in bot.messenger.sent if c == SECRETARY]
    assert "已联系县农技站" in mine[-2].text
    assert mine[-1].attachment == {"kind": "photo", "file_id": "photo-file-7"}
    assert "践诺佐证" in mine[-1].text and "培训现场" in mine[-1].text
    assert await bot.count(Outbox, Outbox.dedup_key.like("blocked:%")) == 1
    # The same photo again is not forwarded twice.
    await bot.photo(MEMBER, "photo-file-7")
    assert await bot.count(Outbox, Outbox.dedup_key.like("evidence:%")) == 2

    # In the ledger and the branch's summary, beside the item.
    await bot.cmd(SECRETARY, "ledger")
    ledger = bot.messenger.texts(SECRETARY)[-2]
    assert "💬 苗木款未到位" in ledger and "📷 佐证照片 1 张" in ledger
    # The photos themselves, from the ledger, to whoever may see it.
    await bot.press(SECRETARY, "📷 照片 2")
    (shown,) = [m for c, m in bot.messenger.sent[-1:] if c == SECRETARY]
    assert shown.attachment == {"kind": "photo", "file_id": "photo-file-7"}
    await bot.press_data(MEMBER, bot.core.codec.encode(PhotosCb(bot.item_ids[1])))
    assert "权限" in bot.toasts[-1]
    await bot.cmd(SECRETARY, "summary")
    card = bot.last(SECRETARY)
    assert "遇到困难：" in card and "苗木款未到位，推迟到6月采购" in card
    assert "已联系县农技站" in card


async def test_a_pause_is_shown_in_the_ledger_and_when_rectifying(bot):
    async with bot.store.write() as s:
        s.add(
            Pause(
                member_id=bot.people.ids["member"],
                starts_on=date(2026, 5, 1),
                ends_on=date(2026, 8, 31),
                reason=PauseReason.MIGRANT,
                created_by=bot.people.ids["member"],
            )
        )
    await bot.cmd(SECRETARY, "ledger")
    ledger, people = bot.messenger.texts(SECRETARY)[-2:]
    assert "⏸ 外出务工，至2026年8月31日" in ledger
    assert "暂停提醒：张建国（外出务工，至2026年8月31日）" in people
    await bot.press(SECRETARY, "限期整改 1")
    asked = bot.messenger.texts(SECRETARY)[-2:]
    assert "张建国目前暂停提醒（外出务工，至2026年8月31日）" in asked[0]
    assert "整改原因" in asked[1]


async def test_a_member_silent_for_two_months_can_be_given_a_rectification(bot):
    # Published in March: asked in April and May, answered neither.
    async with bot.store.write() as s:
        await s.exec(
            update(Pledge)
            .where(Pledge.id == bot.pledge_id)
            .values(published_at=bot.now.replace(month=3))
        )
    await bot.cmd(SECRETARY, "ledger")
    assert "连续两个月未报送" in bot.last(SECRETARY)
    await bot.press(SECRETARY, "限期整改 张建国")
    assert "2026-04、2026-05" in bot.last(SECRETARY) and "整改原因" in bot.last(SECRETARY)
    await bot.say(SECRETARY, "连续两个月未报送进度")
    await bot.say(SECRETARY, "6月10日")
    assert "已对张建国提出限期整改" in bot.last(SECRETARY)
    (rect,) = await bot.rows(Rectification)
    assert rect.item_id is None and rect.pledge_id == bot.pledge_id
    await bot.worker.run_once()
    assert "连续两个月未报送进度" in bot.last(MEMBER)


async def test_no_rectification_for_silence_when_the_member_has_reported(bot):
    async with bot.store.write() as s:
        await s.exec(
            update(Pledge)
            .where(Pledge.id == bot.pledge_id)
            .values(published_at=bot.now.replace(month=3))
        )
    await bot.cmd(SECRETARY, "ledger")
    data, message_id = bot.find(SECRETARY, "限期整改 张建国")
    await bot.cmd(MEMBER, "report")
    await bot.press(MEMBER, "全部按计划推进")
    await bot.press_data(SECRETARY, data, message_id)
    assert "过期" in bot.toasts[-1]
    assert await bot.count(Rectification) == 0
    # Published this month: never "two months silent".
    async with bot.store.write() as s:
        await s.exec(update(Pledge).where(Pledge.id == bot.pledge_id).values(published_at=bot.now))
    await bot.cmd(SECRETARY, "ledger")
    assert "连续两个月" not in bot.last(SECRETARY)


async def test_many_units_are_paged_and_the_page_is_turned_in_place(bot, monkeypatch):
    monkeypatch.setattr("handlers.oversee.CHILDREN_PER_PAGE", 1)
    async with bot.store.write() as s:
        town = await s.get(Org, bot.people.orgs["township"])
        org = Org(
            name="西坪村党支部",
            full_name=f"{town.full_name}/西坪村党支部",
            type=OrgType.VILLAGE,
            parent_id=town.id,
            depth=town.depth + 1,
        )
        s.add(org)
        await s.flush()
        org.path = f"{town.path}{org.id}/"
    await bot.cmd(REVIEWER, "ledger")
    assert "（第 1/2 页）" in bot.last(REVIEWER)
    assert bot.labels(REVIEWER) == ["📂 东江村党支部", "下一页 ▶"]
    await bot.press(REVIEWER, "下一页")
    assert "（第 2/2 页）" in bot.last(REVIEWER)  # the same message, edited
    assert bot.labels(REVIEWER) == ["📂 西坪村党支部"]
    await bot.press(REVIEWER, "西坪村党支部")
    texts = bot.messenger.texts(REVIEWER)[-2:]
    assert "西坪村党支部还没有已公示的承诺事项" in texts[0]
    assert "本月已公示承诺的党员均已报送" in texts[1]


async def test_someone_not_bound_cannot_be_reminded_and_the_secretary_is_told(bot):
    async with bot.store.write() as s:
        await s.exec(
            update(Account)
            .where(Account.member_id == bot.people.ids["member"])
            .values(active=False)
        )
    await bot.cmd(SECRETARY, "summary")
    await bot.press(SECRETARY, "确认上报")
    await bot.press(SECRETARY, "提醒未报的人")
    assert "1 人尚未绑定账号" in bot.last(SECRETARY)
    assert await bot.count(Outbox, Outbox.dedup_key.like("reminder:%")) == 0
    # Another branch's secretary, or a forged month, changes nothing.
    codec = bot.core.codec
    village = bot.people.orgs["village"]
    await bot.press_data(MEMBER, codec.encode(RemindCb(village, 202605)))
    await bot.press_data(SECRETARY, codec.encode(RemindCb(village, 202604)))
    assert "已截止" in bot.toasts[-1]


async def test_an_organizations_difficulty_goes_to_the_level_above(bot):
    village, member = bot.people.orgs["village"], bot.people.ids["member"]
    async with bot.store.read() as s:
        own = Pledge(campaign_id=1, owner_kind=OwnerKind.ORG, org_id=village, drafted_by=member)
        mine = Pledge(
            campaign_id=1, owner_kind=OwnerKind.MEMBER, org_id=village, drafted_by=member
        )
        mine.owner_member_id = member
        assert await fulfil.overseers(s, own) == [bot.people.ids["reviewer"]]
        assert await fulfil.overseers(s, mine) == [bot.people.ids["secretary"]]
