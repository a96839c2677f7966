"""The outbox worker against a real store: delivery, retries, blocked users, leases."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.delivery import DeliveryError
from bot.outbox import OutboxWorker
from campaign import outbox
from models import Account, Outbox, OutboxStatus
from models.base import utcnow
from models.reply import Reply
from tests.conftest import RecordingMessenger, seed_people


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
