"""SMS in the core: an unbound member is prompted by SMS and answers by SMS; Telegram's 403 falls
back to SMS once; /channel.

Every test runs on SQLite and PostgreSQL (the ``store`` fixture) through the core, the calendar
and the real outbox worker. The platforms are recording messengers: "test" for the chat
harness's Telegram-like seats, "sms" for the gateway (which another module provides), and a
"telegram" messenger that answers like a blocked bot (403).
"""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from bot.delivery import DeliveryError
from bot.outbox import OutboxWorker
from campaign import fulfil, outbox, supervise
from handlers.events import Sender, TextReceived
from models import Account, AuditEvent, Campaign, Channel, DialogState, Member, Org, Outbox
from models.progress import Pause, Progress, ProgressReport
from models.reply import Reply
from reminders.jobs import Jobs
from tests.chat import MEMBER, PEER, PHONES, REVIEWER, SECRETARY
from tests.conftest import RecordingMessenger, a_campaign, seed_people
from tests.handlers.test_report import MONTH, TODAY, Bot, at, publish_member_pledge

PHONE = PHONES[MEMBER]
STRANGER = "13900000099"


class BlockedMessenger(RecordingMessenger):
    """Telegram for a person who blocked the bot: every send is refused with 403."""

    async def send(self, chat_id, message):
        raise DeliveryError("Forbidden: bot was blocked by the user", blocked=True)


@pytest.fixture
async def world(store):
    store.sms_enabled = True
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    b = Bot(store, people)
    b.sms = RecordingMessenger(platform="sms")
    b.worker = OutboxWorker(store, {"test": b.messenger, "sms": b.sms})
    for chat in (SECRETARY, REVIEWER):
        await b.bind(chat)  # the member is not bound: SMS is their channel
    b.pledge_id, b.item_ids = await publish_member_pledge(store, people, b.core.codec)
    await b.worker.run_once()
    return b


async def mo(b: Bot, text: str, phone: str = PHONE):
    """A mobile-originated SMS, as the SMS runtime hands it to the core."""
    b._update += 1
    return await b.send(
        TextReceived(
            sender=Sender(platform="sms", user_id=phone, chat_id=phone),
            text=text,
            update_id=f"mo-{b._update}",
        )
    )


def sms_texts(b: Bot, phone: str = PHONE) -> list[str]:
    return b.sms.texts(phone)


async def month_reports(b: Bot) -> dict[int, ProgressReport]:
    rows = await b.rows(ProgressReport, ProgressReport.month == MONTH)
    return {r.item_id: r for r in rows}


async def ledger_months(b: Bot) -> list[str | None]:
    async with b.store.read() as s:
        camp = (await s.exec(select(Campaign))).one()
        village = await s.get(Org, b.people.orgs["village"])
        rows = [r async for r in supervise.ledger_rows(s, camp.id, village.path, TODAY)]
    return [r.months.get(MONTH) for r in rows if r.item_id in b.item_ids]


async def test_an_unbound_member_is_prompted_by_sms_replies_1_and_the_ledger_shows_it(world):
    b = world
    # the decision reached the member by SMS, in its short wording
    assert any("已审核通过并公示" in t for t in sms_texts(b))
    queued = await Jobs(b.store, b.core.codec).tick(at(2026, 5, 20, 10))
    assert queued["prompt"] == 1
    await b.worker.run_once()
    (prompt,) = [t for t in sms_texts(b) if "回复1" in t]
    assert "2026年5月" in prompt and "2项" in prompt
    async with b.store.read() as s:
        rows = (await s.exec(select(Outbox).where(Outbox.platform == "sms"))).all()
    (row,) = [r for r in rows if r.payload["template"] == "sms.report.prompt"]
    assert "buttons" not in row.payload and row.chat_id == PHONE
    # the look-back of the item due on 15 May came as it comes, by SMS too
    assert any(r.payload["template"] == "sms.lookback.ask_owner" for r in rows)

    await mo(b, "1")
    assert "全部按计划" in sms_texts(b)[-1]
    reports = await month_reports(b)
    assert {r.status for r in reports.values()} == {Progress.ON_TRACK} and len(reports) == 2
    assert await ledger_months(b) == ["on_track", "on_track"]
    async with b.store.read() as s:
        camp = (await s.exec(select(Campaign))).one()
        assert await fulfil.due_reporters(s, camp, MONTH, TODAY) == []
    # the same SMS delivered twice by the gateway is handled once; "1" again changes nothing
    before = len(sms_texts(b))
    handled = await b.send(
        TextReceived(
            sender=Sender(platform="sms", user_id=PHONE, chat_id=PHONE),
            text="1",
            update_id=f"mo-{b._update}",
        )
    )
    assert handled.duplicate and len(sms_texts(b)) == before
    await mo(b, "1")
    assert "无需再报" in sms_texts(b)[-1]
    # nobody is reminded: the month is answered
    await Jobs(b.store, b.core.codec).tick(at(2026, 5, 25, 10))
    async with b.store.read() as s:
        reminders = (
            await s.exec(select(Outbox).where(Outbox.dedup_key.like("reminder:%")))  # type: ignore[union-attr]
        ).all()
    assert reminders == []


