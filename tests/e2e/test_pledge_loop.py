"""End to end: the pledge loop (提承诺 → 审承诺 → 亮承诺 → 每月一报) over Telegram.

The real ``pledgebot run`` process talks to the Bot API emulator through the recording proxy;
people act as Telegram users, and each test checks what they were shown, the answers to their
button presses (recorded by the proxy) and the rows in the bot's SQLite file.

Most tests share one bot with one campaign open and one cast of bound people (a phone binds to
one Telegram account only); the monthly report runs on a bot of its own whose calendar the
test drives.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.settings import Settings
from campaign import propose, review
from campaign.access import load_actor
from campaign.cards import ReviewCb
from campaign.db import Store
from campaign.demo_data import CITY, VILLAGE_BRANCH
from campaign.monthly import MONTHLY_TYPES
from campaign.setup import open_campaign
from handlers import pledge as dialog
from handlers.app import build_router
from models.callbacks import CallbackCodec
from models.campaign import Campaign, JobRun
from models.org import Member
from models.pledge import OwnerKind, Verdict
from reminders.calendar import month_key
from reminders.jobs import Jobs
from templates import catalog
from tests.e2e.client import BotMessage, TelegramUser
from tests.e2e.conftest import (
    CALLBACK_SECRET,
    BotProcess,
    base_env,
    bot_command,
    new_token,
    new_user_id,
    seeded_database,
)

pytestmark = pytest.mark.e2e

MEMBER = "13800000001"  # 张建国, 党员 (农村, 村文书)
SECRETARY = "13800000002"  # 李秀英, 东江村党支部书记
PEER_A = "13800000003"  # 王志强, 党员
PEER_B = "13800000004"  # 刘桂兰, 党员
TOWNSHIP_REVIEWER = "13800000005"  # 陈明, 城关镇审核人
CITY_MEMBER = "13800000007"  # 赵丽, a member of 陇南市's own branch (reviewed by its secretary)
NAMES = {
    MEMBER: "张建国",
    SECRETARY: "李秀英",
    PEER_A: "王志强",
    PEER_B: "刘桂兰",
    TOWNSHIP_REVIEWER: "陈明",
    CITY_MEMBER: "赵丽",
}
ZONE = ZoneInfo("Asia/Shanghai")  # the campaign's time zone (the default)
WAIT = 8.0  # for messages queued outside a reply: the outbox loop (~1 s) and the chat limiter


# -- small helpers ---------------------------------------------------------------------------------


def msg(key: str, **context: Any) -> str:
    return catalog().render(key, "zh_CN", **context)


def db_rows(bot: BotProcess, sql: str, *args: Any) -> list[tuple]:
    path = bot.db_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path, timeout=10)) as conn:
        return conn.execute(sql, args).fetchall()


def db_write(bot: BotProcess, sql: str, *args: Any) -> None:
    path = bot.db_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.execute(sql, args)


def with_store(db_url: str, work: Callable[[Store], Awaitable[Any]]) -> Any:
    """Run ``work(store)`` on the bot's database from the test process."""

    async def go() -> Any:
        store = Store(db_url)
        try:
            return await work(store)
        finally:
            await store.dispose()

    return asyncio.run(go())


def bot_codec() -> CallbackCodec:
    """Return a codec that signs buttons exactly as the bot under test does (same secret)."""
    key = Settings(callback_secret=CALLBACK_SECRET, _env_file=None).signing_key
    types = dict.fromkeys([*build_router().callback_types(), *MONTHLY_TYPES])
    return CallbackCodec(key, list(types))


def today_utc() -> date:
    """The day the core's own clock reads (it is UTC; drafting windows start there)."""
    return datetime.now(UTC).date()


def campaign_start() -> date:
    """A start day on which both the core (UTC) and the calendar (Asia/Shanghai) see it open."""
    return min(today_utc(), datetime.now(ZONE).date())


def button_labels(message: BotMessage) -> list[str]:
    return [b["text"] for row in message.buttons for b in row]


def label_starting(message: BotMessage, prefix: str) -> str:
    """Return the label of the one button on ``message`` that starts with ``prefix``."""
    found = [t for t in button_labels(message) if t.startswith(prefix)]
    assert len(found) == 1, f"buttons starting {prefix!r}: {button_labels(message)}"
    return found[0]


def toast_of(proxy, bot: BotProcess, press: Callable[[], None]) -> str | None:
    """Press (a callable that presses something) and return the text of the bot's answer."""
    mark = proxy.mark()
    press()
    return proxy.wait_for_call("answerCallbackQuery", token=bot.token, after=mark).params.get(
        "text"
    )


