"""The composition of the core: every command, button and dialog, wired by one factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from campaign.cards import CriterionCb, PeerCb, ReasonCb, RectCb, ReviewCb
from campaign.db import Store
from campaign.documents import Documents
from campaign.monthly import MONTHLY_TYPES, ProgressCb, RestCb, SummaryCb
from campaign.publish import PrintCb
from handlers import documents, group, mine, pledge, report, review, start
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
    r.command("pledge", pledge.on_pledge)
    r.button(start.LangCb, start.on_lang_button, public=True)
    r.button(group.BindGroupCb, group.on_bindgroup_button)
    r.button(pledge.TargetCb, pledge.on_target)
    r.button(pledge.DraftCb, pledge.on_draft)
    r.button(pledge.FieldCb, pledge.on_field)
    r.button(pledge.CategoryCb, pledge.on_category)
    r.button(pledge.VanguardCb, pledge.on_vanguard)
    r.dialog(pledge.DIALOG, pledge.on_input)
    r.command("review", review.on_review)
    r.button(ReviewCb, review.on_decision)
    r.button(CriterionCb, review.on_criterion)
    r.button(ReasonCb, review.on_reason)
    r.button(PeerCb, review.on_peer)
    r.dialog(review.REASON_DIALOG, review.on_reason_text)
    r.dialog(review.PEER_DIALOG, review.on_peer_text)
    r.command("mine", mine.on_mine)
    r.command("public", mine.on_public, group=True)
    r.command("report", report.on_report)
    r.command("summary", report.on_summary)
    r.command("ledger", report.on_ledger)
    r.button(ProgressCb, report.on_progress)
    r.button(RestCb, report.on_rest)
    r.button(SummaryCb, report.on_summary_button)
    r.button(report.PauseCb, report.on_pause)
    r.button(report.ResumeCb, report.on_resume)
    r.button(report.RectifyCb, report.on_rectify)
    r.button(RectCb, report.on_rect)
    r.dialog(report.BLOCKED_DIALOG, report.on_blocked_reason)
    r.dialog(report.NOTE_DIALOG, report.on_note)
    r.dialog(report.PAUSE_DIALOG, report.on_pause_until)
    r.dialog(report.SUMMARY_DIALOG, report.on_summary_remarks)
    r.dialog(report.RECT_OPEN_DIALOG, report.on_rect_input)
    r.dialog(report.RECT_CLAIM_DIALOG, report.on_rect_claim_note)
    r.command("export", documents.on_export)
    r.button(documents.ExportCb, documents.on_export_button)
    r.command("chart", documents.on_chart)
    r.command("spotcheck", documents.on_spotcheck)
    r.command("selfcheck", documents.on_selfcheck)
    r.button(PrintCb, documents.on_print, public=True)
    r.contact = start.on_contact
    return r


def build_core(
    store: Store,
    *,
    secret: bytes,
    config: CoreConfig | None = None,
    clock: Callable[[], datetime] = utcnow,
    documents: Documents | None = None,
) -> Core:
    """Return a core over ``store``, its buttons signed with ``secret``.

    ``documents`` makes the files of /export, /chart and /spotcheck; without it those
    commands answer that files are not available here.
    """
    router = build_router()
    # Cards queued by the jobs carry these types; they must decode even without a handler.
    types = dict.fromkeys([*router.callback_types(), *MONTHLY_TYPES])
    codec = CallbackCodec(secret, list(types))
    return Core(store, router, codec, config=config, clock=clock, documents=documents)
