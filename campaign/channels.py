"""How a member is reached (通知方式): Telegram when bound, SMS when not, or what they chose.

The setting lives on the member (``Member.channel``): ``auto`` (the default), ``telegram``,
``sms``, ``group`` (the office reaches them in its own group: no SMS) or ``none`` (opted out,
``TD``). The office sets it in the roster's optional 通知方式 column; the person with
``/channel`` or by texting ``TD``. A person's own choice outlives re-imports of the roster.

``campaign.outbox.member_routes`` asks ``choose`` for each member; a reply that goes by SMS is
swapped for its short SMS wording by ``sms_reply`` (the catalog key ``sms.<template>``): a kind
of message without one is not sent by SMS at all.

SMS is on when the composition root says so: ``Store.sms_enabled`` is copied into every session
(``session.info``), read here by ``sms_enabled``. Off, nobody is routed to SMS.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, identity
from campaign.db import SMS_ENABLED
from models.base import utcnow
from models.org import Account, Channel, ChannelBy, Member
from models.reply import CommandMenu, Reply
from templates import DEFAULT_LOCALE, catalog
from templates.lexicon import lexicon

#: the platform name of SMS (outbox rows, senders)
SMS = "sms"
#: the catalog prefix of the SMS wordings
SMS_PREFIX = "sms."
#: the lexicon key of the words a roster's 通知方式 column is told to use
SHOWN_CHANNEL_WORDS = "_shown"
#: what separates an SMS code from its reason or date: spaces, plus signs, colons, commas
_CODE_SEPARATORS = " \t\n+＋:：,，、.。;；-—"


def sms_enabled(session: AsyncSession) -> bool:
    """Tell whether this deployment sends SMS (the store's flag, copied into the session)."""
    return bool(session.info.get(SMS_ENABLED, False))


def tail(phone: str) -> str:
    """Return a phone number as logs may show it: its last four digits only."""
    return f"****{phone[-4:]}" if phone and len(phone) >= 4 else "****"


def choose(channel: Channel, bound: list[Any], sms: Any | None) -> list[Any]:
    """Return the routes of one member: their bound accounts' routes or the SMS route.

    ``bound`` are the routes of their active accounts (never SMS ones); ``sms`` is the SMS route
    when SMS is on and the member has a number, else None.
    """
    if channel is Channel.NONE:
        return []
    if channel is Channel.SMS:
        return [sms] if sms is not None else list(bound)
    if channel in (Channel.TELEGRAM, Channel.GROUP):
        return list(bound)
    return list(bound) if bound else ([sms] if sms is not None else [])


def sms_template(template: str) -> str | None:
    """Return the SMS wording's key of a template, or None when that kind has none."""
    if template.startswith(SMS_PREFIX):
        return template
    key = f"{SMS_PREFIX}{template}"
    return key if catalog().has(key) else None


def sms_reply(reply: Reply | CommandMenu) -> Reply | None:
    """Return a reply as its SMS (same context, no buttons), or None if it is not sent by SMS.

    Menus, edits of cards, toasts and polls never go by SMS; nor does a message whose kind has
    no SMS wording in the catalogs.
    """
    if not isinstance(reply, Reply) or reply.edit_message_id or reply.toast or reply.poll:
        return None
    key = sms_template(reply.template)
    return Reply(key, reply.context) if key is not None else None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def parse_channel(word: str) -> Channel | None:
    """Return the channel a word names (短信, SMS, 自动 …, in any language), or None."""
    folded = " ".join(_fold(word).split())
    if not folded:
        return None
    for value, words in lexicon("channels").items():
        if value.startswith("_"):
            continue
        if folded in (" ".join(_fold(w).split()) for w in words):
            return Channel(value)
    return None


def parse_sms(text: str) -> tuple[str | None, str]:
    """Read a texted answer: its code (``on_track``, ``blocked``, ``pause``, ``opt_out``) and rest.

    A code opens the message ("2 路没修通", "3 6月30日", "TD"); a code of Latin letters or
    digits must not run on into more of them ("12", "Thanks" are no codes). Full-width
    characters count as narrow ones. No code: (None, the text).
    """
    t = unicodedata.normalize("NFKC", text or "").strip()
    low = t.casefold()
    best: tuple[str, str] | None = None
    for code, phrases in lexicon("sms").items():
        for phrase in phrases:
            p = unicodedata.normalize("NFKC", phrase).casefold()
            if not p or not low.startswith(p):
                continue
            after = low[len(p) : len(p) + 1]
            if p[-1].isascii() and p[-1].isalnum() and after.isascii() and after.isalnum():
                continue
            if best is None or len(p) > len(best[1]):
                best = (code, p)
    if best is None:
        return None, t
    return best[0], t[len(best[1]) :].strip(_CODE_SEPARATORS)


async def member_by_phone(session: AsyncSession, phone_raw: str) -> Member | None:
    """Return the active roster member with that number (an SMS sender), or None."""
    phone = identity.normalize_phone(phone_raw)
    if phone is None:
        return None
    member = (await session.exec(select(Member).where(Member.phone == phone))).first()
    return member if member is not None and member.active else None


async def member_locales(session: AsyncSession, member_ids: Iterable[int]) -> dict[int, str]:
    """Return each member's language: that of their latest account (bound or ended), else zh_CN."""
    ids = list(dict.fromkeys(member_ids))
    out = dict.fromkeys(ids, DEFAULT_LOCALE)
    for start in range(0, len(ids), 500):
        rows = await session.exec(
            select(Account.member_id, Account.locale)
            .where(col(Account.member_id).in_(ids[start : start + 500]))
            .order_by(col(Account.id))
        )
        for member_id, locale in rows.all():
            out[member_id] = locale  # the latest wins
    return out


async def set_channel(
    session: AsyncSession,
    member: Member,
    channel: Channel,
    *,
    by: ChannelBy,
    via: str,
    now: datetime | None = None,
) -> bool:
    """Set how a member is reached, and audit it; return whether anything changed.

    ``via`` says where the choice was made (``telegram``, ``sms``, ``console`` …). Opting out
    (``none``) is recorded as ``channel.opted_out``.
    """
    if member.channel is channel:
        if member.channel_by is not by and by is ChannelBy.PERSON:
            member.channel_by = by  # the person confirms it: a roster will not undo it now
            session.add(member)
        return False
    before = member.channel
    member.channel = channel
    member.channel_by = by
    session.add(member)
    await session.flush()
    await audit.record(
        session,
        "channel.opted_out" if channel is Channel.NONE else "channel.set",
        actor=member.id if by is ChannelBy.PERSON else None,
        subject=f"member:{member.id}",
        payload={"channel": channel.value, "before": before.value, "by": by.value, "via": via},
        at=now or utcnow(),
    )
    return True