async def test_2_with_a_reason_records_the_difficulty_and_tells_the_secretary(world):
    b = world
    await mo(b, "2 花椒收购商还没联系上")
    assert "有困难" in sms_texts(b)[-1]
    reports = await month_reports(b)
    assert {(r.status, r.note) for r in reports.values()} == {
        (Progress.BLOCKED, "花椒收购商还没联系上")
    }
    told = [t for t in b.messenger.texts(SECRETARY) if "花椒收购商还没联系上" in t]
    # one notice for the one answer, naming both items (it was one notice per item)
    assert len(told) == 1 and told[0].count("「") == 2
    assert await ledger_months(b) == ["blocked", "blocked"]
    await mo(b, "2 花椒收购商还没联系上")  # the same answer again tells nobody twice
    assert len([t for t in b.messenger.texts(SECRETARY) if "花椒收购商" in t]) == 1


async def test_3_with_a_date_pauses_a_bad_date_gets_help_once_and_changes_nothing(world):
    b = world
    await mo(b, "3 7月31日")
    assert "暂停" in sms_texts(b)[-1] and "2026年7月31日" in sms_texts(b)[-1]
    pauses = await b.rows(Pause)
    assert [p.ends_on.isoformat() for p in pauses] == ["2026-07-31"]

    sent = len(sms_texts(b))
    await mo(b, "3 下下个星期")
    assert len(sms_texts(b)) == sent + 1 and "回复" in sms_texts(b)[-1]  # the help
    await mo(b, "3 2020年1月1日")  # a date in the past: help is not sent twice in a row
    await mo(b, "好的收到")
    assert len(sms_texts(b)) == sent + 1
    assert len(await b.rows(Pause)) == 1 and await month_reports(b) == {}
    # an answer ends the silence: the next unreadable text gets the help again
    await mo(b, "1")
    await mo(b, "？")
    assert "TD" in sms_texts(b)[-1] and len(sms_texts(b)) == sent + 3


async def test_td_opts_out_and_nothing_more_goes_by_sms(world):
    b = world
    await mo(b, "TD")
    assert "已退订" in sms_texts(b)[-1]
    sent = len(sms_texts(b))
    async with b.store.read() as s:
        member = await s.get(Member, b.people.ids["member"])
        kinds = (await s.exec(select(AuditEvent.kind))).all()
    assert member.channel is Channel.NONE and "channel.opted_out" in kinds
    queued = await Jobs(b.store, b.core.codec).tick(at(2026, 5, 20, 10))
    assert queued.get("prompt", 0) == 0
    async with b.store.write() as s:
        rows = await outbox.notify_member(
            s, b.people.ids["member"], Reply("report.overdue_notice", {}), key="x"
        )
    assert rows == []
    await mo(b, "TD")
    await mo(b, "你好")
    await mo(b, "1")  # still recorded, never answered
    await b.worker.run_once()
    assert len(sms_texts(b)) == sent
    assert len(await month_reports(b)) == 2
    # the person may come back by SMS
    await mo(b, "恢复")
    assert "已恢复" in sms_texts(b)[-1]
    async with b.store.read() as s:
        routes = (await outbox.member_routes(s, [b.people.ids["member"]]))[b.people.ids["member"]]
    assert [r.platform for r in routes] == ["sms"]


