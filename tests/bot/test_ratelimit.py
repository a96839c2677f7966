"""The rate limiter in virtual time, and the stand-in Bot API that enforces the same limits."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.delivery import DeliveryError, RenderedMessage
from bot.ratelimit import Bucket, Limits, RateLimiter, TokenBucket, telegram_limits
from bot.telegram import TelegramMessenger
from models.dialog import Priority
from tests.tools.fake_bot_api import ApiLimits, FakeBotApi

TOKEN = "123456:FAKE-ratelimit"


class FakeTime:
    """Virtual time: ``sleep`` returns when every task is waiting and the clock reaches it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._seq), future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        while self._timers:
            for _ in range(20):  # let every runnable task run (and maybe sleep) first
                await asyncio.sleep(0)
            when, _, future = heapq.heappop(self._timers)
            if future.done():
                continue
            self.now = max(self.now, when)
            future.set_result(None)


def max_in_window(times: list[float], window: float) -> int:
    """Return the most events in any half-open window (t - window, t]."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def limiter(limits: Limits, time: FakeTime) -> RateLimiter:
    return RateLimiter({"telegram": limits}, clock=time, sleep=time.sleep)


async def grants(lim: RateLimiter, time: FakeTime, chats: list[str], **kw) -> list[float]:
    """Acquire once per chat, concurrently; return when each permit came."""
    times: list[float] = [0.0] * len(chats)

    async def one(i: int, chat: str) -> None:
        await lim.acquire("telegram", chat, **kw)
        times[i] = time()

    await asyncio.gather(*(one(i, c) for i, c in enumerate(chats)))
    return times


# -- the bucket ---------------------------------------------------------------------------------


def test_a_bucket_gives_its_burst_then_one_token_per_interval():
    b = TokenBucket(Bucket(rate=2.0, burst=3.0), now=0.0)
    for _ in range(3):
        assert b.wait_time(0.0) == 0
        b.take(0.0)
    assert b.wait_time(0.0) == pytest.approx(0.5)
    assert b.wait_time(0.25) == pytest.approx(0.25)
    b.take(0.5)
    assert b.wait_time(0.5) == pytest.approx(0.5)
    assert b.full(10.0)


def test_a_paused_bucket_gives_nothing_until_the_pause_ends_then_one_token():
    b = TokenBucket(Bucket(rate=1.0, burst=3.0), now=0.0)
    b.pause(0.0, 5.0)
    assert b.wait_time(1.0) == pytest.approx(4.0)
    assert b.wait_time(5.0) == 0
    b.take(5.0)
    assert b.wait_time(5.0) == pytest.approx(1.0)  # restarts gently, not with a full burst


def test_a_message_costing_more_than_the_burst_waits_for_a_full_bucket_then_owes():
    b = TokenBucket(Bucket(rate=1.0, burst=2.0), now=0.0)
    b.take(0.0, 3.0)  # full: allowed, now one token in debt
    assert b.wait_time(0.0) == pytest.approx(2.0)


# -- the limiter in virtual time ----------------------------------------------------------------


async def test_the_overall_rate_holds_across_chats():
    time = FakeTime()
    lim = limiter(telegram_limits(29.0), time)
    start = time()
    times = await grants(lim, time, [str(i) for i in range(290)])
    assert max_in_window(times, 1.0) <= 30  # Telegram's ceiling, never reached
    assert max(times) - start == pytest.approx(289 / 29, rel=0.01)


async def test_the_overall_rate_is_configurable():
    time = FakeTime()
    lim = limiter(telegram_limits(10.0), time)
    times = await grants(lim, time, [str(i) for i in range(50)])
    assert max_in_window(times, 1.0) <= 11
    assert max(times) - min(times) == pytest.approx(4.9, rel=0.01)


async def test_one_chat_gets_a_short_burst_then_one_message_a_second():
    time = FakeTime()
    lim = limiter(telegram_limits(), time)
    start = time()
    times = []
    for _ in range(8):
        await lim.acquire("telegram", "42")
        times.append(time() - start)
    assert times[:3] == pytest.approx([0, 0, 0], abs=0.1)
    assert [b - a for a, b in itertools.pairwise(times[3:])] == pytest.approx([1.0] * 4, rel=0.01)


async def test_a_busy_chat_does_not_hold_up_other_chats():
    time = FakeTime()
    lim = limiter(telegram_limits(), time)
    for _ in range(3):
        await lim.acquire("telegram", "busy")
    start = time()
    busy = asyncio.create_task(lim.acquire("telegram", "busy"))
    for chat in ("a", "b", "c"):
        await lim.acquire("telegram", chat)
    assert time() - start < 0.2
    await busy
    assert 0.9 <= time() - start <= 1.0  # its burst went out 1/29 s apart, refilling a little


async def test_a_group_gets_at_most_20_messages_a_minute():
    time = FakeTime()
    lim = limiter(telegram_limits(), time)
    start = time()
    times = []
    for _ in range(45):
        await lim.acquire("telegram", "-1001234")
        times.append(time())
    assert max_in_window(times, 60.0) <= 20
    assert times[-1] - start == pytest.approx((45 - 3) * 60 / 17, rel=0.01)


async def test_is_group_decides_which_chats_are_groups():
    time = FakeTime()
    limits = Limits(
        overall=Bucket(100.0),
        chat=Bucket(10.0, 1.0),
        group=Bucket(1.0, 1.0),
        is_group=lambda chat: chat.startswith("room:"),
    )
    lim = RateLimiter({"sms": limits}, clock=time, sleep=time.sleep)
    start = time()
    for _ in range(3):
        await lim.acquire("sms", "room:1")
    assert time() - start == pytest.approx(2.0, rel=0.01)
    start = time()
    for _ in range(3):
        await lim.acquire("sms", "-5")
    assert time() - start == pytest.approx(0.01 + 0.2, rel=0.01)  # an overall token, then 10/s


async def test_a_reply_takes_the_next_token_ahead_of_a_waiting_broadcast():
    time = FakeTime()
    lim = limiter(telegram_limits(10.0), time)
    order: list[str] = []

    async def send(chat: str, priority: int) -> None:
        await lim.acquire("telegram", chat, priority=priority)
        order.append(chat)

    broadcast = [asyncio.create_task(send(f"b{i}", Priority.BROADCAST)) for i in range(20)]
    while len(order) < 5:
        await asyncio.sleep(0)
    start = time()
    await send("reply", Priority.REPLY)
    assert order.index("reply") <= 6  # the one token being waited for, then the reply
    assert time() - start <= 0.1 + 1e-9  # one token interval at 10/s
    await asyncio.gather(*broadcast)


async def test_a_429_in_a_chat_with_spare_tokens_pauses_the_whole_bot():
    time = FakeTime()
    lim = limiter(telegram_limits(), time)
    await lim.acquire("telegram", "1")
    assert lim.penalize("telegram", "1", 5.0) is True
    start = time()
    await lim.acquire("telegram", "2")
    assert time() - start == pytest.approx(5.0, abs=0.05)


async def test_a_429_in_a_chat_that_used_its_burst_pauses_only_that_chat():
    time = FakeTime()
    lim = limiter(telegram_limits(), time)
    for _ in range(3):
        await lim.acquire("telegram", "chatty")
    assert lim.penalize("telegram", "chatty", 4.0) is False
    start = time()
    await lim.acquire("telegram", "other")
    assert time() - start < 0.1
    await lim.acquire("telegram", "chatty")
    assert time() - start >= 4.0


async def test_a_cancelled_waiter_gives_its_turn_away():
    time = FakeTime()
    lim = limiter(telegram_limits(10.0), time)
    await lim.acquire("telegram", "a")
    doomed = asyncio.create_task(lim.acquire("telegram", "b", priority=Priority.REPLY))
    await asyncio.sleep(0)
    doomed.cancel()
    start = time()
    await lim.acquire("telegram", "c")
    assert time() - start == pytest.approx(0.1, abs=0.01)


async def test_platforms_without_limits_are_not_held_up_unless_paused():
    time = FakeTime()
    lim = RateLimiter({}, clock=time, sleep=time.sleep)
    start = time()
    for _ in range(100):
        await lim.acquire("console", "me")
    assert time() == start
    lim.pause("console", 3.0)
    await lim.acquire("console", "me")
    assert time() - start == pytest.approx(3.0)


async def test_idle_chats_are_forgotten():
    time = FakeTime()
    lim = limiter(telegram_limits(1000.0, burst=1000.0), time)
    for i in range(5000):
        await lim.acquire("telegram", str(i))
    await time.sleep(10)
    await lim.acquire("telegram", "last")
    assert len(lim._platforms["telegram"].chats) < 5000


# -- the stand-in Bot API enforces the same limits ------------------------------------------------


def messenger(api: FakeBotApi) -> TelegramMessenger:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.url))
    return TelegramMessenger(Bot(TOKEN, session=session))


async def test_the_stand_in_refuses_a_flood_with_retry_after():
    async with FakeBotApi(limits=ApiLimits(overall=5)) as api:
        m = messenger(api)
        try:
            results = await asyncio.gather(
                *(m.send(str(100 + i), RenderedMessage(f"m{i}")) for i in range(8)),
                return_exceptions=True,
            )
        finally:
            await m.bot.session.close()
    refused = [r for r in results if isinstance(r, DeliveryError)]
    assert len(api.accepted) == 5 and len(refused) == 3
    assert all(r.retry_after and r.retry_after >= 1 for r in refused)
    assert api.too_many == {"overall": 3}


async def test_the_stand_in_limits_private_chats_and_groups_and_knows_blocked_users():
    limits = ApiLimits(chat_burst=2.0, group=3)
    async with FakeBotApi(limits=limits, blocked={"666"}) as api:
        m = messenger(api)
        try:
            outcomes = []
            for chat in ["7"] * 3 + ["-100"] * 4 + ["666"]:
                try:
                    await m.send(chat, RenderedMessage("hi"))
                    outcomes.append("ok")
                except DeliveryError as exc:
                    outcomes.append("429" if exc.retry_after else "403" if exc.blocked else "?")
        finally:
            await m.bot.session.close()
    assert outcomes == ["ok", "ok", "429", "ok", "ok", "ok", "429", "403"]
    assert api.too_many == {"chat": 1, "group": 1}
    assert api.texts("-100") == ["hi"] * 3