def toasts_of(proxy, bot: BotProcess, press: Callable[[], None], count: int) -> list[str | None]:
    """Press several times at once; return the answers' texts, in the order they came."""
    mark = proxy.mark()
    press()
    deadline = time.monotonic() + WAIT
    while len(calls := proxy.calls("answerCallbackQuery", token=bot.token, after=mark)) < count:
        assert time.monotonic() < deadline, f"only {len(calls)} of {count} presses answered"
        time.sleep(0.02)
    return [c.params.get("text") for c in calls]


def edited_buttons(proxy, bot: BotProcess, message: BotMessage) -> list:
    """Return the inline keyboard of the bot's last edit of ``message``, as it was sent.

    The emulator keeps a message's old keyboard when an edit carries none; Telegram removes
    it. So whether a card still offers buttons is read from the call the bot made.
    """
    edits = [
        c.params
        for c in proxy.calls("editMessageText", token=bot.token)
        if c.params.get("message_id") == message.message_id
        and c.params.get("chat_id") == message.chat_id
    ]
    assert edits, f"message {message.message_id} was never edited"
    return (edits[-1].get("reply_markup") or {}).get("inline_keyboard") or []


def approve_confirming(proxy, bot: BotProcess, user: TelegramUser, card: BotMessage) -> BotMessage:
    """通过 with the criteria not all ticked: the card asks once, 符合，通过 approves.

    Returns the card as the question left it (its later edits are waited for by the caller).
    """
    mark = proxy.mark()
    user.press(msg("review.approve"), card)
    confirm = msg("review.confirm_all")
    asking = user.wait_for_edit(card, lambda m: confirm in button_labels(m))
    assert asking.text.count("五项标准都符合吗？") == 1
    assert button_labels(asking) == [confirm, msg("review.back")]
    assert toast_of(proxy, bot, lambda: user.press(confirm, asking)) == msg(
        "review.approved_toast"
    )
    # asked once, on the card itself: nothing was sent to the reviewer meanwhile
    sent = [
        c
        for c in proxy.calls("sendMessage", token=bot.token, after=mark)
        if str(c.params.get("chat_id")) == str(user.chat_id)
    ]
    assert not sent, [c.params.get("text") for c in sent]
    return asking


def bind(user: TelegramUser, phone: str) -> None:
    user.share_contact(phone)
    done = user.wait_for_reply(msg("bind.done", name="", org="")[:4])
    assert NAMES.get(phone, "") in done.text
    user.wait_for_reply(lambda m: "/help" in m.text)  # the help that follows the welcome


def member_id(bot: BotProcess, phone: str) -> int:
    (row,) = db_rows(bot, "SELECT id FROM member WHERE phone = ?", phone)
    return row[0]


def village_id(bot: BotProcess) -> int:
    (row,) = db_rows(bot, "SELECT id FROM org WHERE full_name = ?", VILLAGE_BRANCH)
    return row[0]


def footprint(bot: BotProcess, pledge_id: int) -> tuple:
    """What a refused press must leave alone: the pledge row, its reviews, the audit trail."""
    return (
        db_rows(bot, "SELECT status, version FROM pledge WHERE id = ?", pledge_id),
        db_rows(bot, "SELECT count(*) FROM review"),
        db_rows(bot, "SELECT count(*) FROM auditevent"),
    )


# -- the campaign and pledges, set up through the domain -------------------------------------------


def open_campaign_today(db_url: str, **calendar: Any) -> None:
    """Open next year's campaign over 陇南市, starting today (the calendar's days as given)."""

    async def work(store: Store) -> None:
        async with store.write() as session:
            start = campaign_start()
            camp = await open_campaign(session, CITY, start.year + 1, starts_on=start)
            for name, value in calendar.items():
                setattr(camp, name, value)
            session.add(camp)

    with_store(db_url, work)


GOOD_ITEM = {
    "content": "为本组12户留守老人每月上门送医送药",
    "goal": "全年上门服务不少于144次，老人求助当天回应",
    "measures": "建立联系卡，每月第一个周六上门，联系镇卫生院医生同去",
    "deadline": "年底",
    "vanguard": "serve",
}


async def _actor_of(session, phone: str):
    mid = (await session.exec(select(Member.id).where(Member.phone == phone))).one()
    return await load_actor(session, mid)


