"""End to end: a branch of five evaluated in one quarter over Telegram (每季一评).

The real bot process delivers what the calendar queues; the test process ticks the calendar
(with the documents port, as the bot's own scheduler does) at chosen times (the quarter's
opening, the poll's close, the evaluation's close) on the bot's database. A second, shorter test
runs the public's poll with the bot behind its webhook (the proxy posts the poll's updates
there, as Telegram does). Five members rate themselves and their peers, the secretary rates the branch, the
评议员 rates its members, the township reviewer rates the secretary and the organization, the
public votes in the branch's group through a native poll (the proxy's stand-in for Telegram's),
and the results are posted to the group with the grade chart (a PNG upload). The burden is counted from what the chats show.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select

from models import Member, Pledge, PledgeItem, PledgeStatus, Role, RoleGrant
from models.org import Org
from models.pledge import OwnerKind
from reminders.jobs import Jobs
from reports.service import Reports
from tests.e2e.client import TelegramUser
from tests.e2e.conftest import free_port, new_user_id
from tests.e2e.test_pledge_loop import (
    MEMBER,
    NAMES,
    PEER_A,
    PEER_B,
    SECRETARY,
    TOWNSHIP_REVIEWER,
    VILLAGE_BRANCH,
    WAIT,
    ZONE,
    bot_codec,
    db_rows,
    msg,
    open_campaign_today,
    with_store,
)

pytestmark = pytest.mark.e2e

FIFTH = "13912340005"
EVALUATOR = "13800000008"
PHONES = {**NAMES, FIFTH: "马小军", EVALUATOR: "周德福"}
MEMBERS = (MEMBER, SECRETARY, PEER_A, PEER_B, FIFTH)


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=ZONE).astimezone(UTC)


def a_branch_of_five(db_url: str) -> None:
    """Next year's campaign; five members of 东江村 and the branch with published pledges."""
    open_campaign_today(db_url)

    async def work(store: Any) -> None:
        async with store.write() as s:
            village = (await s.exec(select(Org).where(Org.full_name == VILLAGE_BRANCH))).one()
            fifth = Member(name=PHONES[FIFTH], phone=FIFTH, org_id=village.id)
            s.add(fifth)
            await s.flush()
            s.add(RoleGrant(member_id=fifth.id, role=Role.MEMBER, org_id=village.id))
            from models import Campaign

            (camp,) = (await s.exec(select(Campaign))).all()
            secretary = (await s.exec(select(Member).where(Member.phone == SECRETARY))).one()
            for phone in (*MEMBERS, None):
                owner = None
                if phone:
                    owner = (await s.exec(select(Member).where(Member.phone == phone))).one()
                pledge = Pledge(
                    campaign_id=camp.id,
                    owner_kind=OwnerKind.MEMBER if owner else OwnerKind.ORG,
                    org_id=village.id,
                    owner_member_id=owner.id if owner else None,
                    drafted_by=(owner or secretary).id,
                    status=PledgeStatus.PUBLISHED,
                    published_at=datetime.now(UTC),
                )
                s.add(pledge)
                await s.flush()
                s.add(
                    PledgeItem(
                        pledge_id=pledge.id,
                        content="为本组12户留守老人每月上门送医送药",
                        deadline=date(camp.year, 12, 31),
                    )
                )

    with_store(db_url, work)


def tick(bot, when: datetime) -> dict[str, int]:
    async def go(store: Any) -> dict[str, int]:
        return await Jobs(store, bot_codec(), documents=Reports()).tick(when)

    return with_store(bot.db_url, go)


def grade_all(user: TelegramUser, card, grade: str) -> int:
    """Press ``grade`` for every entry of a card, page by page; return the taps."""
    taps = graded = 0
    page = 1
    while True:
        labels = [b["text"] for row in card.buttons for b in row if b["text"].endswith(grade)]
        for label in labels:
            user.press(label, card)
        taps += len(labels)
        graded += len(labels)
        user.wait_for_edit(card, lambda m, n=graded: f"已评 {n}/" in m.text, WAIT * 2)
        if not any(b["text"] == "下一页 ▶" for row in card.buttons for b in row):
            return taps
        user.press("下一页 ▶", card)
        taps += 1
        page += 1
        card = user.wait_for_edit(card, lambda m, p=page: f"第{p}/" in m.text, WAIT)


WEBHOOK_SECRET = "e2e-eval-webhook-secret"


def grade_charts(proxy, bot, group: TelegramUser) -> list:
    """Return the grade charts the bot uploaded to the group."""
    uploads = proxy.uploads(group.chat_id, token=bot.token)
    return [u for u in uploads if u.filename.startswith("评议等次分布")]


def webhook_env() -> dict[str, str]:
    port = free_port()
    return {
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/tg",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
    }


