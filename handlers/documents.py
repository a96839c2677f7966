"""/export, /chart, /spotcheck and /selfcheck: the attachments, charts and checks as files.

Files are generated from the records after the person's transaction commits, in a read session
(``Ctx.after_commit``: a city-wide file takes seconds and must not hold the write lock), then
kept in the database (``campaign.files``) in a short write transaction and sent by the outbox
as a document or a photo. Access follows /summary
(``campaign.access``): a secretary gets their branch, a reviewer or an office their subtree,
a member their own application form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from campaign import access, files, propose
from campaign.cards import owner_name
from campaign.documents import GRADES_FORM, Documents
from campaign.fulfil import local_now, month_from_code, month_of
from campaign.publish import PrintCb
from handlers.callbacks import CallbackData
from handlers.context import Ctx, Outgoing
from handlers.events import CommandReceived
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Org, OrgType, Role
from models.pledge import Pledge, PledgeStatus
from models.reply import Reply
from templates import catalog

#: forms offered for a branch, and for a level (application forms of members stay per branch);
#: the year's grades (民主评议党员) come after the notice's seven
BRANCH_FORMS = (1, 2, 3, 4, 5, 6, 7, GRADES_FORM)
LEVEL_FORMS = (1, 3, 4, 5, 6, 7, GRADES_FORM)
#: units offered at once on the chooser
MAX_UNITS = 6
MONTH_ARG = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class ExportCb(CallbackData):
    """Send attachment ``form`` of an organization (for ``month``, as 202705, or 0 for now)."""

    prefix = "ex"
    form: int
    org_id: int
    month: int = 0


def _documents(ctx: Ctx) -> Documents:
    if ctx.documents is None:
        raise DomainError("export.unavailable")
    return ctx.documents


def _form_name(ctx: Ctx, form: int) -> str:
    return catalog().render(f"doc.form.{form}", ctx.locale)


async def _campaign(ctx: Ctx, org: Org) -> Campaign:
    campaign = await propose.campaign_for(ctx.session, org)
    if campaign is None:
        raise DomainError("report.no_campaign")
    return campaign


def _month_arg(ctx: Ctx) -> int:
    args = ctx.event.args.strip() if isinstance(ctx.event, CommandReceived) else ""
    match = MONTH_ARG.match(args)
    return int(match.group(1) + match.group(2)) if match else 0


async def on_export(ctx: Ctx) -> list[Reply]:
    """Offer the forms the person may export; a member gets their own form 2 at once."""
    actor = ctx.actor
    month = _month_arg(ctx)
    org_ids = access.oversight_orgs(actor)
    if not org_ids:
        own = await ctx.session.get(Org, actor.org_id)
        return await _send(ctx, own, 2, month)
    rows = []
    orgs = [o for o in [await ctx.session.get(Org, i) for i in org_ids[:MAX_UNITS]] if o]
    for org in orgs:
        secretary = actor.is_secretary_of(org.id) and not any(
            g.org_id == org.id and g.role is not Role.SECRETARY for g in actor.grants
        )
        forms = BRANCH_FORMS if secretary or org.type is not OrgType.LEVEL else LEVEL_FORMS
        buttons = [
            ctx.button(
                "export.button_org" if len(orgs) > 1 else "export.button",
                ExportCb(form, org.id, month),
                name=catalog().render(f"doc.short.{form}", ctx.locale),
                org=org.name,
            )
            for form in forms
        ]
        rows += [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    if len(orgs) == 1:
        return [Reply("export.choose", {"org": orgs[0].name}, buttons=tuple(rows))]
    return [Reply("export.choose_level", buttons=tuple(rows))]


async def on_export_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Build the chosen form and send it as a document."""
    assert isinstance(cb, ExportCb)
    org = await ctx.session.get(Org, cb.org_id)
    if org is None or not access.may_export(ctx.actor, org, cb.form):
        raise DomainError("error.forbidden")
    return await _send(ctx, org, cb.form, cb.month)


async def _send(ctx: Ctx, org: Org, form: int, month_code: int) -> list[Reply]:
    """Check the request now; make the file after the commit, in a read session."""
    campaign = await _campaign(ctx, org)
    now, actor, locale = ctx.now, ctx.actor, ctx.locale
    today = local_now(campaign, now).date()
    month = month_from_code(month_code) if month_code else month_of(today)
    maker = _documents(ctx)
    if not access.may_export(actor, org, form):
        raise DomainError("error.forbidden")
    form_name = _form_name(ctx, form)
    own_only = form == 2 and not access.oversight_orgs(actor)

    async def make(session) -> list[Outgoing]:
        result = await maker.export(
            session,
            campaign,
            org,
            form,
            today=today,
            now=now,
            locale=locale,
            month=month,
            actor=actor,
        )
        if result is None:
            if own_only:
                return [Outgoing(Reply("export.no_pledge"))]
            return [Outgoing(Reply("export.empty", {"org": org.name, "form": form_name}))]
        caption = {"form": form_name, "org": result.org, "period": result.period}
        return [Outgoing(Reply("export.caption", caption), result.name, result.data)]

    ctx.after_commit(make)
    return []


