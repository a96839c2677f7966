"""/pledge: the guided drafting dialog of S2 (依岗提承诺), one question at a time.

Everything lives in the database. The draft is in ``Pledge``/``PledgeItem`` rows, written through
``campaign.propose`` one field per message; the dialog state holds only pointers (pledge id and
version, item id, the pending field and where the answer leads). A restart, ``/cancel`` or a
second device loses nothing: ``/pledge`` resumes at the pending question, else at the draft's
next unanswered question (or the basic pledge's next blank), else at the overview (the
application form, 申报表). The category's guidance comes once per pledge; a changed field
sends back only its item. Every button carries the pledge id and version (and the item id
where one is meant), so a button from before a change of version or state is refused with
``error.stale_card`` and changes nothing.

The same diagram is kept beside this file in ``pledge.mmd``::

    stateDiagram-v2
        [*] --> target : /pledge, a secretary (own or the organization's?)
        [*] --> category : /pledge, a member's draft without items
        [*] --> field : /pledge, a draft with an unanswered question (resumed there)
        [*] --> overview : /pledge, a draft with every question answered
        [*] --> [*] : /pledge, submitted or published (tell and stop)
        target --> category : own pledge, no items yet
        target --> overview : the organization's pledge
        category --> post : category button
        post --> field : 保持不变 or a typed post (no items yet)
        post --> overview : 保持不变 or a typed post (items exist)
        field --> field : next unanswered question only (content, goal, measures, deadline, 带头)
        field --> overview : item done, basic pledge completed (the form)
        field --> overview : field changed (only the changed item, with the buttons)
        overview --> field : 添加一条, 修改 (item, field), 完善基本承诺
        overview --> overview : 删除, findings that block, text typed by mistake
        overview --> overview : 提交审核 with warnings only (buttons 仍然提交 / 返回修改)
        overview --> [*] : 提交审核 without findings, or 仍然提交 (submitted; state cleared)
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlmodel import col, func, select

from campaign import access, cards, propose, quality, review
from campaign.quality import Severity
from handlers.callbacks import CallbackData
from handlers.context import Ctx, State
from handlers.events import TextReceived
from handlers.input import TAKES_BUTTONS, TAKES_TEXT
from models.campaign import Campaign
from models.errors import DomainError
from models.org import Category, Member, Org, OrgType, Role, RoleGrant
from models.pledge import OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.reply import Button, Reply
from templates import catalog

DIALOG = "pledge"
#: the longest text accepted for one 【…】 placeholder of the basic pledge
PLACEHOLDER_MAX = 200
#: characters of an item's content shown on a picker button
LABEL_CHARS = 18


class Step(StrEnum):
    """Where the dialog waits: a choice by button, a typed answer, or the overview."""

    TARGET = "target"
    CATEGORY = "category"
    POST = "post"
    FIELD = "field"
    OVERVIEW = "overview"


class Mode(StrEnum):
    """Where an answered field leads: a new item's next question, the overview, or a blank."""

    NEW = "new"
    EDIT = "edit"
    FILL = "fill"


class ItemField(StrEnum):
    """The fields of an item, asked in this order for a new one."""

    CONTENT = "content"
    GOAL = "goal"
    MEASURES = "measures"
    DEADLINE = "deadline"
    VANGUARD = "vanguard"


class Vanguard(StrEnum):
    """The five 带头 of the notice; the values are ``propose.VANGUARDS``."""

    STUDY = "study"
    ACHIEVE = "achieve"
    SERVE = "serve"
    LAW = "law"
    ETHOS = "ethos"


class Act(StrEnum):
    """What a draft button does."""

    ADD = "add"
    EDIT = "edit"
    PICK = "pick"
    PROFILE = "prof"
    REMOVE = "rm"
    PICK_REMOVE = "rmi"
    CONFIRM_REMOVE = "rmy"
    FILL = "fill"
    KEEP_POST = "keep"
    SUBMIT = "sub"
    FORCE = "force"
    BACK = "back"
    STANDING = "long"


@dataclass(frozen=True)
class TargetCb(CallbackData):
    """Draft my own pledge, or the organization's as its secretary."""

    prefix = "pt"
    owner: OwnerKind
    org_id: int


@dataclass(frozen=True)
class DraftCb(CallbackData):
    """An action on one version of a draft, on one of its items where ``item_id`` is set."""

    prefix = "pd"
    action: Act
    pledge_id: int
    version: int
    item_id: int | None = None


@dataclass(frozen=True)
class FieldCb(CallbackData):
    """Change one field of one item."""

    prefix = "pf"
    pledge_id: int
    version: int
    item_id: int
    field: ItemField


@dataclass(frozen=True)
class CategoryCb(CallbackData):
    """Set the member's category on their draft."""

    prefix = "pc"
    pledge_id: int
    version: int
    category: Category