async def test_a_number_not_on_the_roster_changes_nothing_and_gets_no_answer(world, caplog):
    b = world
    before = await b.count(Outbox)
    with caplog.at_level(logging.INFO):
        for text in ("1", "TD", "2 没钱", "你好"):
            handled = await mo(b, text, STRANGER)
            assert handled.outbox_ids == ()
    assert await b.count(Outbox) == before and sms_texts(b, STRANGER) == []
    assert (
        await month_reports(b) == {}
        and await b.count(DialogState, DialogState.platform == "sms") == 0
    )
    assert "****0099" in caplog.text and STRANGER not in caplog.text


async def test_telegram_403_marks_the_account_and_sends_the_same_message_by_sms_once(world):
    b = world
    member = b.people.ids["member"]
    async with b.store.write() as s:
        s.add(Account(platform="telegram", external_id="tg-1", chat_id="tg-1", member_id=member))
    blocked = BlockedMessenger(platform="telegram")
    worker = OutboxWorker(b.store, {"telegram": blocked, "sms": b.sms})
    before = len(sms_texts(b))
    queued = await Jobs(b.store, b.core.codec).tick(at(2026, 5, 20, 10))
    assert queued["prompt"] == 1  # to Telegram: the member is bound there now
    async with b.store.write() as s:  # and a kind that has no SMS wording
        await outbox.notify_member(
            s, member, Reply("publish.no_group", {"org": "东江村党支部"}), key="nosms"
        )
    await worker.run_once()
    async with b.store.read() as s:
        account = (await s.exec(select(Account).where(Account.platform == "telegram"))).one()
        dead = (await s.exec(select(Outbox).where(Outbox.platform == "telegram"))).all()
    assert not account.active and account.end_reason == "blocked"
    assert {r.status for r in dead} == {"dead"}
    await worker.run_once()
    await worker.run_once()
    new = sms_texts(b)[before:]
    # each message with an SMS wording once (the prompt, the overdue notice, the look-back);
    # the no-group notice has none and is not sent by SMS
    assert len(new) == len(set(new)) == len(dead) - 1
    assert [t for t in new if "回复1" in t] and not [t for t in new if "公示群" in t]
    # the calendar's reminder later goes by SMS directly (no Telegram account is active)
    async with b.store.read() as s:
        sms_rows = (await s.exec(select(Outbox).where(Outbox.platform == "sms"))).all()
    prompt_rows = [r for r in sms_rows if (r.dedup_key or "").startswith("prompt:")]
    assert len(prompt_rows) == 1 and prompt_rows[0].dedup_key.endswith(f":sms:{PHONE}")
    # asked again for the same row, the campaign queues nothing
    async with b.store.write() as s:
        dead = (
            await s.exec(
                select(Outbox).where(Outbox.platform == "telegram", Outbox.status == "dead")
            )
        ).all()
        assert dead and all([await outbox.after_blocked(s, r.id) == 0 for r in dead])
    async with b.store.read() as s:
        kinds = (await s.exec(select(AuditEvent.kind))).all()
    assert kinds.count("account.blocked") == 1


async def test_channel_is_chosen_with_buttons_and_routes_follow(world):
    b = world
    await b.bind(PEER)
    await b.cmd(PEER, "channel")
    assert "自动" in b.last(PEER) and "0003" in b.last(PEER)
    assert b.labels(PEER) == ["自动", "Telegram", "短信", "不接收"]
    await b.press(PEER, "短信")
    assert "短信" in b.last(PEER)
    peer = b.people.ids["peer"]
    async with b.store.read() as s:
        routes = (await outbox.member_routes(s, [peer]))[peer]
    assert routes == [outbox.Route("sms", PHONES[PEER], "zh_CN")]
    await b.cmd(PEER, "channel", "Telegram")
    async with b.store.read() as s:
        routes = (await outbox.member_routes(s, [peer]))[peer]
    assert [r.platform for r in routes] == ["test"]
    await b.cmd(PEER, "channel", "信鸽")
    assert "信鸽" in b.last(PEER)