@pytest.mark.both_runtimes
def test_a_branch_of_five_is_evaluated_in_one_quarter(start_bot, emulator, proxy):
    bot = start_bot(prepare=a_branch_of_five)
    year = datetime.now(ZONE).year + 1
    quarter = f"{year}年第1季度"  # shown the Chinese way, never 2027Q1
    people: dict[str, TelegramUser] = {}
    for phone in (*MEMBERS, EVALUATOR, TOWNSHIP_REVIEWER):
        user = TelegramUser(emulator, bot.token, new_user_id(), first_name=PHONES[phone])
        user.share_contact(phone)
        user.wait_for_reply(lambda m: "/help" in m.text)
        people[phone] = user
    group = TelegramUser(
        emulator,
        bot.token,
        people[SECRETARY].user_id,
        first_name=PHONES[SECRETARY],
        chat_id=-(1_000_000_000_000 + people[SECRETARY].user_id),
        chat_type="supergroup",
        chat_title="东江村党员群",
    )
    group.send_command("/bindgroup@TestNameBot")
    assert group.wait_for_reply().text == msg("group.linked", org="东江村党支部")

    # The quarter opens: one card per rater, and a native poll in the group.
    mark = proxy.mark()
    queued = tick(bot, at(year, 4, 1))
    assert queued["eval_open"] == 8  # seven cards and the group's poll
    cards = {
        phone: user.wait_for_reply(lambda m: m.text.startswith(f"【每季一评】{quarter}"), WAIT)
        for phone, user in people.items()
    }
    (poll,) = proxy.polls(bot.token)
    assert poll["chat_id"] == group.chat_id and poll["options"] == ["满意", "基本满意", "不满意"]
    assert "东江村党支部" in poll["question"]
    assert f"{quarter}" in group.wait_for_reply(lambda m: "群众评议" in m.text).text

    # Everyone grades, one tap per person rated; the states come from the records.
    assert "张建国（自评）完成0项 · 推进中1项 · 逾期0项" in cards[MEMBER].text
    taps = {}
    for phone, user in people.items():
        grade = "优秀" if phone == EVALUATOR else "良好"
        taps[phone] = grade_all(user, cards[phone], grade)
    # The public votes: 3 满意, 1 基本满意, 1 不满意 (anonymous totals only).
    proxy.vote(bot.token, poll["id"], 0, 3)
    proxy.vote(bot.token, poll["id"], 1)
    proxy.vote(bot.token, poll["id"], 2)
    deadline = time.monotonic() + WAIT
    want = '{"satisfied": 3, "basic": 1, "dissatisfied": 1}'
    while db_rows(bot, "SELECT totals FROM poll")[0][0].replace(" ", "") != want.replace(" ", ""):
        assert time.monotonic() < deadline, db_rows(bot, "SELECT totals FROM poll")
        time.sleep(0.05)

    # A week on, the calendar stops the poll in the group.
    tick(bot, at(year, 4, 8))
    stop = proxy.wait_for_call("stopPoll", token=bot.token, after=mark, timeout=WAIT)
    assert stop.params["message_id"] == poll["message_id"]
    assert db_rows(bot, "SELECT status FROM poll") == [("closed",)]

    # The close: each member's result with how it was made up, the branch's in the group.
    tick(bot, at(year, 4, 15))
    for phone in MEMBERS:
        head = f"【评议结果】{quarter} {PHONES[phone]}"
        result = people[phone].wait_for_reply(lambda m, h=head: m.text.startswith(h), WAIT)
        assert "评定规则" in result.text
    member = people[MEMBER].last_reply.text
    # self 良好 85, peers 良好 85, secretary 良好 85, evaluator 优秀 100:
    # (10·85 + 20·85 + 40·85 + 30·100) / 100 = 89.5 → 良好 (优秀 needs 90)
    assert "综合评定：良好（89.5分）" in member
    posted = group.wait_for_reply(lambda m: "综合评承诺结果" in m.text, WAIT)
    assert f"【东江村党支部 {quarter} 综合评承诺结果】" in posted.text
    for phone in MEMBERS:
        assert PHONES[phone] in posted.text
    # the grade chart rides with the group's results: a PNG sent as a photo
    # (the quarterly bulletin's files went to the group on the quarter's first day too)
    deadline = time.monotonic() + WAIT
    while not (charts := grade_charts(proxy, bot, group)):
        assert time.monotonic() < deadline, proxy.uploads(group.chat_id, token=bot.token)
        time.sleep(0.05)
    (chart,) = charts
    assert chart.method == "sendPhoto" and chart.filename.startswith("评议等次分布_东江村党支部")
    assert "综合评承诺结果" in (chart.caption or posted.text)
    image = Image.open(io.BytesIO(chart.data))
    assert image.format == "PNG" and image.size == (1080, 1350)
    # the organization: self 良好 85, level above 良好 85, public (3·100+80+40)/5 = 84
    # → (20·85 + 50·85 + 30·84) / 100 = 84.7 → 良好
    (org_result,) = db_rows(bot, "SELECT grade, result FROM evaluation WHERE owner_kind = 'org'")
    assert org_result[0] == "good" and '"score": 84.7' in org_result[1]

    # Burden: messages each person got this quarter and taps they made.
    per_person = {
        phone: len(
            [
                m
                for m in user.bot_messages()
                if m.text.startswith(("【每季一评】", "【提醒】", "【评议结果", "【待评】"))
            ]
        )
        for phone, user in people.items()
    }
    print("\nburden:", {PHONES[p]: (per_person[p], taps[p]) for p in people})
    # the card and the result, nothing more (the secretary: the branch's result too)
    assert all(n <= 2 for p, n in per_person.items() if p != SECRETARY)
    assert per_person[SECRETARY] == 3
    assert max(taps[p] for p in (MEMBER, PEER_A, PEER_B, FIFTH)) <= 4  # self + 3 peers


