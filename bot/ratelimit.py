"""Token buckets that keep outgoing messages under a platform's limits.

Telegram allows a bot about 30 messages a second overall, about one a second in one chat
(short bursts tolerated) and 20 a minute in one group; a 429 answer carries ``retry_after``.
``RateLimiter`` keeps, per platform, one overall bucket and one bucket per chat (two for a
group), and hands out sending permits:

* a sender first waits until its chat has a token, then queues for the overall bucket; that
  queue is ordered by priority (``models.dialog.Priority``), so a reply to someone talking to
  the bot takes the next overall token even while a broadcast keeps the bucket busy;
* ``penalize`` pauses after a 429: that chat for ``retry_after``, and the whole bot when the
  chat had tokens to spare (its own limit cannot have been the cause, so it was a flood).

Bucket sizes are chosen so that the buckets never exceed the platform's sliding windows: a
bucket of rate ``r`` and burst ``b`` sends at most ``b + r * w`` messages in any window ``w``.
The clock and the sleep are injectable, so tests run in virtual time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: below this many chats the limiter never prunes idle chat buckets
PRUNE_AT = 4096


def _never_group(chat_id: str) -> bool:
    return False


def telegram_is_group(chat_id: str) -> bool:
    """Tell whether a Telegram chat id is a group's (groups and channels have negative ids)."""
    return chat_id.startswith("-")


@dataclass(frozen=True)
class Bucket:
    """The size of a token bucket.

    Attributes:
        rate: tokens added per second.
        burst: the most tokens the bucket holds (what may go out at once after a pause).
    """

    rate: float
    burst: float = 1.0


@dataclass(frozen=True)
class Limits:
    """What one platform allows a bot.

    Attributes:
        overall: the bot's bucket across all chats.
        chat: each chat's bucket (None: no per-chat limit).
        group: a group chat's extra bucket, on top of ``chat`` (None: none).
        is_group: tells a group chat from a private one by its id.
        isolated: chats share nothing but the overall bucket (group robots: each robot has its
            own quota), so a rate-limit answer pauses only its chat, never the platform.
    """

    overall: Bucket
    chat: Bucket | None = None
    group: Bucket | None = None
    is_group: Callable[[str], bool] = field(default=_never_group)
    isolated: bool = False

    def with_rate(self, per_second: float, burst: float | None = None) -> Limits:
        """Return these limits with another overall rate (and burst)."""
        return replace(
            self,
            overall=Bucket(per_second, self.overall.burst if burst is None else burst),
        )


def telegram_limits(per_second: float = 29.0, burst: float = 1.1) -> Limits:
    """Return Telegram's limits, with an overall rate a little under the 30/s ceiling.

    Overall: ``per_second`` with a burst of 1.1, so no second holds more than
    ``floor(per_second + burst)`` = 30 messages (and 30 even if the network squeezes the
    sends of 1.06 s into one). The tenth of a token is slack for the event loop, which wakes
    up to a millisecond late: with a burst of exactly one, every late wake-up would be lost,
    3% of the rate at 29/s. A chat: one a second, bursts of three. A group: 17 a minute with
    bursts of three, which never puts more than 20 into any minute.
    """
    return Limits(
        overall=Bucket(per_second, burst),
        chat=Bucket(1.0, 3.0),
        group=Bucket(17 / 60, 3.0),
        is_group=telegram_is_group,
    )


def _always_group(chat_id: str) -> bool:
    return True


def robot_limits(kind: str) -> Limits:
    """Return the limits of one kind of group robot; each robot (chat) is limited on its own.

    WeCom and DingTalk allow a robot 20 messages a minute: a bucket of 18/min with a burst of
    two never puts more than 20 into any minute. Feishu allows a custom bot 5 a second and 100
    a minute: 4/s with a burst of one (at most 5 in a second) and, on top, 95/min with a burst
    of five (at most 100 in a minute). The overall bucket only spreads a burst of many robots.
    """
    overall = Bucket(50.0, 10.0)
    if kind == "feishu":
        return Limits(
            overall=overall,
            chat=Bucket(4.0, 1.0),
            group=Bucket(95 / 60, 5.0),
            is_group=_always_group,
            isolated=True,
        )
    return Limits(overall=overall, chat=Bucket(18 / 60, 2.0), isolated=True)


#: the group robots whose limits we know (``bot.robots``)
ROBOT_LIMITS: dict[str, Limits] = {k: robot_limits(k) for k in ("wecom", "dingtalk", "feishu")}


