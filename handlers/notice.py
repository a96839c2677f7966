"""/notice and /notices: write a public notice (公告), choose its audience, preview, confirm.

The notice's text comes typed (or as a photo's caption); then the audience inside one's own
subtree; then a preview with the recipients per channel (Telegram, SMS, groups); 确认发送 queues
it (``campaign.notices.send``) and turns the preview into the progress message, which the
running bot edits in place as delivery goes and ends with the summary.

Dialog of this module (the dialog's text handler takes the text; buttons take the rest)::

    stateDiagram-v2
        [*] --> text : /notice
        text --> text : a photo without a caption (kept; the text is asked)
        text --> audience : the text (or a photo with its caption)
        audience --> preview : an audience button (or a child organization)
        preview --> [*] : 确认发送 / 取消
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from campaign import notices
from handlers.callbacks import CallbackData
from handlers.context import Ctx, State
from handlers.events import ButtonPressed, PhotoReceived, TextReceived, UnsupportedReceived
from handlers.input import TAKES_BUTTONS, TAKES_PHOTO
from models.errors import DomainError
from models.notice import Audience
from models.org import Org
from models.reply import Attachment, AttachmentKind, Reply

DIALOG = "notice"
#: child organizations offered as buttons, two a row
CHILDREN_MAX = 60
#: audience choices that are buttons of their own (a child organization is chosen in a list)
PICK = "pick"


@dataclass(frozen=True)
class NoticeAudienceCb(CallbackData):
    """Choose the audience: ``members``, ``secretaries``, ``groups``, ``pick`` or ``org``."""

    prefix = "nta"
    scope_id: int
    audience: str
    org_id: int = 0


@dataclass(frozen=True)
class NoticeConfirmCb(CallbackData):
    """确认发送 (``ok``) or 取消 (``no``) on a notice's preview."""

    prefix = "ntk"
    action: str


NOTICE_TYPES: tuple[type[CallbackData], ...] = (NoticeAudienceCb, NoticeConfirmCb)


def takes(state: State) -> str:
    """Return what the dialog's step takes: the text (or a photo), or a button."""
    return TAKES_PHOTO if state.step == "text" else TAKES_BUTTONS


def _message_id(ctx: Ctx) -> str | None:
    return ctx.event.message_id if isinstance(ctx.event, ButtonPressed) else None


async def on_notice(ctx: Ctx) -> list[Reply]:
    """Start a notice: ask for its text (a photo with a caption is welcome)."""
    if not notices.may_send(ctx.actor):
        return [ctx.reply("notice.not_allowed")]
    ctx.state.enter(DIALOG, "text")
    limit = notices.max_text()
    return [ctx.reply("notice.ask_text", limit=limit)]


async def on_input(ctx: Ctx) -> list[Reply]:
    """Take the notice's text (or photo), then offer the audiences."""
    if ctx.state.step != "text":
        return [ctx.reply("notice.use_buttons")]
    event = ctx.event
    data = dict(ctx.state.data)
    if isinstance(event, PhotoReceived | UnsupportedReceived):
        # a photo, or a file (a document kept by its platform id; the router sends files here)
        if isinstance(event, PhotoReceived):
            data.pop("document", None)
            data["photo"] = event.file_id
        else:
            data.pop("photo", None)
            data["document"] = event.file_id
            data["file_name"] = event.file_name
        text = event.caption
        if not text.strip():
            ctx.state.enter(DIALOG, "text", **_own(data))
            return [ctx.reply("notice.photo_kept", file=data.get("file_name"))]
    elif isinstance(event, TextReceived):
        text = event.text
    else:  # pragma: no cover - the router sends only text, photos and files here
        return [ctx.reply("notice.use_buttons")]
    text = notices.check_text(text)
    ctx.state.enter(DIALOG, "audience", **{**_own(data), "text": text})
    return [await _audiences(ctx)]


def _own(data: dict) -> dict:
    return {k: v for k, v in data.items() if not k.startswith("_")}


async def _audiences(ctx: Ctx) -> Reply:
    scopes = notices.scope_ids(ctx.actor)
    orgs = (await ctx.session.exec(select(Org).where(col(Org.id).in_(scopes)))).all()
    by_id = {o.id: o for o in orgs}
    rows = []
    for scope_id in scopes:
        org = by_id[scope_id]
        label = {"org": org.name, "many": len(scopes) > 1}
        row = [
            ctx.button(f"notice.btn.{a}", NoticeAudienceCb(scope_id, a), **label)
            for a in (Audience.MEMBERS.value, Audience.SECRETARIES.value, Audience.GROUPS.value)
        ]
        rows.append(tuple(row[:2]))
        rows.append((row[2], ctx.button("notice.btn.pick", NoticeAudienceCb(scope_id, PICK))))
    return Reply(
        "notice.ask_audience",
        {"text": notices.excerpt(ctx.state.data.get("text", ""), 60)},
        buttons=tuple(rows),
    )


