"""Contract: every button and every dialog answers bad or unexpected input plainly.

Each callback type, signed but pointing at records that do not exist, and each dialog, fed
empty text, oversize text, invisible-only text, a photo and a sticker while its data points
nowhere, must get an answer other than the apology for an unexpected error, and must leave the
campaign's records as they were. (``test_hostile_corpus.py`` feeds real dialog states.)
"""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum

import pytest
from sqlalchemy import insert

from handlers.app import build_router
from handlers.events import PhotoReceived, TextReceived, Unsupported, UnsupportedReceived
from models import (
    AuditEvent,
    DialogState,
    OrgReport,
    Pause,
    Pledge,
    PledgeItem,
    ProgressReport,
    Rectification,
    Review,
)
from models.base import utcnow
from templates import catalog
from tests.chat import MEMBER, SECRETARY, ChatBot, sender
from tests.conftest import a_campaign, seed_people

APOLOGY = catalog().render("error.unexpected", "zh_CN")
RECORDS = (Pledge, PledgeItem, Review, ProgressReport, OrgReport, Rectification, Pause, AuditEvent)
ROUTER = build_router()


def bogus(cb_type):
    """Return an instance of a callback type whose ids point at nothing."""
    hints = typing.get_type_hints(cb_type)
    values = {}
    for f in dataclasses.fields(cb_type):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if args else hint
        if base is int:
            values[f.name] = 987654
        elif isinstance(base, type) and issubclass(base, Enum):
            values[f.name] = next(iter(base))
        else:
            values[f.name] = "zz"
    return cb_type(**values)


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
    b = ChatBot(store, people, utcnow)
    for chat in (MEMBER, SECRETARY):
        await b.bind(chat)
    return b


async def records(bot) -> tuple[int, ...]:
    return tuple([await bot.count(model) for model in RECORDS])


@pytest.mark.parametrize("cb_type", ROUTER.callback_types(), ids=lambda t: t.__name__)
async def test_every_button_pointing_nowhere_gets_a_plain_answer(bot, cb_type):
    data = bot.core.codec.encode(bogus(cb_type))
    before = await records(bot)
    for chat in (MEMBER, SECRETARY):
        bot.toasts.clear()
        bot.messenger.sent.clear()
        await bot.press_data(chat, data)
        said = bot.toasts + bot.messenger.texts(chat)
        assert said, f"{cb_type.__name__}: no answer"
        assert APOLOGY not in said, f"{cb_type.__name__} failed unexpectedly"
    assert await records(bot) == before


@pytest.mark.parametrize("dialog", sorted(ROUTER.dialogs))
async def test_every_dialog_answers_unexpected_input(bot, dialog):
    junk = {
        "pledge_id": 987654,
        "version": 1,
        "item_id": 987654,
        "rect_id": 987654,
        "org_id": 987654,
        "month": "2026-05",
        "field": "content",
        "step": "x",
        "campaign_id": 987654,
        "reason": "leave",
        "until": "2099-01-01T00:00:00+00:00",
    }
    for chat in (MEMBER, SECRETARY):
        for event in (
            TextReceived(sender=sender(chat), text=""),
            TextReceived(sender=sender(chat), text="很长" * 3000),
            PhotoReceived(sender=sender(chat), file_id="photo-1"),
            TextReceived(sender=sender(chat), text="2026-06-30"),
            TextReceived(sender=sender(chat), text="\u200b\u202e"),
            UnsupportedReceived(sender=sender(chat), kind=Unsupported.STICKER),
        ):
            async with bot.store.write() as s:
                await s.exec(DialogState.__table__.delete().where(DialogState.user_id == chat))
                await s.exec(
                    insert(DialogState).values(
                        platform="test",
                        chat_id=chat,
                        user_id=chat,
                        dialog=dialog,
                        step="x",
                        data=junk,
                        version=1,
                        updated_at=utcnow(),
                    )
                )
            before = await records(bot)
            bot.messenger.sent.clear()
            await bot.send(event)
            said = bot.messenger.texts(chat)
            assert said, f"{dialog}: no answer to {event!r:.80}"
            assert APOLOGY not in said, f"{dialog} failed unexpectedly on {event!r:.80}"
            assert await records(bot) == before