def sms_limits(per_second: float = 10.0) -> Limits:
    """Return the limits of SMS: ``per_second`` segments handed to the gateway, no burst.

    The SMSC's own window (SMS_WINDOW) bounds the submits in flight; this bucket keeps a big
    notice from flooding it. There is no per-chat limit.
    """
    return Limits(overall=Bucket(per_second, 1.0))


#: the limits of the platforms we know; other platforms (console, SMS stubs) are not limited
DEFAULT_LIMITS: dict[str, Limits] = {"telegram": telegram_limits(), **ROBOT_LIMITS}


class TokenBucket:
    """A token bucket on an external clock: it holds state only and never sleeps."""

    def __init__(self, spec: Bucket, now: float) -> None:
        self.rate = spec.rate
        self.burst = spec.burst
        self.tokens = spec.burst
        self.updated = now
        self.paused_until = -math.inf

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float, cost: float = 1.0) -> float:
        """Return how long until ``cost`` tokens may be taken (0: now)."""
        self._refill(now)
        wait = max(0.0, self.paused_until - now, self.updated - now)
        need = min(cost, self.burst)  # a cost above the burst goes into debt once full
        if self.tokens < need - 1e-9:
            wait = max(wait, (self.updated - now) + (need - self.tokens) / self.rate)
        return wait

    def full(self, now: float) -> bool:
        """Tell whether the bucket is full (nothing taken for a while)."""
        self._refill(now)
        return self.tokens >= self.burst - 1e-9 and now >= self.paused_until

    def take(self, now: float, cost: float = 1.0) -> None:
        """Take ``cost`` tokens (the caller has waited ``wait_time``)."""
        self._refill(now)
        self.tokens -= cost

    def pause(self, now: float, seconds: float) -> None:
        """Give no token for ``seconds``, then restart with at most one."""
        until = now + seconds
        if until <= self.paused_until:
            return
        self._refill(now)
        self.paused_until = until
        self.tokens = min(self.tokens, 1.0)
        self.updated = max(self.updated, until)