def draft_and_submit(
    db_url: str, phone: str, items: list[dict[str, str]], codec: CallbackCodec
) -> int:
    """Submit the member's own pledge through the domain, as the dialog would; return its id.

    A returned pledge is reopened as its next version; ``items[n]`` sets fields of item n
    (added when missing).
    """

    async def work(store: Store) -> int:
        today = today_utc()
        async with store.write() as session:
            actor = await _actor_of(session, phone)
            (target,) = [
                t for t in await propose.targets(session, actor) if t.owner is OwnerKind.MEMBER
            ]
            pledge = await propose.open_draft(
                session, actor, target, today=today, render=lambda k: msg(k)
            )
            year = (await session.get(Campaign, pledge.campaign_id)).year
            existing = await propose.items_of(session, pledge.id)
            for n, fields in enumerate(items):
                if n < len(existing):
                    item = existing[n]
                else:
                    item = await propose.add_item(session, actor, pledge.id)
                for name, value in fields.items():
                    await propose.set_item_field(
                        session, actor, pledge.id, item.id, name, value, year=year
                    )
            await review.submit(session, actor, pledge.id, today=today, codec=codec)
            return pledge.id

    return with_store(db_url, work)


def decide(db_url: str, phone: str, pledge_id: int, version: int, codec: CallbackCodec) -> None:
    """Approve a pledge version as the person with ``phone``."""

    async def work(store: Store) -> None:
        async with store.write() as session:
            actor = await _actor_of(session, phone)
            await review.decide(
                session, actor, pledge_id, version, Verdict.APPROVE, codec=codec, confirmed=True
            )

    with_store(db_url, work)


# -- one bot, one campaign and one cast for the review tests ---------------------------------------


class Cast:
    """The people of the story, each bound on first use (a phone binds one account only)."""

    def __init__(self, emulator: str, bot: BotProcess) -> None:
        self.emulator = emulator
        self.bot = bot
        self.people: dict[str, TelegramUser] = {}
        self._group: TelegramUser | None = None

    def __call__(self, phone: str) -> TelegramUser:
        if phone not in self.people:
            user = TelegramUser(
                self.emulator, self.bot.token, new_user_id(), first_name=NAMES[phone]
            )
            bind(user, phone)
            self.people[phone] = user
        return self.people[phone]

    def group(self) -> TelegramUser:
        """The secretary in the branch's group, linked to the branch with /bindgroup."""
        if self._group is None:
            secretary = self(SECRETARY)
            group = TelegramUser(
                self.emulator,
                self.bot.token,
                secretary.user_id,
                first_name=NAMES[SECRETARY],
                chat_id=-(1_000_000_000_000 + secretary.user_id),
                chat_type="supergroup",
                chat_title="东江村党员群",
            )
            group.send_command("/bindgroup@TestNameBot")
            assert group.wait_for_reply().text == msg("group.linked", org="东江村党支部")
            self._group = group
        return self._group


@pytest.fixture(scope="module")
def loop_bot(proxy, tmp_path_factory, runtime) -> Iterator[BotProcess]:
    """A polling bot on a seeded database, next year's campaign over 陇南市 open from today."""
    workdir = tmp_path_factory.mktemp("loop-bot")
    _, url = seeded_database(workdir)
    open_campaign_today(url)
    process = BotProcess(proxy, workdir, url, token=new_token(), runtime=runtime)
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture(scope="module")
def cast(emulator, loop_bot) -> Cast:
    return Cast(emulator, loop_bot)


# -- 1. the story --------------------------------------------------------------------------


def answer(user: TelegramUser, text: str, expect: str) -> BotMessage:
    user.send_text(text)
    return user.wait_for_reply(expect)


def press(
    user: TelegramUser, label: str, expect: str | Callable[[BotMessage], bool]
) -> BotMessage:
    user.press(label)
    return user.wait_for_reply(expect)


def draft_item(
    user: TelegramUser,
    n: int,
    content: str,
    goal: str,
    measures: str,
    deadline: str,
    vanguard: str,
) -> BotMessage:
    """Answer the five questions of a new item; return the overview that follows."""
    answer(user, content, f"第{n}条 · 2/5")
    answer(user, goal, f"第{n}条 · 3/5")
    answer(user, measures, f"第{n}条 · 4/5")
    answer(user, deadline, f"第{n}条 · 5/5")
    label = msg("pledge.btn.vanguard", vanguard=vanguard, on=False)
    return press(user, label, msg("pledge.note.item_saved", n=n))


def edit_field(user: TelegramUser, n: int, field: str, text: str) -> BotMessage:
    """修改 → item ``n`` → ``field`` → the new text; return the overview that follows."""
    press(user, msg("pledge.btn.edit"), msg("pledge.pick_edit"))
    press(user, label_starting(user.last_reply, f"{n}. "), f"第{n}条：")
    press(user, msg("pledge.btn.field", field=field), f"请输入第{n}条新的")
    return answer(user, text, msg("pledge.note.saved", n=n))


SLOGAN = "全心全意为人民服务，发挥先锋模范作用"
FIXED_GOAL = "全年讲解12次，覆盖本组40户群众"
PEER_COMMENT = "建议第二条写明在哪里讲、怎样让群众知道时间"
REVISED_MEASURES = "以村文书岗位为依托，联系镇农技站来村培训2次，帮助联系收购商上门收购"