@dataclass(frozen=True)
class VanguardCb(CallbackData):
    """Set which 带头 an item serves."""

    prefix = "pv"
    pledge_id: int
    version: int
    item_id: int
    vanguard: Vanguard


CALLBACK_TYPES: tuple[type[CallbackData], ...] = (
    TargetCb,
    DraftCb,
    FieldCb,
    CategoryCb,
    VanguardCb,
)


@dataclass(frozen=True)
class _Task:
    item: PledgeItem
    field: ItemField
    placeholder: str | None = None


# --------------------------------------------------------------------------- entry points


async def on_pledge(ctx: Ctx) -> list[Reply]:
    """Resume the pending question, or ask whose pledge to draft, or open the one draft."""
    if ctx.state.dialog == DIALOG and ctx.state.step in (Step.CATEGORY, Step.POST, Step.FIELD):
        pledge = await _state_pledge(ctx)
        if pledge is not None:
            return [ctx.reply("pledge.resumed"), *await _resume(ctx, pledge)]
    targets = await propose.targets(ctx.session, ctx.actor)
    if len(targets) > 1:
        ctx.state.enter(DIALOG, Step.TARGET)
        return [_target_prompt(ctx, targets, hint=False)]
    return await _open(ctx, targets[0])


async def on_target(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Open the pledge picked on the chooser: the presser's own or their organization's."""
    assert isinstance(cb, TargetCb)
    for target in await propose.targets(ctx.session, ctx.actor):
        if target.owner is cb.owner and target.org_id == cb.org_id:
            return await _open(ctx, target)
    raise DomainError("error.forbidden")


async def on_draft(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Run one action of the overview, the pickers or the submission on a current draft."""
    assert isinstance(cb, DraftCb)
    pledge = await _draft(ctx, cb.pledge_id, cb.version)
    return await _ACTIONS[cb.action](ctx, pledge, cb)


async def on_field(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Ask for a new value of the field picked on the field chooser."""
    assert isinstance(cb, FieldCb)
    pledge = await _draft(ctx, cb.pledge_id, cb.version)
    items = await propose.items_of(ctx.session, pledge.id)
    item = _find(items, cb.item_id)
    if item.basic and cb.field is ItemField.CONTENT:
        raise DomainError("pledge.basic_fixed")
    return await _ask(ctx, pledge, cb.field, Mode.EDIT, item=item, items=items)


async def on_category(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Set the member's category, then confirm the post."""
    assert isinstance(cb, CategoryCb)
    pledge = await _draft(ctx, cb.pledge_id, cb.version)
    await propose.set_profile(ctx.session, ctx.actor, pledge.id, category=cb.category.value)
    return [_ask_post(ctx, pledge)]


async def on_vanguard(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Record which 带头 an item serves and go on where the dialog was heading."""
    assert isinstance(cb, VanguardCb)
    pledge = await _draft(ctx, cb.pledge_id, cb.version)
    items = await propose.items_of(ctx.session, pledge.id)
    item = _find(items, cb.item_id)
    await propose.set_item_field(
        ctx.session,
        ctx.actor,
        pledge.id,
        item.id,
        ItemField.VANGUARD.value,
        cb.vanguard.value,
        year=await _year(ctx, pledge),
    )
    return await _next(
        ctx, pledge, item, ItemField.VANGUARD, _mode_at(ctx, item.id, ItemField.VANGUARD)
    )


def takes(state: State) -> str:
    """Tell what the dialog takes at the step ``state`` is at: typed text, or a button."""
    if state.step == Step.POST:
        return TAKES_TEXT
    if state.step == Step.FIELD and state.data.get("field") != ItemField.VANGUARD.value:
        return TAKES_TEXT
    return TAKES_BUTTONS


async def on_input(ctx: Ctx) -> list[Reply]:
    """Take typed text as the answer to the pending question, or point at the buttons."""
    state = ctx.state
    if state.step == Step.TARGET:
        targets = await propose.targets(ctx.session, ctx.actor)
        return [_target_prompt(ctx, targets, hint=True)]
    pledge = await _state_pledge(ctx)
    if pledge is None:
        state.clear()
        return [ctx.reply("pledge.dialog_over")]
    text = ctx.event.text if isinstance(ctx.event, TextReceived) else None
    if state.step == Step.CATEGORY:
        return [_ask_category(ctx, pledge, hint=True)]
    if state.step == Step.FIELD and state.data.get("field") == ItemField.VANGUARD.value:
        return await _resume(ctx, pledge, hint=True)
    if state.step in (Step.POST, Step.FIELD) and text is None:
        return [ctx.reply("pledge.text_only")]
    if state.step == Step.POST:
        await propose.set_profile(ctx.session, ctx.actor, pledge.id, post=text)
        return await _after_post(ctx, pledge)
    if state.step == Step.FIELD:
        return await _answer(ctx, pledge, ItemField(state.data["field"]), text or "")
    items = await propose.items_of(ctx.session, pledge.id)
    ctx.state.enter(DIALOG, Step.OVERVIEW, pledge_id=pledge.id, version=pledge.version)
    return [Reply("pledge.hint_overview", buttons=_overview_buttons(ctx, pledge, items))]


# --------------------------------------------------------------------------- opening


def _target_prompt(ctx: Ctx, targets: list[propose.Target], *, hint: bool) -> Reply:
    rows = []
    for target in targets:
        cb = TargetCb(target.owner, target.org_id)
        if target.owner is OwnerKind.MEMBER:
            rows.append((ctx.button("pledge.btn.own", cb),))
        else:
            rows.append((ctx.button("pledge.btn.org", cb, name=target.org_name),))
    return Reply("pledge.choose_target", {"hint": hint}, buttons=tuple(rows))


async def _zone(ctx: Ctx, pledge: Pledge) -> str:
    """Return the campaign's time zone, in which a pledge's times are shown."""
    return (await ctx.session.get(Campaign, pledge.campaign_id)).timezone


async def _open(ctx: Ctx, target: propose.Target) -> list[Reply]:
    pledge = await propose.open_draft(
        ctx.session,
        ctx.actor,
        target,
        today=ctx.today(),
        render=lambda key: catalog().render(key, ctx.locale),
    )
    if pledge.status is PledgeStatus.SUBMITTED:
        ctx.state.clear()
        org = await ctx.session.get(Org, pledge.review_org_id) if pledge.review_org_id else None
        return [
            ctx.reply(
                "pledge.under_review",
                version=pledge.version,
                role=pledge.review_role or "",
                org=org.name if org else "",
                submitted=pledge.submitted_at.isoformat() if pledge.submitted_at else "",
                tz=await _zone(ctx, pledge),
            )
        ]
    if pledge.status in (PledgeStatus.APPROVED, PledgeStatus.PUBLISHED):
        ctx.state.clear()
        return [
            ctx.reply(
                "pledge.published",
                status=pledge.status.value,
                published=pledge.published_at.isoformat() if pledge.published_at else "",
                tz=await _zone(ctx, pledge),
                form=await _form(ctx, pledge, snapshot=True),
            )
        ]
    items = await propose.items_of(ctx.session, pledge.id)
    if pledge.owner_kind is OwnerKind.MEMBER and not items:
        return [_ask_category(ctx, pledge, intro=True)]
    if not items:
        return await _ask(ctx, pledge, ItemField.CONTENT, Mode.NEW, items=items)
    if pledge.version == 1 and (gap := _next_gap(items)) is not None:
        # A draft left half-way (/cancel, a day away): go on at the next unanswered question.
        item, field = gap
        return [
            ctx.reply("pledge.resumed"),
            *await _ask(ctx, pledge, field, Mode.NEW, item=item, items=items),
        ]
    task = _fill_task(items)
    if pledge.version == 1 and task is not None and _fill_started(items):
        # The basic pledge's blanks were being filled: go on at the next one.
        return [
            ctx.reply("pledge.resumed"),
            *await _ask(
                ctx,
                pledge,
                task.field,
                Mode.FILL,
                item=task.item,
                placeholder=task.placeholder,
                items=items,
            ),
        ]
    note = "pledge.note.revising" if pledge.version > 1 else None
    return await _overview(ctx, pledge, note=note, items=items)


async def _resume(ctx: Ctx, pledge: Pledge, *, hint: bool = False) -> list[Reply]:
    """Ask the pending question again."""
    data = ctx.state.data
    if ctx.state.step == Step.CATEGORY:
        return [_ask_category(ctx, pledge, hint=hint)]
    if ctx.state.step == Step.POST:
        return [_ask_post(ctx, pledge)]
    items = await propose.items_of(ctx.session, pledge.id)
    field = ItemField(data["field"])
    item = None
    if data.get("item_id") is not None:
        item = next((i for i in items if i.id == data["item_id"]), None)
        if item is None:
            return await _overview(ctx, pledge, items=items)
    return await _ask(
        ctx,
        pledge,
        field,
        Mode(data.get("mode", Mode.EDIT)),
        item=item,
        placeholder=data.get("placeholder"),
        items=items,
        hint=hint,
    )


# --------------------------------------------------------------------------- questions


def _ask_category(ctx: Ctx, pledge: Pledge, *, hint: bool = False, intro: bool = False) -> Reply:
    ctx.state.enter(DIALOG, Step.CATEGORY, pledge_id=pledge.id, version=pledge.version)
    buttons = [
        ctx.button(
            "pledge.btn.category",
            CategoryCb(pledge.id, pledge.version, c),
            category=c.value,
            on=c.value == pledge.category,
        )
        for c in Category
    ]
    return Reply(
        "pledge.ask.category",
        {"current": pledge.category, "hint": hint, "intro": intro},
        buttons=(tuple(buttons[:3]), tuple(buttons[3:])),
    )


def _ask_post(ctx: Ctx, pledge: Pledge) -> Reply:
    ctx.state.enter(DIALOG, Step.POST, pledge_id=pledge.id, version=pledge.version)
    buttons: tuple[tuple[Button, ...], ...] = ()
    if pledge.post:
        keep = DraftCb(Act.KEEP_POST, pledge.id, pledge.version)
        buttons = ((ctx.button("pledge.btn.keep_post", keep),),)
    return Reply("pledge.ask.post", {"current": pledge.post}, buttons=buttons)


async def _after_post(ctx: Ctx, pledge: Pledge) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    if not items:
        return await _ask(ctx, pledge, ItemField.CONTENT, Mode.NEW, items=items)
    return await _overview(ctx, pledge, note="pledge.note.profile_saved", items=items)


async def _ask(
    ctx: Ctx,
    pledge: Pledge,
    field: ItemField,
    mode: Mode,
    *,
    item: PledgeItem | None = None,
    placeholder: str | None = None,
    items: list[PledgeItem],
    hint: bool = False,
) -> list[Reply]:
    """Put one question about one item (or the next new one) and wait for its answer."""
    ctx.state.enter(
        DIALOG,
        Step.FIELD,
        pledge_id=pledge.id,
        version=pledge.version,
        item_id=item.id if item else None,
        field=field.value,
        mode=mode.value,
        placeholder=placeholder,
    )
    number = next((k + 1 for k, i in enumerate(items) if item and i.id == item.id), len(items) + 1)
    current: Any = getattr(item, field.value) if item is not None else None
    context: dict[str, Any] = {
        "n": number,
        "mode": mode.value,
        "hint": hint,
        "basic": bool(item and item.basic),
        "current": current.isoformat() if isinstance(current, date) else (current or ""),
        "guide": None,
    }
    rows: list[tuple[Button, ...]] = []
    template = f"pledge.ask.{field.value}"
    if field is ItemField.CONTENT and mode is Mode.NEW and not any(not i.basic for i in items):
        # The category's guidance once per pledge: before its first own item, not every one.
        context["guide"] = await _guide_key(ctx, pledge)
        # S1 hook (调研征承诺): once campaign.survey collects the public's opinions, list the
        # open ones of this organization here and let the drafter cite them on the item
        # (PledgeItem.opinion_ids); nothing to show until the survey step exists.
    if field is ItemField.DEADLINE:
        camp = await ctx.session.get(Campaign, pledge.campaign_id)
        earliest, latest = _window(ctx, camp)
        context.update(earliest=earliest.isoformat(), latest=latest.isoformat(), year=camp.year)
        example = _example_deadline(earliest, latest)
        context.update(example=example.isoformat(), example_m=example.month, example_d=example.day)
        context["standing_ok"] = bool(item and propose.is_standing_duty(item))
        if context["standing_ok"]:
            assert item is not None
            standing = DraftCb(Act.STANDING, pledge.id, pledge.version, item.id)
            rows.append((ctx.button("pledge.btn.standing", standing),))
    if field is ItemField.VANGUARD:
        assert item is not None
        rows += [
            (
                ctx.button(
                    "pledge.btn.vanguard",
                    VanguardCb(pledge.id, pledge.version, item.id, v),
                    vanguard=v.value,
                    on=v.value == item.vanguard,
                ),
            )
            for v in Vanguard
        ]
    if placeholder is not None:
        assert item is not None
        template = "pledge.ask.placeholder"
        context.update(name=placeholder, field=field.value, text=getattr(item, field.value))
    rows.append((ctx.button("pledge.btn.back", DraftCb(Act.BACK, pledge.id, pledge.version)),))
    return [Reply(template, context, buttons=tuple(rows))]


async def _guide_key(ctx: Ctx, pledge: Pledge) -> str:
    if pledge.owner_kind is OwnerKind.MEMBER:
        return f"pledge.guide.member.{pledge.category or 'none'}"
    org = await ctx.session.get(Org, pledge.org_id)
    return f"pledge.guide.org.{(org.type if org else OrgType.OTHER).value}"


# --------------------------------------------------------------------------- answers


async def _answer(ctx: Ctx, pledge: Pledge, field: ItemField, text: str) -> list[Reply]:
    """Write one typed answer into its field (nothing else), then ask the next question."""
    data = ctx.state.data
    year = await _year(ctx, pledge)
    value = text.strip()
    if not value:
        raise DomainError("pledge.empty")
    if field is ItemField.DEADLINE and not propose.means_standing(value):
        camp = await ctx.session.get(Campaign, pledge.campaign_id)
        parsed = propose.parse_deadline(value, year)
        if parsed is None:
            raise DomainError("pledge.bad_deadline", value=value[:40])
        earliest, latest = _window(ctx, camp)
        if not earliest <= parsed <= latest:
            raise DomainError(
                "pledge.deadline_outside",
                deadline=parsed.isoformat(),
                earliest=earliest.isoformat(),
                latest=latest.isoformat(),
            )
    items = await propose.items_of(ctx.session, pledge.id)
    if data.get("item_id") is None:
        if field is not ItemField.CONTENT:
            raise DomainError("error.stale_card")
        # The item is created with its content: a refused content leaves no empty item.
        item = await propose.add_item(ctx.session, ctx.actor, pledge.id)
    else:
        found = next((i for i in items if i.id == data["item_id"]), None)
        if found is None:
            return await _overview(ctx, pledge, note="pledge.note.item_gone", items=items)
        item = found
    placeholder = data.get("placeholder")
    if placeholder:
        if len(value) > PLACEHOLDER_MAX:
            raise DomainError("error.too_long", limit=PLACEHOLDER_MAX)
        value = propose.fill_placeholder(getattr(item, field.value), placeholder, value)
    await propose.set_item_field(
        ctx.session, ctx.actor, pledge.id, item.id, field.value, value, year=year
    )
    return await _next(ctx, pledge, item, field, Mode(data.get("mode", Mode.EDIT)))


async def _next(
    ctx: Ctx, pledge: Pledge, item: PledgeItem, field: ItemField, mode: Mode
) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    number = next((k + 1 for k, i in enumerate(items) if i.id == item.id), 0)
    fresh = next((i for i in items if i.id == item.id), item)
    if mode is Mode.NEW:
        order = list(ItemField)
        for later in order[order.index(field) + 1 :]:
            if _missing(fresh, later):
                return await _ask(ctx, pledge, later, Mode.NEW, item=fresh, items=items)
        return await _overview(ctx, pledge, note="pledge.note.item_saved", n=number, items=items)
    if mode is Mode.FILL:
        task = _fill_task(items)
        if task is not None:
            return await _ask(
                ctx,
                pledge,
                task.field,
                Mode.FILL,
                item=task.item,
                placeholder=task.placeholder,
                items=items,
            )
        return await _overview(ctx, pledge, note="pledge.note.basic_done", items=items)
    return [_item_card(ctx, pledge, fresh, number, items, note="pledge.note.saved")]


def _item_card(
    ctx: Ctx, pledge: Pledge, item: PledgeItem, number: int, items: list[PledgeItem], *, note: str
) -> Reply:
    """Return only the item just changed, with the overview's buttons (not the whole form)."""
    ctx.state.enter(DIALOG, Step.OVERVIEW, pledge_id=pledge.id, version=pledge.version)
    row = {**propose.item_snapshot(item), "todo": _todo(item), "n": number}
    return Reply(
        "pledge.item_card",
        {"note": note, "item": row, "todo": any(_todo(i) for i in items)},
        buttons=_overview_buttons(ctx, pledge, items),
    )


# --------------------------------------------------------------------------- overview


async def _overview(
    ctx: Ctx,
    pledge: Pledge,
    *,
    note: str | None = None,
    n: int = 0,
    items: list[PledgeItem] | None = None,
) -> list[Reply]:
    """Show the whole draft as its application form, with the overview buttons."""
    if items is None:
        items = await propose.items_of(ctx.session, pledge.id)
    ctx.state.enter(DIALOG, Step.OVERVIEW, pledge_id=pledge.id, version=pledge.version)
    form = await _form(ctx, pledge, snapshot=False, items=items)
    context = {
        "form": form,
        "note": note,
        "note_n": n,
        "version": pledge.version,
        "basic_todo": _fill_task(items) is not None,
        "todo": any(item["todo"] for item in form["items"]),
        "max_items": propose.MAX_ITEMS,
    }
    return [Reply("pledge.overview", context, buttons=_overview_buttons(ctx, pledge, items))]


def _overview_buttons(
    ctx: Ctx, pledge: Pledge, items: list[PledgeItem]
) -> tuple[tuple[Button, ...], ...]:
    def cb(action: Act) -> DraftCb:
        return DraftCb(action, pledge.id, pledge.version)

    first: list[Button] = []
    if len(items) < propose.MAX_ITEMS:
        first.append(ctx.button("pledge.btn.add", cb(Act.ADD)))
    if items or pledge.owner_kind is OwnerKind.MEMBER:
        first.append(ctx.button("pledge.btn.edit", cb(Act.EDIT)))
    if any(not i.basic for i in items):
        first.append(ctx.button("pledge.btn.remove", cb(Act.REMOVE)))
    rows = [tuple(first)] if first else []
    if _fill_task(items) is not None:
        rows.append((ctx.button("pledge.btn.fill", cb(Act.FILL)),))
    rows.append((ctx.button("pledge.btn.submit", cb(Act.SUBMIT)),))
    return tuple(rows)


async def application_form(ctx: Ctx, pledge: Pledge, *, snapshot: bool) -> dict[str, Any]:
    """Return the application form (申报表) of a pledge, for other dialogs to show."""
    return await _form(ctx, pledge, snapshot=snapshot)


async def _form(
    ctx: Ctx, pledge: Pledge, *, snapshot: bool, items: list[PledgeItem] | None = None
) -> dict[str, Any]:
    """Return the application form (申报表) of a pledge: attachment 1 or 2 of the notice."""
    form = await cards.pledge_context(ctx.session, pledge, snapshot=snapshot)
    camp = await ctx.session.get(Campaign, pledge.campaign_id)
    form.update(campaign=camp.name if camp else "", year=camp.year if camp else 0)
    if snapshot:
        rows = [{**it, "todo": []} for it in form["items"]]
    else:
        rows = [
            {**propose.item_snapshot(i), "todo": _todo(i)}
            for i in (
                items if items is not None else await propose.items_of(ctx.session, pledge.id)
            )
        ]
    form["items"] = [{**row, "n": k + 1} for k, row in enumerate(rows)]
    form["secretary"] = ""
    form["members"] = 0
    if pledge.owner_kind is OwnerKind.ORG:
        names = (
            await ctx.session.exec(
                select(Member.name)
                .join(RoleGrant, col(RoleGrant.member_id) == Member.id)
                .where(
                    RoleGrant.role == Role.SECRETARY,
                    RoleGrant.org_id == pledge.org_id,
                    Member.active == True,  # noqa: E712
                )
                .order_by(col(Member.id))
            )
        ).all()
        form["secretary"] = "、".join(names) if ctx.locale == "zh_CN" else ", ".join(names)
        form["members"] = (
            await ctx.session.exec(
                select(func.count(func.distinct(RoleGrant.member_id)))
                .join(Member, col(Member.id) == RoleGrant.member_id)
                .where(
                    RoleGrant.role == Role.MEMBER,
                    RoleGrant.org_id == pledge.org_id,
                    Member.active == True,  # noqa: E712
                )
            )
        ).one()
    return form


def _todo(item: PledgeItem) -> list[str]:
    """Return the fields an item still lacks (or whose 【…】 blanks are unfilled)."""
    out = []
    if not item.content.strip():
        out.append(ItemField.CONTENT.value)
    for name in (ItemField.GOAL.value, ItemField.MEASURES.value):
        text = getattr(item, name)
        if not text.strip() or quality.placeholders(text):
            out.append(name)
    if item.deadline is None and not item.standing:
        out.append(ItemField.DEADLINE.value)
    return out


def _missing(item: PledgeItem, field: ItemField) -> bool:
    """Tell whether a field of an item is still unanswered."""
    if field is ItemField.DEADLINE:
        return item.deadline is None and not item.standing
    return not (getattr(item, field.value) or "").strip()


def _fill_started(items: list[PledgeItem]) -> bool:
    """Tell whether some blank of the basic pledge has been filled (every one starts with one)."""
    return any(
        i.basic and (i.deadline or i.standing or not quality.placeholders(f"{i.goal}{i.measures}"))
        for i in items
    )


def _next_gap(items: list[PledgeItem]) -> tuple[PledgeItem, ItemField] | None:
    """Return the first unanswered question of the drafter's own items, if any."""
    for item in items:
        if item.basic:
            continue
        for field in ItemField:
            if _missing(item, field):
                return item, field
    return None


def _fill_task(items: list[PledgeItem]) -> _Task | None:
    """Return the next blank of the basic pledge: a 【…】 placeholder, or a missing deadline."""
    for item in items:
        if not item.basic:
            continue
        for name in (ItemField.GOAL, ItemField.MEASURES):
            blanks = quality.placeholders(getattr(item, name.value))
            if blanks:
                return _Task(item, name, blanks[0])
        if item.deadline is None and not item.standing:
            return _Task(item, ItemField.DEADLINE)
    return None


# --------------------------------------------------------------------------- actions


async def _act_add(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    if len(items) >= propose.MAX_ITEMS:
        raise DomainError("pledge.too_many_items", limit=propose.MAX_ITEMS)
    return await _ask(ctx, pledge, ItemField.CONTENT, Mode.NEW, items=items)


async def _act_edit(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    rows = [
        (
            ctx.button(
                "pledge.btn.item",
                DraftCb(Act.PICK, pledge.id, pledge.version, item.id),
                n=k + 1,
                text=_short(item.content),
                basic=item.basic,
            ),
        )
        for k, item in enumerate(items)
    ]
    if pledge.owner_kind is OwnerKind.MEMBER:
        rows.append(
            (ctx.button("pledge.btn.profile", DraftCb(Act.PROFILE, pledge.id, pledge.version)),)
        )
    rows.append(_back_row(ctx, pledge))
    return [Reply("pledge.pick_edit", buttons=tuple(rows))]


async def _act_pick(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    item = _find(items, cb.item_id)
    number = items.index(item) + 1
    fields = [f for f in ItemField if not (item.basic and f is ItemField.CONTENT)]
    buttons = [
        ctx.button(
            "pledge.btn.field", FieldCb(pledge.id, pledge.version, item.id, f), field=f.value
        )
        for f in fields
    ]
    rows = (tuple(buttons[:3]), tuple(buttons[3:]), _back_row(ctx, pledge))
    return [
        Reply(
            "pledge.pick_field",
            {"n": number, "content": item.content, "basic": item.basic},
            buttons=tuple(r for r in rows if r),
        )
    ]


async def _act_profile(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    if pledge.owner_kind is not OwnerKind.MEMBER:
        raise DomainError("error.bad_button")
    return [_ask_category(ctx, pledge)]


async def _act_remove(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    rows = [
        (
            ctx.button(
                "pledge.btn.item",
                DraftCb(Act.PICK_REMOVE, pledge.id, pledge.version, item.id),
                n=k + 1,
                text=_short(item.content),
                basic=False,
            ),
        )
        for k, item in enumerate(items)
        if not item.basic
    ]
    has_basic = any(i.basic for i in items)
    if not rows:
        return [
            Reply(
                "pledge.nothing_to_remove",
                {"has_basic": has_basic},
                buttons=_overview_buttons(ctx, pledge, items),
            )
        ]
    rows.append(_back_row(ctx, pledge))
    return [Reply("pledge.pick_remove", {"has_basic": has_basic}, buttons=tuple(rows))]


async def _act_pick_remove(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    item = _find(items, cb.item_id)
    if item.basic:
        raise DomainError("pledge.basic_fixed")
    yes = DraftCb(Act.CONFIRM_REMOVE, pledge.id, pledge.version, item.id)
    return [
        Reply(
            "pledge.confirm_remove",
            {"n": items.index(item) + 1, "content": item.content},
            buttons=(
                (
                    ctx.button("pledge.btn.confirm_remove", yes),
                    ctx.button("pledge.btn.back", DraftCb(Act.BACK, pledge.id, pledge.version)),
                ),
            ),
        )
    ]


async def _act_confirm_remove(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    item = _find(items, cb.item_id)
    number = items.index(item) + 1
    await propose.remove_item(ctx.session, ctx.actor, pledge.id, item.id)
    await ctx.session.flush()
    return await _overview(ctx, pledge, note="pledge.note.removed", n=number)


async def _act_fill(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    task = _fill_task(items)
    if task is None:
        return await _overview(ctx, pledge, note="pledge.note.basic_done", items=items)
    return await _ask(
        ctx,
        pledge,
        task.field,
        Mode.FILL,
        item=task.item,
        placeholder=task.placeholder,
        items=items,
    )


async def _act_keep_post(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    if not pledge.post:
        raise DomainError("pledge.empty")
    return await _after_post(ctx, pledge)


async def _act_back(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    return await _overview(ctx, pledge)


def _mode_at(ctx: Ctx, item_id: int, field: ItemField) -> Mode:
    """Return the dialog's mode if it is asking for this field of this item, else edit."""
    data = ctx.state.data
    pending = (
        ctx.state.dialog == DIALOG
        and ctx.state.step == Step.FIELD
        and data.get("item_id") == item_id
        and data.get("field") == field.value
    )
    return Mode(data.get("mode", Mode.EDIT)) if pending else Mode.EDIT


async def _act_standing(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    items = await propose.items_of(ctx.session, pledge.id)
    item = _find(items, cb.item_id)
    await propose.set_standing(ctx.session, ctx.actor, pledge.id, item.id)
    return await _next(
        ctx, pledge, item, ItemField.DEADLINE, _mode_at(ctx, item.id, ItemField.DEADLINE)
    )


async def _act_submit(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    return await _submit(ctx, pledge, force=False)


async def _act_force(ctx: Ctx, pledge: Pledge, cb: DraftCb) -> list[Reply]:
    return await _submit(ctx, pledge, force=True)


async def _submit(ctx: Ctx, pledge: Pledge, *, force: bool) -> list[Reply]:
    """Check the draft; refuse on blocking findings, ask once on warnings, else submit."""
    camp = await ctx.session.get(Campaign, pledge.campaign_id)
    today = ctx.today(camp.timezone)
    findings = await propose.check(ctx.session, pledge, today)
    blocks = [f for f in findings if f.severity is Severity.BLOCK]
    warns = [f for f in findings if f.severity is Severity.WARN]
    if blocks:
        items = await propose.items_of(ctx.session, pledge.id)
        ctx.state.enter(DIALOG, Step.OVERVIEW, pledge_id=pledge.id, version=pledge.version)
        return [
            Reply(
                "pledge.check_blocked",
                {
                    "blocks": cards.findings_context(blocks, reviewer=False),
                    "warns": cards.findings_context(warns, reviewer=False),
                },
                buttons=_overview_buttons(ctx, pledge, items),
            )
        ]
    if warns and not force:
        ctx.state.enter(DIALOG, Step.OVERVIEW, pledge_id=pledge.id, version=pledge.version)
        return [
            Reply(
                "pledge.check_warned",
                {"warns": cards.findings_context(warns, reviewer=False)},
                buttons=(
                    (
                        ctx.button(
                            "pledge.btn.force", DraftCb(Act.FORCE, pledge.id, pledge.version)
                        ),
                        ctx.button(
                            "pledge.btn.back_edit", DraftCb(Act.BACK, pledge.id, pledge.version)
                        ),
                    ),
                ),
            )
        ]
    done = await review.submit(ctx.session, ctx.actor, pledge.id, today=today, codec=ctx.codec)
    level = await ctx.session.get(Org, done.routing.org_id)
    ctx.state.clear()
    return [
        ctx.reply(
            "pledge.submitted",
            version=pledge.version,
            role=done.routing.role.value,
            org=level.name if level else "",
            escalated=done.routing.escalated,
            peers=len(done.peers),
            warnings=len(done.findings),
        )
    ]


_ACTIONS = {
    Act.ADD: _act_add,
    Act.EDIT: _act_edit,
    Act.PICK: _act_pick,
    Act.PROFILE: _act_profile,
    Act.REMOVE: _act_remove,
    Act.PICK_REMOVE: _act_pick_remove,
    Act.CONFIRM_REMOVE: _act_confirm_remove,
    Act.FILL: _act_fill,
    Act.KEEP_POST: _act_keep_post,
    Act.SUBMIT: _act_submit,
    Act.FORCE: _act_force,
    Act.BACK: _act_back,
    Act.STANDING: _act_standing,
}


# --------------------------------------------------------------------------- helpers


async def _draft(ctx: Ctx, pledge_id: int, version: int) -> Pledge:
    """Return the draft a button acts on, refusing a button older than its version or state."""
    pledge = await ctx.session.get(Pledge, pledge_id)
    if pledge is None or not access.may_draft(ctx.actor, pledge):
        raise DomainError("error.forbidden")
    if pledge.version != version or pledge.status is not PledgeStatus.DRAFT:
        raise DomainError("error.stale_card")
    return pledge


async def _state_pledge(ctx: Ctx) -> Pledge | None:
    """Return the draft the dialog state points at, if it is still that version's draft."""
    pledge_id = ctx.state.data.get("pledge_id")
    if pledge_id is None:
        return None
    pledge = await ctx.session.get(Pledge, pledge_id)
    if (
        pledge is None
        or not access.may_draft(ctx.actor, pledge)
        or pledge.status is not PledgeStatus.DRAFT
        or pledge.version != ctx.state.data.get("version")
    ):
        return None
    return pledge


def _find(items: list[PledgeItem], item_id: int | None) -> PledgeItem:
    for item in items:
        if item.id == item_id:
            return item
    raise DomainError("error.stale_card")


def _back_row(ctx: Ctx, pledge: Pledge) -> tuple[Button, ...]:
    return (ctx.button("pledge.btn.back", DraftCb(Act.BACK, pledge.id, pledge.version)),)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _example_deadline(earliest: date, latest: date) -> date:
    """Return a month's end some months ahead, inside the window: an example never in the past."""
    month = min(earliest.month + 3, 12) if earliest.year == latest.year else 6
    year = earliest.year if earliest.year == latest.year else latest.year
    end = date(year, month, calendar.monthrange(year, month)[1])
    return min(max(end, earliest), latest)


def _window(ctx: Ctx, camp: Campaign) -> tuple[date, date]:
    """Return the first and last day an item's deadline may fall on (as the quality check)."""
    return max(ctx.today(camp.timezone), camp.starts_on), camp.ends_on


async def _year(ctx: Ctx, pledge: Pledge) -> int:
    camp = await ctx.session.get(Campaign, pledge.campaign_id)
    return camp.year if camp else ctx.now.year