class _Gate:
    """One overall bucket with a queue of waiters ordered by priority, then arrival."""

    def __init__(self, bucket: TokenBucket, clock: Clock, sleep: Sleep) -> None:
        self.bucket = bucket
        self._clock = clock
        self._sleep = sleep
        self._heap: list[tuple[int, int, float, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for *_, f in self._heap if not f.done())

    async def take(self, priority: int, cost: float) -> None:
        if not self._heap and self.bucket.wait_time(self._clock(), cost) <= 0:
            self.bucket.take(self._clock(), cost)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (priority, next(self._seq), cost, future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run())
        await future

    async def _run(self) -> None:
        # one task hands out tokens, always to the most urgent waiter at the moment of handing
        while self._heap:
            _, _, cost, future = self._heap[0]
            if future.done():  # its sender was cancelled
                heapq.heappop(self._heap)
                continue
            wait = self.bucket.wait_time(self._clock(), cost)
            if wait > 0:
                await self._sleep(wait)
                continue
            heapq.heappop(self._heap)
            self.bucket.take(self._clock(), cost)
            future.set_result(None)


class _Chat:
    """One chat's buckets, and whether its last send left it tokens to spare."""

    __slots__ = ("buckets", "paused_until", "spare")

    def __init__(self, buckets: list[TokenBucket]) -> None:
        self.buckets = buckets
        self.paused_until = -math.inf
        self.spare = True

    def wait_time(self, now: float, cost: float) -> float:
        wait = max(0.0, self.paused_until - now)
        if cost > 0:
            for b in self.buckets:
                wait = max(wait, b.wait_time(now, cost))
        return wait

    def idle(self, now: float) -> bool:
        return now >= self.paused_until and all(b.full(now) for b in self.buckets)


class _Platform:
    def __init__(self, limits: Limits, gate: _Gate) -> None:
        self.limits = limits
        self.gate = gate
        self.chats: dict[str, _Chat] = {}
        self.prune_at = PRUNE_AT


class RateLimiter:
    """Permits to send, under each platform's limits; shared by every sender of one bot.

    Args:
        limits: the limits of each platform; platforms not listed are not limited.
        clock: monotonic seconds (injectable for tests).
        sleep: the sleep to wait with (injectable for tests).
    """

    def __init__(
        self,
        limits: Mapping[str, Limits] | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.clock = clock
        self.sleep = sleep
        self._platforms: dict[str, _Platform] = {}
        self._paused: dict[str, float] = {}
        self.pauses = 0

    def _platform(self, platform: str) -> _Platform | None:
        state = self._platforms.get(platform)
        if state is None:
            limits = self.limits.get(platform)
            if limits is None:
                return None
            gate = _Gate(TokenBucket(limits.overall, self.clock()), self.clock, self.sleep)
            state = self._platforms[platform] = _Platform(limits, gate)
        return state

    def _chat(self, state: _Platform, chat_id: str) -> _Chat:
        chat = state.chats.get(chat_id)
        if chat is None:
            if len(state.chats) >= state.prune_at:
                self._prune(state)
            now = self.clock()
            limits = state.limits
            buckets = [TokenBucket(limits.chat, now)] if limits.chat else []
            if limits.group is not None and limits.is_group(chat_id):
                buckets.append(TokenBucket(limits.group, now))
            chat = state.chats[chat_id] = _Chat(buckets)
        return chat

    def _prune(self, state: _Platform) -> None:
        # an idle chat's buckets are full: forgetting them changes nothing
        now = self.clock()
        state.chats = {k: c for k, c in state.chats.items() if not c.idle(now)}
        state.prune_at = max(PRUNE_AT, 2 * len(state.chats))

    def limited(self, platform: str) -> bool:
        """Tell whether sends on ``platform`` are limited at all."""
        return platform in self.limits

    async def acquire(
        self,
        platform: str,
        chat_id: str,
        *,
        priority: int = 5,
        cost: float = 1.0,
        chat_cost: float | None = None,
    ) -> None:
        """Wait until one more message (of ``cost`` API calls) may go to ``chat_id``.

        Callers send to one chat one message at a time; the worker guarantees it.

        Args:
            platform: whose limits apply.
            chat_id: the chat the message goes to.
            priority: lower goes first among the senders waiting for the overall bucket.
            cost: overall tokens to take (API calls the message needs).
            chat_cost: the chat's tokens to take (default ``cost``; 0 for calls that post
                nothing into the chat, such as setting its command menu).
        """
        state = self._platform(platform)
        if state is None:
            while (wait := self._paused.get(platform, -math.inf) - self.clock()) > 0:
                await self.sleep(wait)
            return
        chat_cost = cost if chat_cost is None else chat_cost
        chat = self._chat(state, chat_id)
        while True:
            wait = chat.wait_time(self.clock(), chat_cost)
            if wait > 0:
                await self.sleep(wait)
                continue
            await state.gate.take(priority, cost)
            now = self.clock()
            if chat.wait_time(now, chat_cost) > 0:
                continue  # the chat was paused meanwhile: that overall token is lost
            if chat_cost > 0:
                chat.spare = all(b.full(now) for b in chat.buckets)
                for b in chat.buckets:
                    b.take(now, chat_cost)
            # keep the record of this send: a 429 that follows is judged by it
            state.chats[chat_id] = chat
            return

    def penalize(self, platform: str, chat_id: str, retry_after: float) -> bool:
        """Pause after a 429: the chat, and the whole bot if the chat had tokens to spare.

        Returns:
            True if the whole bot was paused.
        """
        state = self._platform(platform)
        if state is None:
            return False
        now = self.clock()
        chat = state.chats.get(chat_id)
        overall = (chat is None or chat.spare) and not state.limits.isolated
        if chat is None:
            chat = self._chat(state, chat_id)
        chat.paused_until = max(chat.paused_until, now + retry_after)
        for b in chat.buckets:
            b.pause(now, retry_after)
        if overall:
            state.gate.bucket.pause(now, retry_after)
        self.pauses += 1
        log.warning(
            "%s: 429 for chat %s, pausing %s for %.1fs",
            platform,
            chat_id,
            "the whole bot" if overall else "that chat",
            retry_after,
        )
        return overall

    def pause(self, platform: str, seconds: float) -> None:
        """Pause every send on ``platform`` for ``seconds`` (limited or not)."""
        state = self._platform(platform)
        if state is not None:
            state.gate.bucket.pause(self.clock(), seconds)
        else:
            until = self.clock() + seconds
            self._paused[platform] = max(self._paused.get(platform, -math.inf), until)

    def waiting(self, platform: str) -> int:
        """Return how many senders wait for the platform's overall bucket."""
        state = self._platforms.get(platform)
        return state.gate.waiting if state else 0
