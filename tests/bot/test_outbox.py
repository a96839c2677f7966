"""The outbox worker against a real store: order, priority, limits, retries, leases."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from datetime import timedelta

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlmodel import select

from bot.delivery import DeliveryError
from bot.outbox import OutboxWorker
from bot.ratelimit import Bucket, Limits, RateLimiter
from bot.telegram import TelegramMessenger
from campaign import outbox
from models import Account, Outbox, OutboxStatus
from models.base import utcnow
from models.dialog import Priority
from models.reply import Reply
from tests.conftest import RecordingMessenger, seed_people
from tests.tools.broadcast import queue_broadcast
from tests.tools.fake_bot_api import ApiLimits, FakeBotApi


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now


async def _queue(store, n=1, chat="c1", key=None):
    async with store.write() as s:
        for i in range(n):
            await outbox.enqueue(
                s,
                platform="test",
                chat_id=chat,
                reply=Reply("error.stale_card"),
                locale="zh_CN",
                key=f"{key}:{i}" if key else None,
            )


async def _rows(store):
    async with store.read() as s:
        return (await s.exec(select(Outbox).order_by(Outbox.id))).all()


async def test_delivers_in_order_and_marks_sent(store):
    await _queue(store, 3)
    m = RecordingMessenger()
    w = OutboxWorker(store, {"test": m})
    assert await w.run_once() == 3
    assert m.texts() == ["这张卡片已过期：承诺已有变化或已处理。"] * 3
    assert {r.status for r in await _rows(store)} == {OutboxStatus.SENT}
    assert await w.run_once() == 0


async def test_same_cause_is_queued_once(store):
    await _queue(store, 1, key="cause")
    await _queue(store, 1, key="cause")
    assert len(await _rows(store)) == 1


async def test_retry_after_and_network_faults_back_off(store):
    await _queue(store, 1)
    clock = Clock()
    m = RecordingMessenger(fail_with=[DeliveryError("429", retry_after=7), OSError("reset")])
    w = OutboxWorker(store, {"test": m}, clock=clock)
    await w.run_once()
    (row,) = await _rows(store)
    assert row.status == OutboxStatus.PENDING and row.not_before >= clock.now + timedelta(
        seconds=7
    )
    assert await w.run_once() == 0  # not due yet
    clock.now += timedelta(seconds=8)
    await w.run_once()  # the network fault
    clock.now += timedelta(seconds=5)
    await w.run_once()
    (row,) = await _rows(store)
    assert row.status == OutboxStatus.SENT and row.attempts == 3


async def test_blocked_user_goes_inactive_and_is_not_retried(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(
            Account(
                platform="test", external_id="c1", chat_id="c1", member_id=people.ids["member"]
            )
        )
    await _queue(store, 1)
    m = RecordingMessenger(fail_with=[DeliveryError("403", blocked=True)])
    await OutboxWorker(store, {"test": m}).run_once()
    (row,) = await _rows(store)
    assert row.status == OutboxStatus.DEAD
    async with store.read() as s:
        assert (await s.exec(select(Account.active))).one() is False


async def test_a_dead_workers_lease_expires(store):
    await _queue(store, 2)
    clock = Clock()
    dead = OutboxWorker(store, {"test": RecordingMessenger()}, clock=clock, lease_seconds=30)
    claimed = await dead._claim()  # claims and then "dies" without sending
    assert len(claimed) == 2
    m = RecordingMessenger()
    live = OutboxWorker(store, {"test": m}, clock=clock)
    assert await live.run_once() == 0
    clock.now += timedelta(seconds=31)
    assert await live.run_once() == 2
    assert len(m.sent) == 2


async def test_a_worker_never_claims_again_what_it_holds_unmarked(store):
    """A slow flush (a busy store, a loaded machine) must not let a lease run out into a resend.

    Found: under load the kill test saw up to 128 repeats for batches of 100: the worker's own
    next claim took rows it had sent but not yet marked once their lease had run out.
    """
    await _queue(store, 2)
    clock = Clock()
    m = RecordingMessenger()
    worker = OutboxWorker(store, {"test": m}, clock=clock, lease_seconds=2)
    held = await worker._claim()
    assert len(held) == 2
    clock.now += timedelta(seconds=3)  # the lease ran out while the rows were still ours
    assert await worker._claim() == []
    other = OutboxWorker(store, {"test": m}, clock=clock)
    assert len(await other._claim()) == 2  # another worker may take them: the lease is over


# -- order, priority and limits under concurrency -----------------------------------------------


class SlowMessenger(RecordingMessenger):
    """Takes a little while per send, records when, and checks one send per chat at a time."""

    def __init__(self, delay=(0.001, 0.005), seed=1):
        super().__init__()
        self.delay = delay
        self.random = random.Random(seed)
        self.in_flight: set[str] = set()
        self.overlaps = 0
        self.times: list[tuple[str, str, float]] = []

    async def send(self, chat_id, message):
        if chat_id in self.in_flight:
            self.overlaps += 1
        self.in_flight.add(chat_id)
        try:
            await asyncio.sleep(self.random.uniform(*self.delay))
            if self.fail_with and self.fail_with[0][0] == chat_id:
                raise self.fail_with.pop(0)[1]
            self.sent.append((chat_id, message))
            self.times.append((chat_id, message.text, time.monotonic()))
            return str(len(self.sent))
        finally:
            self.in_flight.discard(chat_id)


async def _queue_texts(store, rows, priority=Priority.NOTICE):
    """Queue (chat, text) rows in this order; return their ids."""
    ids = []
    async with store.write() as s:
        for chat, text in rows:
            ids.append(
                await outbox.enqueue(
                    s,
                    platform="test",
                    chat_id=chat,
                    reply=Reply("demo.step", {"text": text}),
                    locale="zh_CN",
                    priority=priority,
                )
            )
    return ids


def _limited(per_second, burst=1.0):
    return RateLimiter({"test": Limits(overall=Bucket(per_second, burst), chat=Bucket(100, 5))})


async def _run_until(workers, done, timeout=20.0):
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop, idle=0.05)) for w in workers]
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "delivery did not finish"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_two_concurrent_workers_keep_each_chats_order_and_never_overlap_a_chat(store):
    chats = [f"c{i}" for i in range(6)]
    await _queue_texts(store, [(c, f"{c}:{n}") for n in range(15) for c in chats])
    m = SlowMessenger()
    workers = [
        OutboxWorker(store, {"test": m}, batch=10, concurrency=4, owner=name)
        for name in ("w1", "w2")
    ]
    await _run_until(workers, lambda: len(m.sent) >= 90)
    await asyncio.sleep(0.1)
    assert len(m.sent) == 90 and m.overlaps == 0
    for c in chats:
        assert m.texts(c) == [f"▶ {c}:{n}" for n in range(15)]
    assert {r.status for r in await _rows(store)} == {OutboxStatus.SENT}


async def test_a_reply_goes_out_ahead_of_a_broadcast_in_progress(store):
    await queue_broadcast(store, [f"b{i}" for i in range(80)], key="bc", platform="test")
    m = SlowMessenger(delay=(0.003, 0.006))
    worker = OutboxWorker(store, {"test": m}, limiter=_limited(40.0), concurrency=8)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop, idle=0.05))
    try:
        while len(m.sent) < 10:
            await asyncio.sleep(0.01)
        asked = time.monotonic()
        (reply,) = await _queue_texts(store, [("talker", "answer")], priority=Priority.REPLY)
        assert await worker.deliver_ids([reply]) == 1
        took = time.monotonic() - asked
        before = len(m.sent)
        position = m.texts().index("▶ answer")
    finally:
        stop.set()
        await loop
    assert took < 0.25  # at 40/s one token is 25 ms; a broadcast batch would take seconds
    assert position >= before - 3  # the reply is among the last sends, nothing long passed it
    assert len(m.sent) < 80  # the broadcast was still going on


async def test_a_429_pauses_everything_for_retry_after_and_the_row_goes_later(store):
    chats = [f"r{i}" for i in range(30)]
    await queue_broadcast(store, chats, key="ra", platform="test")
    m = SlowMessenger()
    m.fail_with = [("r3", DeliveryError("429", retry_after=0.5))]
    worker = OutboxWorker(store, {"test": m}, limiter=_limited(100.0), concurrency=4)
    started = time.monotonic()
    await _run_until([worker], lambda: len(m.sent) >= 30)
    # the first sends were already under way when the 429 came; none started during the pause
    times = sorted(t - started for _, _, t in m.times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 0.45
    r3 = next(t for c, _, t in m.times if c == "r3") - started
    assert r3 >= 0.5
    row = next(r for r in await _rows(store) if r.chat_id == "r3")
    assert row.status == OutboxStatus.SENT and row.attempts == 2
    assert "429" in (row.last_error or "") or row.last_error is None


async def test_a_row_waiting_for_a_retry_holds_back_the_rest_of_its_chat(store):
    await _queue_texts(store, [("c1", "one"), ("c1", "two"), ("c2", "other"), ("c1", "three")])
    clock = Clock()
    m = SlowMessenger()
    m.fail_with = [("c1", OSError("reset"))]
    w = OutboxWorker(store, {"test": m}, clock=clock)
    assert await w.run_once() == 4
    assert m.texts() == ["▶ other"]
    assert await w.run_once() == 0  # "one" waits for its retry, "two" and "three" behind it
    rows = await _rows(store)
    assert [r.attempts for r in rows] == [1, 0, 1, 0]  # given back unsent: no attempt counted
    assert all(r.lease_until is None for r in rows)
    clock.now += timedelta(seconds=2)
    assert await w.run_once() == 3
    assert m.texts("c1") == ["▶ one", "▶ two", "▶ three"]


async def test_a_reply_passes_a_waiting_broadcast_row_of_the_same_chat(store):
    await _queue_texts(store, [("c1", "news")], priority=Priority.BROADCAST)
    clock = Clock()
    m = SlowMessenger()
    m.fail_with = [("c1", DeliveryError("429", retry_after=60))]
    w = OutboxWorker(store, {"test": m}, clock=clock)
    assert await w.run_once() == 1 and not m.sent
    (reply,) = await _queue_texts(store, [("c1", "answer")], priority=Priority.REPLY)
    assert await w.deliver_ids([reply]) == 1
    assert m.texts("c1") == ["▶ answer"]


async def test_the_reply_path_leaves_rows_behind_an_earlier_pending_row_to_the_loop(store):
    first, second = await _queue_texts(store, [("c1", "first"), ("c1", "second")])
    m = SlowMessenger()
    w = OutboxWorker(store, {"test": m})
    assert await w.deliver_ids([second]) == 0  # "first" is pending and was not asked for
    assert await w.deliver_ids([first, second]) == 2
    assert m.texts() == ["▶ first", "▶ second"]


async def test_stopping_the_loop_gives_back_what_was_not_sent(store):
    await queue_broadcast(store, [f"s{i}" for i in range(40)], key="st", platform="test")
    m = SlowMessenger()
    worker = OutboxWorker(store, {"test": m}, limiter=_limited(20.0), concurrency=4)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop, idle=0.05))
    while len(m.sent) < 5:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(loop, 5)
    rows = await _rows(store)
    sent = [r for r in rows if r.status == OutboxStatus.SENT]
    assert len(sent) == len(m.sent) and 5 <= len(sent) < 40
    waiting = [r for r in rows if r.status == OutboxStatus.PENDING]
    assert all(r.lease_until is None and r.attempts == 0 for r in waiting)


async def test_network_faults_in_a_row_pause_the_platform_instead_of_burning_retries(store):
    await queue_broadcast(store, [f"n{i}" for i in range(20)], key="nf", platform="test")
    m = SlowMessenger()
    m.fail_with = [(f"n{i}", OSError("down")) for i in range(20)]
    start = time.monotonic()
    # the limiter's clock runs ten times slower, so the 1 s pause outlasts the 0.5 s we watch
    # even when a loaded machine wakes this test late
    limiter = RateLimiter({}, clock=lambda: start + (time.monotonic() - start) / 10)
    worker = OutboxWorker(store, {"test": m}, concurrency=1, limiter=limiter)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop, idle=0.05))
    await asyncio.sleep(0.5)
    stop.set()
    await loop
    attempted = [r for r in await _rows(store) if r.attempts]
    assert len(attempted) == 2  # the second fault paused everything for a second


async def test_the_real_telegram_messenger_against_the_stand_in_gets_no_429(sqlite_store):
    people = await seed_people(sqlite_store)
    async with sqlite_store.write() as s:
        s.add(
            Account(
                platform="telegram",
                external_id="666",
                chat_id="666",
                member_id=people.ids["member"],
            )
        )
    chats = [str(1000 + i) for i in range(120)] + ["666"]
    await queue_broadcast(sqlite_store, chats, key="tg")
    chatty = await _queue_texts_tg(sqlite_store, [("77", f"c{i}") for i in range(5)])
    group = await _queue_texts_tg(sqlite_store, [("-1009", f"g{i}") for i in range(4)])
    # Telegram's shapes, sped up: 100/s overall and 6 per 3 s in a group
    api_limits = ApiLimits(overall=100, group=6, group_window=3.0)
    limits = Limits(
        overall=Bucket(95.0, 1.0),
        chat=Bucket(1.0, 3.0),
        group=Bucket(4 / 3, 2.0),  # 2 + 4/3 * 3 = 6 in any 3 s
        is_group=lambda chat: chat.startswith("-"),
    )
    async with FakeBotApi(limits=api_limits, latency=(0.005, 0.015), blocked={"666"}) as api:
        bot = Bot(
            "123456:FAKE-outbox", session=AiohttpSession(api=TelegramAPIServer.from_base(api.url))
        )
        worker = OutboxWorker(
            sqlite_store,
            {"telegram": TelegramMessenger(bot)},
            limiter=RateLimiter({"telegram": limits}),
        )
        try:
            await _run_until([worker], lambda: len(api.accepted) >= 129, timeout=30)
        finally:
            await bot.session.close()
    assert api.too_many_total == 0 and api.forbidden == 1
    assert api.texts("77") == [f"▶ c{i}" for i in range(5)]
    assert api.texts("-1009") == [f"▶ g{i}" for i in range(4)]
    rows = {r.id: r for r in await _rows(sqlite_store)}
    assert all(rows[i].status == OutboxStatus.SENT for i in chatty + group)
    blocked = next(r for r in rows.values() if r.chat_id == "666")
    assert blocked.status == OutboxStatus.DEAD
    async with sqlite_store.read() as s:
        assert (await s.exec(select(Account.active))).one() is False


async def _queue_texts_tg(store, rows):
    ids = []
    async with store.write() as s:
        for chat, text in rows:
            ids.append(
                await outbox.enqueue(
                    s,
                    platform="telegram",
                    chat_id=chat,
                    reply=Reply("demo.step", {"text": text}),
                    locale="zh_CN",
                )
            )
    return ids
