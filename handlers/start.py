"""Binding and the basics: /start (with an invite), a shared contact, /help, /lang, /cancel."""

from __future__ import annotations

from dataclasses import dataclass

from campaign import fulfil, identity, outbox
from campaign.access import Action, allowed_actions, load_actor
from handlers.callbacks import CallbackData
from handlers.context import Ctx
from handlers.events import CommandReceived, ContactShared
from handlers.menu import with_menu
from models.campaign import JobRun
from models.dialog import Priority
from models.errors import DomainError
from models.org import Org
from models.reply import Button, CommandMenu, Keyboard, Reply
from templates import LOCALES

INVITE_PREFIX = "inv_"
PUBLIC_COMMANDS = ("start", "help", "lang")


@dataclass(frozen=True)
class LangCb(CallbackData):
    """Switch the interface language."""

    prefix = "lang"
    locale: str


def menu_commands(actions: list[Action], available: frozenset[str]) -> tuple[str, ...]:
    """Return the private-chat command menu for a set of allowed actions."""
    if not actions:
        cmds = list(PUBLIC_COMMANDS)
    else:
        # /bindgroup is a group command; it lives in the groups' menu
        personal = [a.value for a in actions if a is not Action.BIND_GROUP]
        cmds = ["help", *personal, "lang", "channel", "cancel"]
    return tuple(c for c in cmds if c in available)


async def _queue_menu(ctx: Ctx) -> None:
    """Queue the command menu that fits the sender's roles and language."""
    row = await outbox.enqueue(
        ctx.session,
        platform=ctx.sender.platform,
        chat_id=ctx.sender.chat_id,
        reply=CommandMenu(menu_commands(allowed_actions(ctx.actor), ctx.commands)),
        locale=ctx.locale,
        priority=Priority.REPLY,
    )
    if row is not None:
        ctx.extra_outbox.append(row)


async def _welcome(ctx: Ctx, binding: identity.Binding) -> list[Reply]:
    ctx.account = binding.account
    ctx.actor = await load_actor(ctx.session, binding.member.id)
    ctx.locale = binding.account.locale
    ctx.state.data.pop("_locale", None)
    org = await ctx.session.get(Org, binding.member.org_id)
    await _queue_menu(ctx)
    key = "bind.welcome_back" if binding.already else "bind.done"
    # The menu keyboard replaces the share-contact button; the help under it explains it.
    replies = [
        with_menu(ctx, Reply(key, {"name": binding.member.name, "org": org.name if org else ""})),
        help_reply(ctx),
    ]
    owed = await _month_owed(ctx)
    if owed:
        # Bound after this month's prompt went out: say once where to report; never chase.
        replies.append(ctx.reply("report.after_binding", month=owed))
    return replies


async def _month_owed(ctx: Ctx) -> str | None:
    """Return this month's key if its prompt has gone out and the person still owes a report."""
    for pledge in await fulfil.reportable(ctx.session, ctx.actor):
        camp = await fulfil.campaign_of(ctx.session, pledge)
        month = fulfil.month_of(ctx.today(camp.timezone))
        ran = await ctx.session.get(JobRun, ("prompt", camp.id, month))
        if ran is None:
            continue
        reports = await fulfil.reports_of(ctx.session, pledge.id, month)
        if any(i.id not in reports for i in await fulfil.open_items(ctx.session, pledge.id)):
            return month
    return None


async def on_start(ctx: Ctx) -> list[Reply]:
    """Greet, bind by an invite payload, or ask an unbound person to share their contact."""
    assert isinstance(ctx.event, CommandReceived)
    payload = ctx.event.args.strip()
    if payload.startswith(INVITE_PREFIX):
        binding = await identity.redeem_invite(
            ctx.session,
            payload[len(INVITE_PREFIX) :],
            platform=ctx.sender.platform,
            external_id=ctx.sender.user_id,
            chat_id=ctx.sender.chat_id,
            locale=ctx.locale,
            now=ctx.now,
        )
        return await _welcome(ctx, binding)
    if ctx.actor is None:
        return [Reply("bind.intro", keyboard=Keyboard.REQUEST_CONTACT)]
    return [
        with_menu(ctx, ctx.reply("bind.welcome_back", name=ctx.actor.name, org="")),
        help_reply(ctx),
    ]


async def on_contact(ctx: Ctx) -> list[Reply]:
    """Bind by a shared contact: it must be the sender's own and match the roster."""
    event = ctx.event
    assert isinstance(event, ContactShared)
    if event.contact_user_id is None or event.contact_user_id != ctx.sender.user_id:
        raise DomainError("bind.not_own_contact")
    binding = await identity.bind_by_phone(
        ctx.session,
        event.phone,
        platform=ctx.sender.platform,
        external_id=ctx.sender.user_id,
        chat_id=ctx.sender.chat_id,
        locale=ctx.locale,
        now=ctx.now,
    )
    return await _welcome(ctx, binding)


def help_reply(ctx: Ctx) -> Reply:
    """Return the list of commands the sender's roles allow."""
    actions = allowed_actions(ctx.actor)
    commands = list(menu_commands(actions, ctx.commands))
    roles = sorted({g.role.value for g in ctx.actor.grants}) if ctx.actor else []
    member = ctx.actor is None or ctx.actor.is_party_member
    return with_menu(
        ctx,
        Reply(
            "help.text" if member else "menu.help_evaluator",
            {"commands": commands, "roles": roles, "bound": bool(actions)},
        ),
    )


async def on_help(ctx: Ctx) -> list[Reply]:
    """Show the commands the sender may use."""
    if ctx.in_group:
        return [ctx.reply("help.group")]
    return [help_reply(ctx)]


async def on_lang(ctx: Ctx) -> list[Reply]:
    """Switch language by argument (``/lang en``), or offer the choice as buttons."""
    assert isinstance(ctx.event, CommandReceived)
    wanted = ctx.event.args.strip().replace("-", "_")
    aliases = {"zh": "zh_CN", "cn": "zh_CN", "zh_cn": "zh_CN", "中文": "zh_CN", "english": "en"}
    wanted = aliases.get(wanted.lower(), wanted) if wanted else ""
    if wanted:
        if wanted not in LOCALES:
            return [ctx.reply("lang.unknown", value=ctx.event.args.strip()[:16])]
        return await _set_locale(ctx, wanted)
    row = tuple(Button(f"lang.name.{loc}", data=ctx.codec.encode(LangCb(loc))) for loc in LOCALES)
    return [Reply("lang.choose", buttons=(row,))]


async def on_lang_button(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Switch language from the chooser's button."""
    assert isinstance(cb, LangCb)
    if cb.locale not in LOCALES:
        raise DomainError("error.bad_button")
    return await _set_locale(ctx, cb.locale)


async def _set_locale(ctx: Ctx, locale: str) -> list[Reply]:
    ctx.locale = locale
    if ctx.account is not None:
        ctx.account.locale = locale
        ctx.session.add(ctx.account)
    else:
        ctx.state.data["_locale"] = locale
    await _queue_menu(ctx)
    return [with_menu(ctx, ctx.reply("lang.switched"))]


async def on_cancel(ctx: Ctx) -> list[Reply]:
    """Leave the current dialog; saved drafts stay as they are."""
    was = ctx.state.dialog
    ctx.state.clear()
    return [ctx.reply("cancel.done" if was else "cancel.nothing")]
