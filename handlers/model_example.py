"""S5 in chat: an office names a model example; the plan's monthly progress in one tap."""

from __future__ import annotations

from campaign import fulfil, model_examples
from campaign.fulfil import month_from_code
from campaign.model_examples import ModelReportCb, NameModelCb
from handlers.context import Ctx
from handlers.events import TextReceived
from models.callbacks import CallbackData
from models.campaign import Campaign
from models.errors import DomainError
from models.model_example import ModelExample
from models.pledge import OwnerKind
from models.reply import Reply

DIALOG = "model_name"
STEPS = ("leader", "goal", "measures", "milestones")


def _text(ctx: Ctx) -> str:
    return ctx.event.text.strip() if isinstance(ctx.event, TextReceived) else ""


async def on_models(ctx: Ctx) -> list[Reply]:
    """Show the model examples' ledger (先进典型台账): plans, milestones, months reported."""
    ledgers, total = await model_examples.ledgers_for(ctx.session, ctx.actor)
    if not ledgers:
        return [ctx.reply("model_ledger.none")]
    return [ctx.reply("model_ledger.text", ledgers=ledgers, more=total - len(ledgers))]


async def on_name(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Start naming a candidate: ask for the responsible leader first."""
    assert isinstance(cb, NameModelCb)
    name = await model_examples.check_may_name(
        ctx.session, ctx.actor, cb.campaign_id, cb.kind, cb.subject_id
    )
    ctx.state.enter(
        DIALOG,
        "leader",
        campaign_id=cb.campaign_id,
        kind=cb.kind.value,
        subject_id=cb.subject_id,
        name=name,
    )
    return [ctx.reply("model.ask_leader", name=name)]


async def on_input(ctx: Ctx) -> list[Reply]:
    """Take the leader's phone, the goal, the measures, then the milestones, and name it."""
    data = dict(ctx.state.data)
    step = ctx.state.step
    if step not in STEPS or not isinstance(data.get("campaign_id"), int):
        ctx.state.clear()
        return [ctx.reply("error.stale_card")]
    text = _text(ctx)
    if step == "leader":
        leader = await model_examples.leader_by_phone(ctx.session, text)
        ctx.state.enter(DIALOG, "goal", **{**data, "leader_id": leader.id})
        return [ctx.reply("model.ask_goal", leader=leader.name)]
    if not text:
        return [ctx.reply("model.goal_required")]
    if step == "goal":
        if len(text) > model_examples.GOAL_MAX:
            raise DomainError("error.too_long", limit=model_examples.GOAL_MAX)
        ctx.state.enter(DIALOG, "measures", **{**data, "goal": text})
        return [ctx.reply("model.ask_measures")]
    if step == "measures":
        if len(text) > model_examples.MEASURES_MAX:
            raise DomainError("error.too_long", limit=model_examples.MEASURES_MAX)
        ctx.state.enter(DIALOG, "milestones", **{**data, "measures": text})
        camp = await ctx.session.get(Campaign, int(data["campaign_id"]))
        return [ctx.reply("model.ask_milestones", year=camp.ends_on.year if camp else 0)]
    try:
        milestones = model_examples.parse_milestones(text)
    except DomainError as exc:
        camp = await ctx.session.get(Campaign, int(data["campaign_id"]))
        raise DomainError(exc.key, **exc.context, year=camp.ends_on.year if camp else 0) from exc
    model = await model_examples.name_model(
        ctx.session,
        ctx.actor,
        int(data["campaign_id"]),
        OwnerKind(data["kind"]),
        int(data["subject_id"]),
        leader_id=int(data["leader_id"]),
        goal=str(data.get("goal", "")),
        measures=str(data.get("measures", "")),
        milestones=milestones,
    )
    ctx.state.clear()
    context = await model_examples.model_context(ctx.session, model)
    return [Reply("model.named_done", context)]


async def on_report(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """This month's progress of a plan in one tap."""
    assert isinstance(cb, ModelReportCb)
    model = await ctx.session.get(ModelExample, cb.model_id)
    camp = await ctx.session.get(Campaign, model.campaign_id) if model else None
    if camp is None:
        raise DomainError("error.forbidden")
    today = fulfil.local_now(camp, ctx.now).date()
    await model_examples.report(
        ctx.session, ctx.actor, cb.model_id, month_from_code(cb.month), cb.status, today=today
    )
    return [Reply("model.reported_toast", {"status": cb.status.value}, toast=True)]