# -- charts -----------------------------------------------------------------------------------


def _levels(ctx: Ctx) -> list[int]:
    return list(
        dict.fromkeys([*ctx.actor.orgs_with(Role.REVIEWER), *ctx.actor.orgs_with(Role.OFFICE)])
    )


async def on_chart(ctx: Ctx) -> list[Reply]:
    """Send a supervisor the current charts of their subtree."""
    levels = _levels(ctx)
    if not levels:
        return [ctx.reply("chart.not_allowed")]
    maker = _documents(ctx)
    locale, now = ctx.locale, ctx.now
    wanted = []
    for org_id in levels[:MAX_UNITS]:
        org = await ctx.session.get(Org, org_id)
        campaign = await propose.campaign_for(ctx.session, org) if org else None
        if campaign is not None:
            wanted.append((org, campaign, local_now(campaign, now).date()))
    if not wanted:
        return [ctx.reply("summary.none")]

    async def make(session) -> list[Outgoing]:
        out: list[Outgoing] = []
        for org, campaign, today in wanted:
            drawn = await maker.charts(session, campaign, org, today=today, locale=locale)
            for chart in drawn:
                name = files.file_name(
                    locale, "chart", name=chart.name, org=org.name, period=today.isoformat()
                )
                context = {"org": org.name, "name": chart.name, "period": today.isoformat()}
                out.append(Outgoing(Reply("chart.caption", context), name, chart.png))
        return out or [Outgoing(Reply("summary.none"))]

    ctx.after_commit(make)
    return []


# -- the spot check and the self-check ------------------------------------------------------------


async def on_spotcheck(ctx: Ctx) -> list[Reply]:
    """Check the procedure records of an office's subtree: a short message and the table."""
    offices = ctx.actor.orgs_with(Role.OFFICE)
    if not offices:
        return [ctx.reply("spotcheck.not_allowed")]
    maker = _documents(ctx)
    locale, now = ctx.locale, ctx.now
    wanted = []
    for org_id in offices[:MAX_UNITS]:
        org = await ctx.session.get(Org, org_id)
        if org is None:
            continue
        campaign = await _campaign(ctx, org)
        wanted.append((org, campaign, local_now(campaign, now).date()))

    async def make(session) -> list[Outgoing]:
        out: list[Outgoing] = []
        for org, campaign, today in wanted:
            made, context = await maker.spotcheck(
                session, campaign, org, today=today, now=now, locale=locale
            )
            out.append(Outgoing(Reply("spotcheck.summary", context)))
            caption = {"org": org.name, "period": today.isoformat()}
            out.append(Outgoing(Reply("spotcheck.caption", caption), made.name, made.data))
        return out

    ctx.after_commit(make)
    return []


async def on_selfcheck(ctx: Ctx) -> list[Reply]:
    """Show a secretary what their branch's records still lack, with what to do next."""
    branches = ctx.actor.orgs_with(Role.SECRETARY)
    if not branches:
        return [ctx.reply("selfcheck.not_allowed")]
    replies = []
    for org_id in branches[:MAX_UNITS]:
        org = await ctx.session.get(Org, org_id)
        if org is None:
            continue
        campaign = await _campaign(ctx, org)
        today = local_now(campaign, ctx.now).date()
        maker = _documents(ctx)
        context = await maker.selfcheck(ctx.session, campaign, org, today=today, locale=ctx.locale)
        replies.append(Reply("selfcheck.result", context))
    return replies


# -- the printable version of a letter or a display post -------------------------------------


async def on_print(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Send the printable version (.docx) of a published pledge where the button was pressed.

    Published pledges are public (they hang on the bulletin board), so anyone who sees the
    post may have its printable version; nothing else is in it.
    """
    assert isinstance(cb, PrintCb)
    pledge = await ctx.session.get(Pledge, cb.pledge_id)
    if pledge is None or pledge.status is not PledgeStatus.PUBLISHED:
        return [Reply("print.gone", toast=True)]
    if cb.what not in ("letter", "display"):
        raise DomainError("error.forbidden")
    org = await ctx.session.get(Org, pledge.org_id)
    campaign = await _campaign(ctx, org)
    today = local_now(campaign, ctx.now).date()
    made = await _documents(ctx).printable(
        ctx.session, campaign, pledge, cb.what, today=today, now=ctx.now, locale=ctx.locale
    )
    attachment = await files.keep(ctx.session, made.name, made.data)
    if cb.what == "letter":
        owner = await owner_name(ctx.session, pledge)
        return [Reply("print.letter_caption", {"owner": owner}, attachment=attachment)]
    return [Reply("print.display_caption", {"org": org.name}, attachment=attachment)]
