"""The core against a real store: binding, de-duplication, errors that change nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import func, select

from bot.outbox import OutboxWorker
from handlers.app import build_core
from handlers.callbacks import CallbackCodec
from handlers.events import (
    ButtonPressed,
    ChatType,
    CommandReceived,
    ContactShared,
    Sender,
    TextReceived,
)
from handlers.start import LangCb
from models import Account, AuditEvent, DialogState, GroupLink, Outbox
from tests.conftest import RecordingMessenger, seed_people

SECRET = b"test-secret"


def sender(uid: str = "100", chat: str | None = None, group: bool = False) -> Sender:
    return Sender(
        platform="test",
        user_id=uid,
        chat_id=chat or uid,
        chat_type=ChatType.GROUP if group else ChatType.PRIVATE,
        chat_title="东江村党员群" if group else "",
    )


class Bot:
    def __init__(self, store):
        self.store = store
        self.core = build_core(store, secret=SECRET)
        self.messenger = RecordingMessenger()
        self.worker = OutboxWorker(store, {"test": self.messenger})
        self.toasts: list[str] = []
        self._n = 0

    async def send(self, event):
        handled = await self.core.handle(event)
        if handled.toast:
            self.toasts.append(handled.toast)
        await self.worker.deliver_ids(handled.outbox_ids)
        return handled

    def uid(self) -> str:
        self._n += 1
        return str(self._n)

    async def count(self, model) -> int:
        async with self.store.read() as s:
            return (await s.exec(select(func.count()).select_from(model))).one()


@pytest.fixture
async def bot(store):
    await seed_people(store)
    return Bot(store)


async def test_unknown_person_is_refused_and_nothing_bound(bot):
    await bot.send(CommandReceived(sender=sender(), command="start", update_id="1"))
    await bot.send(ContactShared(sender=sender(), phone="13999999999", contact_user_id="100"))
    await bot.send(TextReceived(sender=sender(), text="你好"))
    texts = bot.messenger.texts()
    assert "分享我的手机号" in texts[0]
    assert "花名册中没有这个手机号" in texts[1]
    assert "还没有绑定身份" in texts[2]
    assert bot.messenger.sent[0][1].keyboard == "request_contact"
    assert await bot.count(Account) == 0


async def test_bind_by_own_contact_only(bot):
    await bot.send(ContactShared(sender=sender(), phone="13800000001", contact_user_id="999"))
    assert await bot.count(Account) == 0
    assert "本人" in bot.messenger.texts()[-1]
    await bot.send(
        ContactShared(sender=sender(), phone="+86 138-0000-0001", contact_user_id="100")
    )
    assert await bot.count(Account) == 1
    assert any("绑定成功" in t and "张建国" in t for t in bot.messenger.texts())
    assert bot.messenger.menus, "a command menu is set for the bound chat"
    async with bot.store.read() as s:
        kinds = (await s.exec(select(AuditEvent.kind))).all()
    assert "account.bound" in kinds


async def test_duplicate_update_has_one_effect(bot):
    ev = CommandReceived(sender=sender(), command="start", update_id="42")
    first = await bot.send(ev)
    second = await bot.send(ev)
    assert first.outbox_ids and not second.outbox_ids and second.duplicate
    assert len(bot.messenger.sent) == 1


async def test_help_differs_by_role(bot):
    await bot.send(ContactShared(sender=sender("1"), phone="13800000001", contact_user_id="1"))
    await bot.send(ContactShared(sender=sender("2"), phone="13800000002", contact_user_id="2"))
    bot.messenger.sent.clear()
    await bot.send(CommandReceived(sender=sender("1"), command="help"))
    await bot.send(CommandReceived(sender=sender("2"), command="help"))
    await bot.send(CommandReceived(sender=sender("3"), command="help"))
    member, secretary, stranger = bot.messenger.texts()
    assert "书记" in secretary and "书记" not in member
    assert "/start" in stranger and "/cancel" not in stranger


async def test_lang_switches_and_sticks(bot):
    await bot.send(ContactShared(sender=sender(), phone="13800000001", contact_user_id="100"))
    await bot.send(CommandReceived(sender=sender(), command="lang", args="en"))
    await bot.send(CommandReceived(sender=sender(), command="help"))
    assert bot.messenger.texts()[-2] == "Switched to English."
    assert "You can use" in bot.messenger.texts()[-1]
    async with bot.store.read() as s:
        assert (await s.exec(select(Account.locale))).one() == "en"


async def test_lang_chooser_survives_a_new_core(bot):
    await bot.send(CommandReceived(sender=sender(), command="lang"))
    data = bot.messenger.sent[-1][1].buttons[0][1].data
    fresh = Bot(bot.store)  # a restarted process: nothing kept in memory
    await fresh.send(ButtonPressed(sender=sender(), data=data, update_id="7"))
    assert fresh.messenger.texts()[-1] == "Switched to English."


async def test_forged_and_malformed_buttons_change_nothing(bot):
    await bot.send(ContactShared(sender=sender(), phone="13800000001", contact_user_id="100"))
    before = (await bot.count(Outbox), await bot.count(DialogState), await bot.count(Account))
    forged = CallbackCodec(b"other-secret", [LangCb]).encode(LangCb("en"))
    for data in (forged, "lang:en:AAAAAAAA", "garbage", "", "x" * 70, "lang:en"):
        await bot.send(ButtonPressed(sender=sender(), data=data))
    assert len(bot.toasts) == 6
    assert all("无法识别" in t for t in bot.toasts)
    after = (await bot.count(Outbox), await bot.count(DialogState), await bot.count(Account))
    assert before == after
    async with bot.store.read() as s:
        assert (await s.exec(select(Account.locale))).one() == "zh_CN"


async def test_bindgroup_by_secretary_only(bot):
    await bot.send(ContactShared(sender=sender("1"), phone="13800000001", contact_user_id="1"))
    await bot.send(ContactShared(sender=sender("2"), phone="13800000002", contact_user_id="2"))
    group = "-500"
    await bot.send(CommandReceived(sender=sender("1", group, group=True), command="bindgroup"))
    assert await bot.count(GroupLink) == 0
    assert "只有本组织的书记" in bot.messenger.texts(group)[-1]
    await bot.send(CommandReceived(sender=sender("2", group, group=True), command="bindgroup"))
    assert await bot.count(GroupLink) == 1
    assert "东江村党支部" in bot.messenger.texts(group)[-1]


async def test_group_chatter_is_ignored(bot):
    await bot.send(CommandReceived(sender=sender("9", "-1", group=True), command="pledge"))
    assert bot.messenger.sent == []


async def test_parallel_updates_of_one_person_do_not_interleave(bot):
    await bot.send(ContactShared(sender=sender(), phone="13800000001", contact_user_id="100"))
    events = [
        CommandReceived(
            sender=sender(), command="lang", args="en" if i % 2 else "zh", update_id=f"p{i}"
        )
        for i in range(20)
    ]
    await asyncio.gather(*(bot.send(e) for e in events))
    async with bot.store.read() as s:
        assert (await s.exec(select(Account.locale))).one() == "en"  # the last one wins


def test_today_turns_at_local_midnight_not_utc():
    from datetime import UTC, datetime

    from handlers.context import CoreConfig, Ctx, State

    late_utc = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 07:30 on 2 December in Longnan
    ctx = Ctx(
        session=None,
        event=TextReceived(sender=sender(), text="x"),
        locale="zh_CN",
        now=late_utc,
        codec=None,
        config=CoreConfig(),
        state=State(),
    )
    assert str(ctx.today()) == "2026-12-02"
    assert str(ctx.today("UTC")) == "2026-12-01"
