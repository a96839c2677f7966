"""The hostile corpus, fed at every dialog step and to every command, on SQLite and PostgreSQL.

Each lane is a real place in a real dialog (a draft's item fields, a published pledge's month,
a rectification, a pledge under review …), built through the domain. Before every input the
lane's dialog state is put back, so that each input meets the step it is meant for. Lanes of
different people run concurrently (one task per person: the core serializes each person, the
database sees several at once); a person's lanes run in order.

It counts inputs tried, clean answers, crashes (an exception, or the apology for an unexpected
error, at handling or at rendering the reply) and stored garbage (any text in any table holding
NUL, a control, bidi or invisible character or a surrogate), asserts no crash and no garbage,
and prints the counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections import Counter
from datetime import date
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.delivery import render_reply
from campaign import propose, review, supervise
from campaign.access import load_actor
from campaign.cards import RectCb, ReviewCb
from handlers import evaluate, look_back, model_example, notice, report
from handlers import pledge as pledge_dialog
from handlers import review as review_dialog
from handlers.app import build_router
from handlers.events import (
    ButtonPressed,
    ChatType,
    CommandReceived,
    ContactShared,
    Event,
    PhotoReceived,
    Sender,
    TextReceived,
    Unsupported,
    UnsupportedReceived,
)
from models import Account, DialogState, Member, Outbox, Role, RoleGrant
from models.pledge import OwnerKind, Verdict
from models.reply import Reply
from templates import catalog
from tests.chat import MEMBER, PEER, REVIEWER, SECRETARY, ChatBot
from tests.conftest import a_campaign, seed_people
from tests.garbage import garbage
from tests.handlers.test_report import Bot, publish_member_pledge, render
from tests.hostile import DEEP_LINKS, corpus

CORPUS = corpus()[: int(os.environ.get("CORPUS_LIMIT", "100000"))]
#: CORPUS_FULL=1 feeds every input on both databases; by default each database takes every other
#: input (SQLite the even ones, PostgreSQL the odd ones), so that every input still meets every
#: step and every command once, on one database or the other, in half the time
FULL = os.environ.get("CORPUS_FULL") == "1"


def share(store) -> list[str]:
    """Return the inputs this database takes."""
    if FULL:
        return CORPUS
    return CORPUS[0 if store.is_sqlite else 1 :: 2]


#: a fourth member of the branch, whose pledge waits for review
AUTHOR = "6"
UNBOUND = "999"
GROUP = "-100500"
APOLOGY = "error.unexpected"
ROUTER = build_router()
TOTALS: Counter[str] = Counter()


def who(chat: str, *, group: bool = False) -> Sender:
    if group:
        return Sender(platform="test", user_id=chat, chat_id=GROUP, chat_type=ChatType.GROUP)
    return Sender(platform="test", user_id=chat, chat_id=chat)


@dataclasses.dataclass
class Lane:
    """One place to feed the corpus: a person and the dialog state they are at."""

    name: str
    chat: str
    dialog: str | None = None
    step: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    group: bool = False


@dataclasses.dataclass
class Tally:
    tried: int = 0
    clean: int = 0
    crashes: list[str] = dataclasses.field(default_factory=list)
    silent: list[str] = dataclasses.field(default_factory=list)
    #: update id -> (lane name, outbox rows queued), for the answers read back
    expect: dict[str, tuple[str, tuple[int, ...]]] = dataclasses.field(default_factory=dict)


async def build_world(store) -> tuple[Bot, list[Lane]]:
    """Create the records every lane points at and return the lanes."""
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        author = Member(name="刘桂兰", phone="13800000009", org_id=people.orgs["village"])
        s.add(author)
        await s.flush()
        people.ids["author"] = author.id
        s.add(RoleGrant(member_id=author.id, role=Role.MEMBER, org_id=people.orgs["village"]))
    bot = Bot(store, people)
    for chat in (MEMBER, SECRETARY, PEER, REVIEWER):
        await bot.bind(chat)
    async with store.write() as s:
        s.add(Account(platform="test", external_id=AUTHOR, chat_id=AUTHOR, member_id=author.id))
    codec = bot.core.codec
    pid, item_ids = await publish_member_pledge(store, people, codec)
    async with store.read() as s:
        peer = await load_actor(s, people.ids["peer"])
        sec = await load_actor(s, people.ids["secretary"])
        writer = await load_actor(s, author.id)
    drafted = date(2026, 4, 10)
    async with store.write() as s:  # the peer's draft, with one item
        (target,) = [t for t in await propose.targets(s, peer) if t.owner is OwnerKind.MEMBER]
        draft = await propose.open_draft(s, peer, target, today=drafted, render=render)
        item = await propose.add_item(s, peer, draft.id)
        await propose.set_item_field(s, peer, draft.id, item.id, "content", "帮扶", year=2026)
        draft_id, draft_item = draft.id, item.id
    async with store.write() as s:  # the author's pledge, submitted for review
        (target,) = [t for t in await propose.targets(s, writer) if t.owner is OwnerKind.MEMBER]
        sub = await propose.open_draft(s, writer, target, today=drafted, render=render)
        it = await propose.add_item(s, writer, sub.id)
        for field, value in [
            ("content", "为本组8户留守老人每月上门帮办代办一次"),
            ("goal", "全年上门不少于96次，群众满意率90%以上"),
            ("measures", "建立联系卡，每月第一个周六上门"),
            ("deadline", "2026-12-31"),
            ("vanguard", "serve"),
        ]:
            await propose.set_item_field(s, writer, sub.id, it.id, field, value, year=2026)
        await review.submit(s, writer, sub.id, today=drafted, codec=codec)
        sub_id = sub.id
    async with store.write() as s:  # a rectification the member is to report done
        rect = await supervise.open_rectification(
            s,
            sec,
            pid,
            reason="事项超期",
            deadline=date(2026, 6, 30),
            today=date(2026, 5, 20),
            codec=codec,
            item_id=item_ids[0],
        )
        rect_id = rect.id
    await bot.worker.run_once()
    month = "2026-05"
    until = "2026-05-21T00:00:00+00:00"
    p = pledge_dialog.DIALOG
    field = {"pledge_id": draft_id, "version": 1, "mode": "edit", "placeholder": None}
    lanes = [
        Lane("idle", MEMBER),
        Lane("unbound", UNBOUND),
        Lane("group", MEMBER, group=True),
        Lane("pledge.target", SECRETARY, p, "target"),
        Lane("pledge.category", PEER, p, "category", {"pledge_id": draft_id, "version": 1}),
        Lane("pledge.post", PEER, p, "post", {"pledge_id": draft_id, "version": 1}),
        Lane(
            "pledge.content.new",
            PEER,
            p,
            "field",
            {**field, "item_id": None, "field": "content", "mode": "new"},
        ),
        *[
            Lane(f"pledge.{f}", PEER, p, "field", {**field, "item_id": draft_item, "field": f})
            for f in ("content", "goal", "measures", "deadline", "vanguard")
        ],
        Lane("pledge.overview", PEER, p, "overview", {"pledge_id": draft_id, "version": 1}),
        Lane(
            "review.reason",
            SECRETARY,
            review_dialog.REASON_DIALOG,
            "reason",
            {"pledge_id": sub_id, "version": 1},
        ),
        Lane(
            "review.peer",
            PEER,
            review_dialog.PEER_DIALOG,
            "comment",
            {"pledge_id": sub_id, "version": 1},
        ),
        Lane(
            "report.blocked",
            MEMBER,
            report.BLOCKED_DIALOG,
            "reason",
            {"pledge_id": pid, "item_id": item_ids[1], "month": month},
        ),
        Lane(
            "report.note",
            MEMBER,
            report.NOTE_DIALOG,
            "note",
            {"pledge_id": pid, "month": month, "until": until},
        ),
        Lane("report.pause", MEMBER, report.PAUSE_DIALOG, "until", {"reason": "leave"}),
        Lane(
            "summary.remarks",
            SECRETARY,
            report.SUMMARY_DIALOG,
            "remarks",
            {
                "org_id": people.orgs["village"],
                "month": month,
                "campaign_id": 1,
                "message_id": None,
            },
        ),
        Lane(
            "rect.reason",
            SECRETARY,
            report.RECT_OPEN_DIALOG,
            "reason",
            {"pledge_id": pid, "item_id": item_ids[1]},
        ),
        Lane(
            "rect.deadline",
            SECRETARY,
            report.RECT_OPEN_DIALOG,
            "deadline",
            {"pledge_id": pid, "item_id": item_ids[1], "reason": "进度滞后"},
        ),
        Lane(
            "rect.claim",
            MEMBER,
            report.RECT_CLAIM_DIALOG,
            "note",
            {"rect_id": rect_id, "message_id": None},
        ),
        # evaluation, look-back and model examples: the rating and look-back these point at do
        # not exist, so the corpus meets their stale-record answers (their own tests build the
        # real records); the model-example steps keep typed text in the dialog until the end
        Lane("eval.comment", MEMBER, evaluate.NOTE_DIALOG, "comment", {"rating_id": 999_999}),
        Lane("lookback.note", MEMBER, look_back.NOTE_DIALOG, "note", {"lookback_id": 999_999}),
        *[
            Lane(f"lookback.{step}", SECRETARY, dialog, step, {"lookback_id": 999_999})
            for dialog, step in (
                (look_back.MECHANISM_DIALOG, "mechanism"),
                (look_back.CAUSE_DIALOG, "cause"),
            )
        ],
        *[
            Lane(
                f"model.{step}",
                REVIEWER,
                model_example.DIALOG,
                step,
                {
                    "campaign_id": 1,
                    "kind": "member",
                    "subject_id": people.ids["member"],
                    "leader_id": people.ids["reviewer"],
                    "goal": "发展花椒合作社",
                    "measures": "每月走访",
                },
            )
            for step in model_example.STEPS
        ],
        # a notice (公告) by the branch's secretary: its text, its audience, its preview
        Lane("notice.text", SECRETARY, notice.DIALOG, "text"),
        Lane("notice.audience", SECRETARY, notice.DIALOG, "audience", {"text": "今晚开会"}),
        Lane(
            "notice.preview",
            SECRETARY,
            notice.DIALOG,
            "preview",
            {
                "text": "今晚开会",
                "scope": people.orgs["village"],
                "audience": "members",
                "org": 0,
            },
        ),
    ]
    dialogs = {lane.dialog for lane in lanes if lane.dialog}
    assert dialogs == set(ROUTER.dialogs), (
        f"a dialog without a lane: {set(ROUTER.dialogs) - dialogs}"
    )
    bot.forged = forged_buttons(codec, pid, sub_id, rect_id)
    bot.moved = watch_state(bot)
    return bot, lanes


def forged_buttons(codec, pledge_id: int, submitted_id: int, rect_id: int) -> list[str]:
    """Return button data a forger sends: mutated signatures, other types, plain junk."""
    genuine = [
        codec.encode(ReviewCb(submitted_id, 1, Verdict.APPROVE)),
        codec.encode(RectCb(rect_id, "close")),
    ]
    out = []
    for data in genuine:
        body, _, sig = data.rpartition(":")
        out += [
            f"{body}:{'A' * len(sig)}",
            f"{body.replace(str(submitted_id), str(pledge_id))}:{sig}",
            data + "\u200b",
            data[:-1],
            data.replace(":", "\u202e:", 1),
        ]
    return [*out, "", ":", "::::", "x" * 65, "rv:1:1:ok", "\ud800", "\x00", "{{7*7}}"]


def events_for(lane: Lane, text: str, n: int, forged: list[str]) -> list[Event]:
    """Return the events one corpus input makes at a lane.

    Every input comes as text; every tenth in turn also as a photo's caption, as a forged
    button's data and as someone else's contact. The first inputs also bring each kind of
    content the bot cannot read, and each forged button.
    """
    s = who(lane.chat, group=lane.group)
    out: list[Event] = [TextReceived(sender=s, text=text)]
    if n % 10 == 0:
        out.append(PhotoReceived(sender=s, file_id=f"photo-{n}", caption=text[:1024]))
    if n % 10 == 1:
        out.append(ButtonPressed(sender=s, data=text[:128]))
    if n % 10 == 2:
        out.append(ContactShared(sender=s, phone=text[:64], contact_user_id="424242"))
    kinds = list(Unsupported)
    if n < len(kinds):
        out.append(UnsupportedReceived(sender=s, kind=kinds[n]))
    if n < len(forged):
        out.append(ButtonPressed(sender=s, data=forged[n]))
    return out


async def put_back(bot: ChatBot, lane: Lane) -> None:
    """Put the lane's person back at the lane's step (or out of any dialog)."""
    s = who(lane.chat, group=lane.group)
    async with bot.store.write() as session:
        row = (
            await session.exec(
                select(DialogState).where(
                    DialogState.platform == s.platform,
                    DialogState.chat_id == s.chat_id,
                    DialogState.user_id == s.user_id,
                )
            )
        ).first()
        if row is None:
            session.add(
                DialogState(
                    platform=s.platform,
                    chat_id=s.chat_id,
                    user_id=s.user_id,
                    dialog=lane.dialog,
                    step=lane.step,
                    data=lane.data,
                    version=1,
                )
            )
        elif (row.dialog, row.step, row.data) != (lane.dialog, lane.step, lane.data):
            await session.exec(
                update(DialogState)
                .where(DialogState.id == row.id)
                .values(
                    dialog=lane.dialog, step=lane.step, data=lane.data, version=row.version + 1
                )
            )


def watch_state(bot: ChatBot) -> set[tuple[str, str]]:
    """Return the set of people whose dialog state the core writes from now on."""
    moved: set[str] = set()
    save = bot.core._save_state

    async def saving(session, sender, row, state):
        moved.add((sender.chat_id, sender.user_id))
        await save(session, sender, row, state)

    bot.core._save_state = saving
    return moved


async def feed(bot: ChatBot, lane: Lane, inputs: list[str], tally: Tally, prefix: str) -> None:
    """Feed every input at one lane, putting the person back at the step whenever it moved."""
    s = who(lane.chat, group=lane.group)
    place = (s.chat_id, s.user_id)
    await put_back(bot, lane)
    for n, text in enumerate(inputs):
        for k, event in enumerate(events_for(lane, text, n, bot.forged)):
            if place in bot.moved:
                bot.moved.discard(place)
                await put_back(bot, lane)
            uid = f"{prefix}:{lane.name}:{n}:{k}"
            await handle(bot, dataclasses.replace(event, update_id=uid), lane.name, tally)


async def handle(bot: ChatBot, event: Event, lane: str, tally: Tally) -> None:
    tally.tried += 1
    uid = event.update_id
    try:
        handled = await bot.core.handle(event)
    except Exception as exc:  # a crash the core did not even catch
        tally.crashes.append(f"{lane}: {type(exc).__name__} on {event!r:.200}")
        return
    if handled.toast is not None:
        if handled.toast == catalog().render(APOLOGY, "zh_CN"):
            tally.crashes.append(f"{lane}: apology toast on {event!r:.200}")
        else:
            tally.clean += 1
        return
    tally.expect[uid] = (lane, handled.outbox_ids)


async def check_answers(bot: ChatBot, tally: Tally) -> None:
    """Read every reply back from the outbox: one per event, none the apology, all render."""
    async with bot.store.read() as s:
        rows = dict((await s.exec(select(Outbox.id, Outbox.payload))).all())
    for uid, (lane, ids) in tally.expect.items():
        replies = [rows[i] if isinstance(rows[i], dict) else json.loads(rows[i]) for i in ids]
        if not replies:
            if lane == "group":
                tally.clean += 1  # the bot keeps quiet in groups unless addressed
            else:
                tally.silent.append(f"{lane}: no answer to {uid}")
            continue
        bad = False
        for payload in replies:
            if "template" not in payload:
                continue  # a command menu
            reply = Reply.from_payload(payload)
            if reply.template == APOLOGY:
                tally.crashes.append(f"{lane}: apology for {uid}")
                bad = True
                break
            try:
                render_reply(reply, payload.get("locale", "zh_CN"))
            except Exception as exc:
                tally.crashes.append(f"{lane}: rendering {reply.template} failed: {exc!r:.200}")
                bad = True
                break
        if not bad:
            tally.clean += 1


def report_counts(request, label: str, inputs: int, tally: Tally, stored: list) -> None:
    TOTALS.update(
        tried=tally.tried,
        clean=tally.clean,
        crashes=len(tally.crashes),
        garbage=len(stored),
        silent=len(tally.silent),
    )
    line = (
        f"hostile corpus [{label}]: {inputs} of {len(CORPUS)} inputs, tried {tally.tried}, "
        f"clean answers {tally.clean}, crashes {len(tally.crashes)}, "
        f"stored garbage {len(stored)}, silent {len(tally.silent)}"
    )
    say(request, line)


def say(request, line: str) -> None:
    """Print a line on the terminal even while pytest captures output."""
    plugins = request.config.pluginmanager
    reporter, capture = (
        plugins.get_plugin("terminalreporter"),
        plugins.get_plugin("capturemanager"),
    )
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def totals(request):
    """Print the counts of the whole module once it has run."""
    yield
    if TOTALS["tried"]:
        line = "hostile corpus, all: " + ", ".join(f"{k} {v}" for k, v in sorted(TOTALS.items()))
        say(request, line)


def test_the_corpus_is_large_and_covers_every_trap():
    assert len(corpus()) >= 500
    assert len(set(corpus())) == len(corpus())
    joined = "".join(corpus())
    for trap in ("\x00", "\ud800", "\udfff", "\u202e", "\u200b", "\x1b", "\u2066", "\ufeff"):
        assert trap in joined


async def test_the_corpus_at_every_dialog_step(store, request):
    bot, lanes = await build_world(store)
    tally = Tally()
    inputs = share(store)
    by_person: dict[tuple[str, bool], list[Lane]] = {}
    for lane in lanes:
        by_person.setdefault((lane.chat, lane.group), []).append(lane)

    async def person(mine: list[Lane]) -> None:
        for lane in mine:
            await feed(bot, lane, inputs, tally, "d")

    await asyncio.gather(*(person(mine) for mine in by_person.values()))
    await check_answers(bot, tally)
    stored = await garbage(store)
    label = f"{len(lanes)} dialog steps, {store.url.split(':')[0]}"
    report_counts(request, label, len(inputs), tally, stored)
    assert tally.crashes == [], tally.crashes[:20]
    assert tally.silent == [], tally.silent[:20]
    assert stored == [], stored[:20]
    assert tally.clean == tally.tried


async def test_the_corpus_as_every_command_argument(store, request):
    bot, _ = await build_world(store)
    tally = Tally()
    inputs = share(store)
    commands = [*sorted(ROUTER.commands), "nosuchcommand"]
    people = [UNBOUND, MEMBER, SECRETARY, AUTHOR]

    async def person(chat: str, mine: list[str]) -> None:
        for command in mine:
            for n, text in enumerate(inputs):
                group = n % 17 == 0  # now and then the same from a group
                event = CommandReceived(
                    sender=who(chat, group=group),
                    command=command,
                    args=text,
                    update_id=f"c:{chat}:{command}:{n}",
                )
                await handle(bot, event, "group" if group else f"/{command}", tally)
        for n, payload in enumerate(DEEP_LINKS):  # forged invitations, bound or not
            event = CommandReceived(
                sender=who(chat), command="start", args=payload, update_id=f"c:{chat}:dl:{n}"
            )
            await handle(bot, event, "/start", tally)

    # every command gets every input; the people share the commands out and run at once
    await asyncio.gather(
        *(person(chat, commands[i :: len(people)]) for i, chat in enumerate(people))
    )
    await check_answers(bot, tally)
    stored = await garbage(store)
    label = f"{len(commands)} commands, {store.url.split(':')[0]}"
    report_counts(request, label, len(inputs), tally, stored)
    assert tally.crashes == [], tally.crashes[:20]
    assert tally.silent == [], tally.silent[:20]
    assert stored == [], stored[:20]
    assert tally.clean == tally.tried