def test_member_pledge_from_draft_to_public_display(loop_bot, cast, proxy):
    bot = loop_bot
    member = cast(MEMBER)
    secretary = cast(SECRETARY)
    # peers are picked among bound branch-mates when the pledge is submitted: bind them first
    peer_a, peer_b = cast(PEER_A), cast(PEER_B)
    group = cast.group()

    # -- drafting: category ✓, keep the post, two items (the second a slogan)
    member.send_command("/pledge")
    category = member.wait_for_reply(lambda m: bool(m.buttons))
    assert category.text == msg("pledge.ask.category", intro=True, current="rural", hint=False)
    rural = msg("pledge.btn.category", category="rural", on=True)
    assert rural == "✓ 农村" and rural in button_labels(category)
    press(member, rural, "村文书")
    press(member, msg("pledge.btn.keep_post"), "第1条 · 1/5")
    draft_item(
        member,
        1,
        "帮助本组3户困难户发展花椒种植",
        "10月底前户均增收2000元",
        "联系镇农技站来村培训2次，帮助联系收购商上门收购",
        "10月底",
        "serve",
    )
    press(member, msg("pledge.btn.add"), "第2条 · 1/5")
    overview = draft_item(
        member, 2, SLOGAN, "做一名合格党员", "每月参加组织生活，认真学习党的理论", "年底", "study"
    )
    assert SLOGAN in overview.text and "2. " in overview.text

    # -- submitting warns: a slogan with a goal that cannot be checked; back to editing
    warned = press(member, msg("pledge.btn.submit"), lambda m: bool(m.buttons))
    assert warned.text.startswith("承诺没有必须修改的问题")
    assert msg("quality.slogan", item=2) in warned.text
    assert msg("quality.goal_not_checkable", item=2) in warned.text
    assert button_labels(warned) == [msg("pledge.btn.force"), msg("pledge.btn.back_edit")]
    press(member, msg("pledge.btn.back_edit"), "党员创先争优活动公开承诺申报表")
    assert db_rows(
        bot, "SELECT status FROM pledge WHERE owner_member_id = ?", member_id(bot, MEMBER)
    ) == [("draft",)]

    # -- fixing it: 修改 → item 2 → 目标 → a goal one can check (which also makes it concrete)
    fixed = edit_field(member, 2, "goal", FIXED_GOAL)
    assert FIXED_GOAL in fixed.text and "做一名合格党员" not in fixed.text
    submitted = press(member, msg("pledge.btn.submit"), "已提交审核")
    assert submitted.text == msg(
        "pledge.submitted",
        version=1,
        role="secretary",
        org="东江村党支部",
        escalated=False,
        peers=2,
    )

    # -- the secretary's card and the peers' cards
    card = secretary.wait_for_reply(
        lambda m: m.text.startswith("【承诺审核】") and "张建国（第1版）" in m.text, WAIT
    )
    assert "党员互审意见：尚未收到" in card.text and FIXED_GOAL in card.text
    assert {msg("review.approve"), msg("review.return")} <= set(button_labels(card))
    peer_cards = {
        p: p.wait_for_reply(
            lambda m: m.text.startswith("【党员互审】") and "张建国" in m.text, WAIT
        )
        for p in (peer_a, peer_b)
    }

    # -- one peer agrees, the other suggests a change; the secretary's card shows both
    assert toast_of(proxy, bot, lambda: peer_a.press(msg("peer.agree"), peer_cards[peer_a])) == (
        msg("peer.thanks")
    )
    card = secretary.wait_for_edit(card, lambda m: "· 王志强：同意" in m.text)
    peer_b.press(msg("peer.suggest"), peer_cards[peer_b])
    peer_b.wait_for_reply(msg("peer.ask_comment"))
    answer(peer_b, PEER_COMMENT, msg("peer.thanks"))
    card = secretary.wait_for_edit(card, lambda m: f"· 刘桂兰：建议修改——{PEER_COMMENT}" in m.text)
    assert "· 王志强：同意" in card.text

    # -- the secretary returns it for a reason
    reason = msg("review.reason.post")
    secretary.press(msg("review.return"), card)
    card = secretary.wait_for_edit(card, lambda m: reason in button_labels(m))
    # the reason is asked once, on the card; no separate question follows
    assert card.text.count("请选择不符合的标准") == 1
    assert toast_of(proxy, bot, lambda: secretary.press(reason, card)) == msg(
        "review.returned_toast"
    )
    card = secretary.wait_for_edit(card, lambda m: "↩️ 已退回修改：李秀英" in m.text)
    assert f"理由：{reason}" in card.text and not edited_buttons(proxy, bot, card)
    notice = member.wait_for_reply(lambda m: "被退回修改" in m.text, WAIT)
    assert notice.text.startswith("您的承诺（第1版）被退回修改") and reason in notice.text

    # -- the member revises: version 2, one field changed, submitted again
    member.send_command("/pledge")
    revising = member.wait_for_reply(lambda m: bool(m.buttons))
    assert revising.text.startswith(msg("pledge.note.revising", version=2))
    assert "（第2版）" in revising.text
    revised = edit_field(member, 1, "measures", REVISED_MEASURES)
    assert REVISED_MEASURES in revised.text
    submitted = press(member, msg("pledge.btn.submit"), "已提交审核")
    assert submitted.text.startswith("✅ 已提交审核（第2版）")

    # -- the secretary ticks a criterion and approves version 2
    card = secretary.wait_for_reply(lambda m: "张建国（第2版）" in m.text, WAIT)
    assert REVISED_MEASURES in card.text
    ticked = msg("review.criterion_button", criterion="sci", on=True)
    secretary.press(msg("review.criterion_button", criterion="sci", on=False), card)
    card = secretary.wait_for_edit(card, lambda m: ticked in button_labels(m))
    card = approve_confirming(proxy, bot, secretary, card)
    card = secretary.wait_for_edit(card, lambda m: "✅ 已确认：李秀英" in m.text)
    assert not edited_buttons(proxy, bot, card)

    # -- published: the group's display post and the member's pledge letter
    post = group.wait_for_reply(lambda m: m.text.startswith("📢 公开承诺公示"), WAIT)
    assert "东江村党支部 · 党员 张建国（村文书）" in post.text
    assert REVISED_MEASURES in post.text and FIXED_GOAL in post.text
    assert not any(phone in post.text for phone in NAMES)  # no member's phone in public
    letter = member.wait_for_reply(lambda m: m.text.startswith("📜 承诺书"), WAIT)
    assert "我是东江村党支部党员张建国，岗位村文书" in letter.text
    assert FIXED_GOAL in letter.text

    # -- the records
    (pledge,) = db_rows(
        bot,
        "SELECT id, status, version FROM pledge WHERE owner_member_id = ?",
        member_id(bot, MEMBER),
    )
    pledge_id = pledge[0]
    assert pledge[1:] == ("published", 2)
    year = campaign_start().year + 1
    assert db_rows(
        bot,
        "SELECT content, deadline FROM pledgeitem WHERE pledge_id = ? ORDER BY seq",
        pledge_id,
    ) == [
        ("帮助本组3户困难户发展花椒种植", f"{year}-10-31"),
        (SLOGAN, f"{year}-12-31"),
    ]
    decisions = db_rows(
        bot,
        "SELECT pledge_version, decision, reasons, reviewer_id FROM review "
        "WHERE pledge_id = ? AND kind = 'decision' ORDER BY id",
        pledge_id,
    )
    secretary_id = member_id(bot, SECRETARY)
    assert decisions == [(1, "back", '["post"]', secretary_id), (2, "ok", "[]", secretary_id)]
    peers = db_rows(
        bot,
        "SELECT pledge_version, reviewer_id, decision, opinion FROM review "
        "WHERE pledge_id = ? AND kind = 'peer' ORDER BY id",
        pledge_id,
    )
    assert peers == [
        (1, member_id(bot, PEER_A), "agree", ""),
        (1, member_id(bot, PEER_B), "suggest", PEER_COMMENT),
    ]
    assert db_rows(
        bot,
        "SELECT criteria FROM review WHERE pledge_id = ? AND pledge_version = 2 "
        "AND kind = 'decision'",
        pledge_id,
    ) == [('["sci", "adv", "use", "post", "pub"]',)]  # confirmed: all five are met

    verify = subprocess.run(
        [*bot_command(), "audit", "verify"],
        env=base_env(DATABASE_URL=bot.db_url, BOT_TOKEN=bot.token),
        cwd=str(Path(bot.db_url.removeprefix("sqlite:///")).parent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# -- 2. a village's organization pledge carries the basic pledge -----------------------------------

#: what the secretary types for each 【…】 blank of the basic pledge (public numbers only)
BLANKS = {
    "公开周期，如：每月": "每月",
    "公开地点，如：村委会公开栏": "村委会公开栏",
    "村干部坐班天数": "5",
    "驻村乡镇干部坐班天数": "2",
    "坐班日和坐班人员": "周一至周五，村干部轮流坐班",
    "村干部姓名和电话": "村委会值班室0939-8211001",
    "驻村乡镇干部姓名和电话": "城关镇驻村干部0939-8211002",
    "监督电话": "0939-1234567",
}


def test_village_organization_pledge_carries_the_basic_pledge(loop_bot, cast, proxy):
    bot = loop_bot
    secretary = cast(SECRETARY)
    reviewer = cast(TOWNSHIP_REVIEWER)
    group = cast.group()

    secretary.send_command("/pledge")
    chooser = secretary.wait_for_reply(lambda m: bool(m.buttons))
    assert chooser.text == msg("pledge.choose_target", hint=False)
    ours = msg("pledge.btn.org", name="东江村党支部")
    assert button_labels(chooser) == [msg("pledge.btn.own"), ours]
    overview = press(secretary, ours, "基层党组织创先争优活动公开承诺申报表")
    assert overview.text.count("（基本承诺）") == 3 and "请先完善基本承诺" in overview.text
    labels = button_labels(overview)
    assert msg("pledge.btn.fill") in labels and msg("pledge.btn.remove") not in labels

    (pledge,) = db_rows(
        bot,
        "SELECT id, version FROM pledge WHERE owner_kind = 'org' AND org_id = ?",
        village_id(bot),
    )
    pledge_id, version = pledge
    items = db_rows(
        bot, "SELECT id, basic FROM pledgeitem WHERE pledge_id = ? ORDER BY seq", pledge_id
    )
    assert [basic for _, basic in items] == [1, 1, 1]
    # no button removes a basic item; a well-signed one made by hand is refused as well
    codec = bot_codec()
    remove = codec.encode(dialog.DraftCb(dialog.Act.PICK_REMOVE, pledge_id, version, items[0][0]))
    toast = toast_of(proxy, bot, lambda: secretary.send_callback(remove, overview))
    assert toast == msg("pledge.basic_fixed")
    assert len(db_rows(bot, "SELECT id FROM pledgeitem WHERE pledge_id = ?", pledge_id)) == 3

    # 完善基本承诺: one blank at a time, then each item's deadline
    secretary.press(msg("pledge.btn.fill"), overview)
    asked = []
    while True:
        question = secretary.wait_for_reply(
            lambda m: "请填写【" in m.text or "还没有完成时限" in m.text or "申报表" in m.text
        )
        if blank := re.search(r"请填写【(.+?)】", question.text):
            asked.append(blank[1])
            secretary.send_text(BLANKS[blank[1]])
        elif "还没有完成时限" in question.text:
            asked.append("deadline")
            secretary.send_text("年底")
        else:
            break
        assert len(asked) <= len(BLANKS) + 3, asked
    assert sorted(a for a in asked if a != "deadline") == sorted(BLANKS)
    assert asked.count("deadline") == 3
    assert question.text.startswith(msg("pledge.note.basic_done"))
    assert "待完善" not in question.text and "每月公开一次村务" in question.text
    assert "0939-1234567" in question.text

    submitted = press(secretary, msg("pledge.btn.submit"), "已提交审核")
    assert submitted.text == msg(
        "pledge.submitted", version=1, role="reviewer", org="城关镇", escalated=False, peers=0
    )

    # the township reviewer gets the card and approves it
    card = reviewer.wait_for_reply(
        lambda m: m.text.startswith("【承诺审核】东江村党支部 · 组织承诺（第1版）"), WAIT
    )
    assert card.text.count("（基本承诺）") == 3 and "村委会公开栏" in card.text
    # 通过 with nothing ticked asks once whether the five criteria are met
    card = approve_confirming(proxy, bot, reviewer, card)
    reviewer.wait_for_edit(card, lambda m: "✅ 已确认：陈明" in m.text)
    letter = secretary.wait_for_reply(lambda m: m.text.startswith("📜 承诺书"), WAIT)
    assert "东江村党支部为深入开展创先争优活动" in letter.text  # not "党支部党组织"
    post = group.wait_for_reply(lambda m: "东江村党支部 · 党组织承诺" in m.text, WAIT)
    assert "0939-1234567" in post.text  # the supervision number is meant to be public

    (row,) = db_rows(
        bot,
        "SELECT status, version, review_role, review_org_id FROM pledge WHERE id = ?",
        pledge_id,
    )
    (township,) = db_rows(bot, "SELECT id FROM org WHERE name = '城关镇'")
    assert row == ("published", 1, "reviewer", township[0])
    assert db_rows(
        bot,
        "SELECT reviewer_id, decision FROM review WHERE pledge_id = ? AND kind = 'decision'",
        pledge_id,
    ) == [(member_id(bot, TOWNSHIP_REVIEWER), "ok")]
    assert db_rows(
        bot,
        "SELECT count(*) FROM pledgeitem WHERE pledge_id = ? AND basic = 1 "
        "AND deadline IS NOT NULL AND instr(goal || measures, '【') = 0",
        pledge_id,
    ) == [(3,)]


# -- 3. stale cards, double presses and forged buttons change nothing ------------------------------

PEER_A_ITEM = {
    "content": "组织本组村民修缮二组至三组灌溉水渠",
    "goal": "6月底前修缮水渠800米，保障30亩农田灌溉",
    "measures": "每周组织一次投工投劳，请镇水利站技术员现场指导",
    "deadline": "6月底",
    "vanguard": "achieve",
}
CITY_ITEM = {
    "content": "为市直机关来访群众提供一次性告知服务",
    "goal": "来访群众办事材料一次告知率100%，5个工作日内答复",
    "measures": "建立来访登记台账，每周五清理未办结事项并电话回访",
    "deadline": "年底",
    "vanguard": "serve",
}


def test_stale_double_and_forged_presses_change_nothing(loop_bot, cast, proxy):
    bot = loop_bot
    codec = bot_codec()
    secretary = cast(SECRETARY)
    reviewer = cast(TOWNSHIP_REVIEWER)
    approve, stale = msg("review.approve"), msg("error.stale_card")

    # 王志强's pledge (submitted through the domain) is returned from its card, then revised
    pledge_id = draft_and_submit(bot.db_url, PEER_A, [PEER_A_ITEM], codec)
    card_v1 = secretary.wait_for_reply(
        lambda m: m.text.startswith("【承诺审核】") and "王志强（第1版）" in m.text, WAIT
    )
    reason = msg("review.reason.adv")
    secretary.press(msg("review.return"), card_v1)
    reasons = secretary.wait_for_edit(card_v1, lambda m: reason in button_labels(m))
    assert toast_of(proxy, bot, lambda: secretary.press(reason, reasons)) == msg(
        "review.returned_toast"
    )
    revision = {"measures": "以小组长身份每周组织一次投工投劳，请镇水利站技术员现场指导"}
    draft_and_submit(bot.db_url, PEER_A, [revision], codec)
    card_v2 = secretary.wait_for_reply(lambda m: "王志强（第2版）" in m.text, WAIT)
    # and a pledge of another branch (陇南市's own), waiting for its secretary's decision
    other_id = draft_and_submit(bot.db_url, CITY_MEMBER, [CITY_ITEM], codec)
    before, other_before = footprint(bot, pledge_id), footprint(bot, other_id)
    assert before[0] == [("submitted", 2)] and other_before[0] == [("submitted", 1)]

    # a stale card: 通过 and a reason on version 1's card, as it was before the return
    assert toast_of(proxy, bot, lambda: secretary.press(approve, card_v1)) == stale
    assert toast_of(proxy, bot, lambda: secretary.press(reason, reasons)) == stale
    assert footprint(bot, pledge_id) == before

    # forged data: hand-made (no or a wrong signature), for this pledge and another branch's
    real = codec.encode(ReviewCb(pledge_id, 2, Verdict.APPROVE))
    wrong_signature = real[:-1] + ("A" if real[-1] != "A" else "B")
    for data in (f"rv:{other_id}:1:ok", f"rv:{other_id}:1:ok:AAAAAAAA", wrong_signature):
        toast = toast_of(proxy, bot, lambda d=data: secretary.send_callback(d, card_v2))
        assert toast == msg("error.bad_button"), data
    # validly signed, but for a pledge the presser may not decide
    mine_not = [
        (secretary, codec.encode(ReviewCb(other_id, 1, Verdict.APPROVE))),  # 陇南市's member
        (reviewer, real),  # the township reviews organizations, not a branch's members
    ]
    for who, data in mine_not:
        toast = toast_of(proxy, bot, lambda w=who, d=data: w.send_callback(d, card_v2))
        assert toast == msg("review.not_yours"), data
    assert footprint(bot, pledge_id) == before
    assert footprint(bot, other_id) == other_before

    # a double press: 符合，通过 twice in a row on version 2's card; exactly one counts
    confirm = msg("review.confirm_all")
    secretary.press(approve, card_v2)
    asking = secretary.wait_for_edit(card_v2, lambda m: confirm in button_labels(m))

    def twice() -> None:
        secretary.press(confirm, asking)
        secretary.press(confirm, asking)

    assert sorted(toasts_of(proxy, bot, twice, 2)) == sorted([msg("review.approved_toast"), stale])
    decided = footprint(bot, pledge_id)
    assert decided[0] == [("published", 2)]
    assert decided[1][0][0] == before[1][0][0] + 1  # one review row more, not two
    assert db_rows(
        bot,
        "SELECT pledge_version, decision FROM review WHERE pledge_id = ? AND kind = 'decision' "
        "ORDER BY id",
        pledge_id,
    ) == [(1, "back"), (2, "ok")]
    # and pressed again later, the decided card still changes nothing
    assert toast_of(proxy, bot, lambda: secretary.press(approve, card_v2)) == stale
    assert footprint(bot, pledge_id) == decided


# -- 4. the monthly report: one tap for the member, one for the secretary ---------------------------

SECOND_ITEM = {
    "content": "帮助本组3户困难户发展花椒种植",
    "goal": "10月底前户均增收2000元",
    "measures": "联系镇农技站来村培训2次，帮助联系收购商上门收购",
    "deadline": "10月底",
    "vanguard": "achieve",
}
HELD_JOBS = ("prompt", "remind", "summary")


def this_month() -> str:
    return month_key(datetime.now(ZONE).date())


def published_pledge_and_held_calendar(db_url: str) -> None:
    """A campaign whose monthly days have all come, its jobs held; 张建国's pledge published."""
    codec = bot_codec()
    open_campaign_today(db_url, report_day=1, reminder_day=1, summary_day=1, send_hour=0)

    async def hold(store: Store) -> None:
        # A JobRun row is what says "ran for this month": the bot's own calendar skips these
        # until the test lets them go, one at a time.
        async with store.write() as session:
            (camp,) = (await session.exec(select(Campaign))).all()
            for job in HELD_JOBS:
                session.add(JobRun(job=job, campaign_id=camp.id, period=this_month()))

    with_store(db_url, hold)
    pledge_id = draft_and_submit(db_url, MEMBER, [GOOD_ITEM, SECOND_ITEM], codec)
    decide(db_url, SECRETARY, pledge_id, 1, codec)


def run_job(bot: BotProcess, job: str) -> dict[str, int]:
    """Let one held job go and tick the calendar now, as the scheduler would."""
    db_write(bot, "DELETE FROM jobrun WHERE job = ? AND period = ?", job, this_month())

    async def tick(store: Store) -> dict[str, int]:
        return await Jobs(store, bot_codec()).tick(datetime.now(UTC))

    return with_store(bot.db_url, tick)


@pytest.mark.both_runtimes
def test_monthly_report_in_one_tap_and_branch_report_in_one(start_bot, user_of, proxy):
    bot = start_bot(prepare=published_pledge_and_held_calendar)
    month = this_month()
    member, secretary = user_of(bot), user_of(bot)
    bind(member, MEMBER)
    bind(secretary, SECRETARY)
    assert db_rows(bot, "SELECT status FROM pledge") == [("published",)]

    # the report day's prompt: queued by the calendar, delivered by the bot's outbox loop
    assert run_job(bot, "prompt").get("prompt") == 1
    prompt = member.wait_for_reply(lambda m: m.text.startswith("【每月一报】"), WAIT)
    readable = f"{int(month[:4])}年{int(month[5:])}月"  # no ISO months in what people read
    assert prompt.text.startswith(f"【每月一报】{readable}践诺进度报送\n张建国同志")
    assert prompt.text.count("⬜ 本月未报") == 2
    rest = msg("report.button.rest")
    assert button_labels(prompt)[-1] == rest

    mark = proxy.mark()
    assert toast_of(proxy, bot, lambda: member.press(rest, prompt)) == msg(
        "report.rest_toast", count=2
    )
    member.wait_for_edit(prompt, lambda m: "本月进度已报齐" in m.text)
    member.wait_for_reply(msg("report.thanks", month=month))
    assert len(proxy.calls("answerCallbackQuery", token=bot.token, after=mark)) == 1  # one tap
    items = [i for (i,) in db_rows(bot, "SELECT id FROM pledgeitem ORDER BY seq")]
    assert db_rows(
        bot, "SELECT item_id, month, status, reported_by FROM progressreport ORDER BY item_id"
    ) == [(i, month, "on_track", member_id(bot, MEMBER)) for i in items]

    # the summary day: the branch's report goes to the secretary, confirmed in one tap
    assert run_job(bot, "summary").get("summary") == 1
    summary = secretary.wait_for_reply(lambda m: m.text.startswith("【月报】东江村党支部"), WAIT)
    assert f"{readable} 公开承诺事项进度月报" in summary.text
    assert "承诺 1 份：已报 1，未报 0" in summary.text and "按计划推进 2" in summary.text
    assert toast_of(proxy, bot, lambda: secretary.press(msg("summary.confirm"), summary)) == msg(
        "summary.confirmed_toast"
    )
    secretary.wait_for_edit(summary, lambda m: "✅ 已确认" in m.text)
    (report,) = db_rows(bot, "SELECT org_id, month, confirmed_by, figures FROM orgreport")
    assert report[:3] == (village_id(bot), month, member_id(bot, SECRETARY))
    assert '"on_track": 2' in report[3] and '"unreported": 0' in report[3]
