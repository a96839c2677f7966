"""The composition of the core: every command, button and dialog, wired by one factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from campaign.cards import (
    ConfirmCb,
    CriterionCb,
    FullTextCb,
    PeerCb,
    ReasonCb,
    RectCb,
    ReviewCb,
)
from campaign.db import Store
from campaign.documents import Documents
from campaign.monthly import MONTHLY_TYPES, ProgressCb, RestCb, SummaryCb
from campaign.publish import PrintCb
from handlers import (
    channel,
    documents,
    evaluate,
    group,
    look_back,
    mine,
    model_example,
    notice,
    oversee,
    pledge,
    report,
    review,
    sms,
    start,
)
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
    r.command("unbindgroup", group.on_unbindgroup, group=True)
    r.command("pledge", pledge.on_pledge)
    r.button(start.LangCb, start.on_lang_button, public=True)
    r.button(group.BindGroupCb, group.on_bindgroup_button)
    r.button(pledge.TargetCb, pledge.on_target)
    r.button(pledge.DraftCb, pledge.on_draft)
    r.button(pledge.FieldCb, pledge.on_field)
    r.button(pledge.CategoryCb, pledge.on_category)
    r.button(pledge.VanguardCb, pledge.on_vanguard)
    r.dialog(pledge.DIALOG, pledge.on_input, idle=(pledge.Step.OVERVIEW,), takes=pledge.takes)
    r.command("review", review.on_review)
    r.button(ReviewCb, review.on_decision)
    r.button(CriterionCb, review.on_criterion)
    r.button(ReasonCb, review.on_reason)
    r.button(ConfirmCb, review.on_confirm)
    r.button(FullTextCb, review.on_full_text)
    r.button(PeerCb, review.on_peer)
    r.dialog(review.REASON_DIALOG, review.on_reason_text)
    r.dialog(review.PEER_DIALOG, review.on_peer_text)
    r.command("mine", mine.on_mine)
    r.command("public", mine.on_public, group=True)
    r.command("report", report.on_report)
    r.command("summary", oversee.on_summary)
    r.command("ledger", oversee.on_ledger)
    r.button(oversee.LedgerCb, oversee.on_ledger_button)
    r.button(oversee.RectMemberCb, oversee.on_rect_member)
    r.button(oversee.RemindCb, oversee.on_remind)
    r.button(oversee.PhotosCb, oversee.on_photos)
    r.button(ProgressCb, report.on_progress)
    r.button(RestCb, report.on_rest)
    r.button(SummaryCb, oversee.on_summary_button)
    r.button(report.PauseCb, report.on_pause)
    r.button(report.ResumeCb, report.on_resume)
    r.button(report.RectifyCb, report.on_rectify)
    r.button(RectCb, report.on_rect)
    r.dialog(report.BLOCKED_DIALOG, report.on_blocked_reason)
    r.dialog(report.NOTE_DIALOG, report.on_note, photos=True)
    r.dialog(report.PAUSE_DIALOG, report.on_pause_until)
    r.dialog(report.SUMMARY_DIALOG, oversee.on_summary_remarks)
    r.dialog(report.RECT_OPEN_DIALOG, report.on_rect_input)
    r.dialog(report.RECT_CLAIM_DIALOG, report.on_rect_claim_note)
    r.command("evaluate", evaluate.on_evaluate)
    r.button(evaluate.GradeCb, evaluate.on_grade)
    r.button(evaluate.EvalPageCb, evaluate.on_page)
    r.button(evaluate.EvalNoteCb, evaluate.on_note)
    r.button(evaluate.FollowCb, evaluate.on_follow)
    r.dialog(evaluate.NOTE_DIALOG, evaluate.on_note_text)
    r.button(look_back.LookCb, look_back.on_answer)
    r.button(look_back.LookPeerCb, look_back.on_peer)
    r.button(look_back.LookDecideCb, look_back.on_decide)
    r.dialog(look_back.NOTE_DIALOG, look_back.on_note)
    r.dialog(look_back.MECHANISM_DIALOG, look_back.on_mechanism)
    r.dialog(look_back.CAUSE_DIALOG, look_back.on_cause)
    r.button(model_example.NameModelCb, model_example.on_name)
    r.button(model_example.ModelReportCb, model_example.on_report)
    r.dialog(model_example.DIALOG, model_example.on_input)
    r.command("models", model_example.on_models)
    r.poll = evaluate.on_poll
    r.command("export", documents.on_export)
    r.button(documents.ExportCb, documents.on_export_button)
    r.command("chart", documents.on_chart)
    r.command("spotcheck", documents.on_spotcheck)
    r.command("selfcheck", documents.on_selfcheck)
    r.button(PrintCb, documents.on_print, public=True)
    r.command("notice", notice.on_notice)
    r.command("notices", notice.on_notices)
    r.button(notice.NoticeAudienceCb, notice.on_audience)
    r.button(notice.NoticeConfirmCb, notice.on_confirm)
    r.dialog(
        notice.DIALOG,
        notice.on_input,
        idle=("audience", "preview"),
        takes=notice.takes,
        documents=True,
    )
    r.contact = start.on_contact
    r.command("channel", channel.on_channel)
    r.button(channel.ChannelCb, channel.on_channel_button)
    r.sms = sms.on_sms
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