async def on_audience(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Show the children to choose from, or the preview of the audience chosen."""
    assert isinstance(cb, NoticeAudienceCb)
    if ctx.state.dialog != DIALOG or ctx.state.step not in ("audience", "preview"):
        raise DomainError("notice.lost")
    scope = await ctx.session.get(Org, cb.scope_id)
    if scope is None or not notices.within(ctx.actor, scope):
        raise DomainError("notice.forbidden")
    if cb.audience == PICK:
        children = (
            await ctx.session.exec(
                select(Org.id, Org.name)
                .where(Org.parent_id == scope.id)
                .order_by(col(Org.path))
                .limit(CHILDREN_MAX)
            )
        ).all()
        if not children:
            raise DomainError("notice.no_children", org=scope.name)
        buttons = [
            ctx.button("notice.btn.child", NoticeAudienceCb(scope.id, "org", cid), org=name)
            for cid, name in children
        ]
        rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
        return [
            Reply(
                "notice.ask_child",
                {"org": scope.name},
                buttons=rows,
                edit_message_id=_message_id(ctx),
            )
        ]
    try:
        audience = Audience(cb.audience)
    except ValueError as exc:
        raise DomainError("error.bad_button") from exc
    plan = await notices.resolve(
        ctx.session, ctx.actor, scope.id, audience, cb.org_id if audience is Audience.ORG else None
    )
    if not plan.messages:
        raise DomainError(
            "notice.nobody", org=plan.target.name, audience=audience.value, people=plan.unreachable
        )
    data = _own(ctx.state.data)
    chosen = {"scope": scope.id, "audience": audience.value, "org": cb.org_id}
    ctx.state.enter(DIALOG, "preview", **{**data, **chosen})
    buttons = (
        (
            ctx.button("notice.btn.confirm", NoticeConfirmCb("ok")),
            ctx.button("notice.btn.cancel", NoticeConfirmCb("no")),
        ),
    )
    context = {
        **plan.context(),
        "text": data.get("text", ""),
        "photo": bool(data.get("photo")),
        "file": data.get("file_name") or bool(data.get("document")),
    }
    return [Reply("notice.preview", context, buttons=buttons, edit_message_id=_message_id(ctx))]


async def on_confirm(ctx: Ctx, cb: CallbackData) -> list[Reply]:
    """Queue the notice once (a double tap finds it), and make the preview its progress."""
    assert isinstance(cb, NoticeConfirmCb)
    message_id = _message_id(ctx)
    s = ctx.sender
    token = f"chat:{s.platform}:{s.chat_id}:{message_id or ctx.event.update_id}"
    existing = await notices.find(ctx.session, token)
    if existing is not None:
        return [Reply("notice.already", {"id": existing.id}, toast=True)]
    if ctx.state.dialog != DIALOG or ctx.state.step != "preview":
        raise DomainError("notice.lost")
    data = ctx.state.data
    if cb.action != "ok":
        ctx.state.clear()
        return [Reply("notice.cancelled", {}, edit_message_id=message_id)]
    audience = Audience(data["audience"])
    attachment = None
    if data.get("photo"):
        attachment = Attachment(kind=AttachmentKind.PHOTO.value, file_id=data["photo"])
    elif data.get("document"):
        attachment = Attachment(
            kind=AttachmentKind.DOCUMENT.value,
            file_id=data["document"],
            filename=data.get("file_name") or None,
        )
    notice, _ = await notices.send(
        ctx.session,
        ctx.actor,
        token=token,
        scope_org_id=int(data["scope"]),
        audience=audience,
        org_id=int(data["org"]) if audience is Audience.ORG else None,
        text=data.get("text", ""),
        attachment=attachment,
        chat=(s.platform, s.chat_id, message_id, ctx.locale),
        now=ctx.now,
    )
    ctx.state.clear()
    figs = await notices.figures(ctx.session, notice)
    return [
        Reply("notice.queued_toast", {"messages": figs["messages"]}, toast=True),
        notices.progress_reply(notice, {**figs, "done": False})
        if message_id
        else Reply("notice.progress", figs),
    ]


async def on_notices(ctx: Ctx) -> list[Reply]:
    """List the notices the person sent, with their figures."""
    if not notices.may_send(ctx.actor):
        return [ctx.reply("notice.not_allowed")]
    rows = await notices.sent_by(ctx.session, ctx.actor.member_id)
    if not rows:
        return [ctx.reply("notice.none")]
    entries = []
    for notice in rows:
        figs = await notices.figures(ctx.session, notice)
        entries.append(
            {
                **figs,
                "at": (notice.confirmed_at or notice.created_at).isoformat(),
                "excerpt": notices.excerpt(notice.text),
                "photo": bool(notice.attachment),
            }
        )
    return [ctx.reply("notice.list", entries=entries)]