GROUP_CHAT = -1_000_000_777_001


def a_branch_with_a_group(db_url: str) -> None:
    """The branch of five, and its group linked (as /bindgroup would)."""
    a_branch_of_five(db_url)

    async def work(store: Any) -> None:
        from models.org import GroupLink

        async with store.write() as s:
            village = (await s.exec(select(Org).where(Org.full_name == VILLAGE_BRANCH))).one()
            secretary = (await s.exec(select(Member).where(Member.phone == SECRETARY))).one()
            s.add(
                GroupLink(
                    platform="telegram",
                    chat_id=str(GROUP_CHAT),
                    org_id=village.id,
                    linked_by=secretary.id,
                )
            )

    with_store(db_url, work)


def test_the_public_poll_feeds_the_grade_in_webhook_mode(start_bot, proxy):
    """Webhook mode: the poll's votes and its close reach the bot as posted updates."""
    bot = start_bot(prepare=a_branch_with_a_group, env=webhook_env())
    assert proxy.calls("setWebhook", token=bot.token)
    year = datetime.now(ZONE).year + 1
    mark = proxy.mark()
    tick(bot, at(year, 4, 1))
    deadline = time.monotonic() + WAIT
    while not proxy.polls(bot.token):
        assert time.monotonic() < deadline, "no poll sent"
        time.sleep(0.05)
    (poll,) = proxy.polls(bot.token)
    assert poll["chat_id"] == GROUP_CHAT
    # (people vote once the poll is in the group: the bot has marked it sent by then)
    sent = "SELECT sent_message_id FROM outbox WHERE dedup_key LIKE 'poll:%:send'"
    while db_rows(bot, sent) != [(f"{poll['message_id']}:{poll['id']}",)]:
        assert time.monotonic() < deadline, db_rows(bot, sent)
        time.sleep(0.05)
    answers = len(proxy.webhook_answers)
    proxy.vote(bot.token, poll["id"], 0, 2)
    proxy.vote(bot.token, poll["id"], 2)
    want = '{"satisfied":2,"basic":0,"dissatisfied":1}'
    while db_rows(bot, "SELECT totals FROM poll")[0][0].replace(" ", "") != want:
        assert time.monotonic() < deadline + WAIT, db_rows(bot, "SELECT totals FROM poll")
        time.sleep(0.05)
    # the votes came by the webhook, each accepted once (no getUpdates in this mode)
    posted = [a for a in proxy.webhook_answers[answers:] if a[0] == bot.token]
    assert len(posted) == 2 and all(status == 200 for _, _, status in posted)
    assert not proxy.calls("getUpdates", token=bot.token)
    # the calendar stops the poll; the closing update is posted too
    answers = len(proxy.webhook_answers)
    tick(bot, at(year, 4, 8))
    stop = proxy.wait_for_call("stopPoll", token=bot.token, after=mark, timeout=WAIT)
    assert stop.params["message_id"] == poll["message_id"]
    assert db_rows(bot, "SELECT status FROM poll") == [("closed",)]
    while not [a for a in proxy.webhook_answers[answers:] if a[0] == bot.token]:
        assert time.monotonic() < deadline + 2 * WAIT, "the closed poll was not posted"
        time.sleep(0.05)
    # nobody rated, so the close is 待评 for the members; the organization's public side is in
    tick(bot, at(year, 4, 15))
    (org_result,) = db_rows(bot, "SELECT status, result FROM evaluation WHERE owner_kind = 'org'")
    assert org_result[0] == "pending"
    assert '"side": "public", "weight": 30, "count": 3, "mean": 80.0' in org_result[1]
