"""The composition of the core: every command, button and dialog, wired by one factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from campaign.cards import CriterionCb, PeerCb, ReasonCb, ReviewCb
from campaign.db import Store
from handlers import group, mine, review, start
from handlers.callbacks import CallbackCodec
from handlers.context import CoreConfig
from handlers.core import Core
from handlers.router import Router
from models.base import utcnow


def build_router() -> Router:
    """Return a new router with every handler registered."""
    r = Router()
    r.command("start", start.on_start, public=True)
    r.command("help", start.on_help, public=True, group=True)
    r.command("lang", start.on_lang, public=True)
    r.command("cancel", start.on_cancel, public=True)
    r.command("bindgroup", group.on_bindgroup, group=True)
    r.button(start.LangCb, start.on_lang_button, public=True)
    r.button(group.BindGroupCb, group.on_bindgroup_button)
    r.command("review", review.on_review)
    r.button(ReviewCb, review.on_decision)
    r.button(CriterionCb, review.on_criterion)
    r.button(ReasonCb, review.on_reason)
    r.button(PeerCb, review.on_peer)
    r.dialog(review.REASON_DIALOG, review.on_reason_text)
    r.dialog(review.PEER_DIALOG, review.on_peer_text)
    r.command("mine", mine.on_mine)
    r.command("public", mine.on_public, group=True)
    r.contact = start.on_contact
    return r


def build_core(
    store: Store,
    *,
    secret: bytes,
    config: CoreConfig | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Core:
    """Return a core over ``store``, its buttons signed with ``secret``."""
    router = build_router()
    codec = CallbackCodec(secret, router.callback_types())
    return Core(store, router, codec, config=config, clock=clock)
