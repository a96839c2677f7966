"""Bind platform accounts to people on the roster: by shared contact or by invite link."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit
from models.base import utcnow
from models.errors import DomainError
from models.org import Account, Invite, Member

_PHONE_JUNK = re.compile(r"[\s\-()（）]")


def normalize_phone(raw: str) -> str | None:
    """Return the 11-digit mainland mobile number in ``raw``, or None if it is not one."""
    digits = _PHONE_JUNK.sub("", raw or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
            break
    if re.fullmatch(r"1\d{10}", digits):
        return digits
    return None


def mask_phone(phone: str) -> str:
    """Return a phone number with its middle digits hidden (138****0001)."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) == 11 else "****"


@dataclass(frozen=True)
class Binding:
    """The account now bound, and whether it was bound before this call."""

    account: Account
    member: Member
    already: bool


async def account_for(session: AsyncSession, platform: str, external_id: str) -> Account | None:
    """Return the active account of a platform identity, if bound."""
    return (
        await session.exec(
            select(Account).where(
                Account.platform == platform,
                Account.external_id == external_id,
            )
        )
    ).first()


async def bind(
    session: AsyncSession,
    member: Member,
    *,
    platform: str,
    external_id: str,
    chat_id: str,
    locale: str,
    how: str,
) -> Binding:
    """Bind a platform identity to a member, recording how.

    Raises:
        DomainError: ``bind.inactive`` for someone no longer on the roster, or
            ``bind.taken`` when the identity is already bound to someone else.
    """
    if not member.active:
        raise DomainError("bind.inactive")
    existing = await account_for(session, platform, external_id)
    if existing is not None:
        if existing.member_id != member.id:
            raise DomainError("bind.taken")
        existing.active = True
        existing.chat_id = chat_id
        session.add(existing)
        return Binding(existing, member, already=True)
    account = Account(
        platform=platform,
        external_id=external_id,
        chat_id=chat_id,
        member_id=member.id,
        locale=locale,
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        "account.bound",
        actor=member.id,
        subject=f"member:{member.id}",
        payload={"platform": platform, "external_id": external_id, "how": how},
    )
    return Binding(account, member, already=False)


async def bind_by_phone(
    session: AsyncSession,
    phone_raw: str,
    *,
    platform: str,
    external_id: str,
    chat_id: str,
    locale: str,
) -> Binding:
    """Bind by a phone number the platform vouches for (a shared contact, an SMS sender).

    Raises:
        DomainError: ``bind.bad_phone`` or ``bind.not_on_roster``.
    """
    phone = normalize_phone(phone_raw)
    if phone is None:
        raise DomainError("bind.bad_phone")
    member = (await session.exec(select(Member).where(Member.phone == phone))).first()
    if member is None:
        raise DomainError("bind.not_on_roster")
    return await bind(
        session,
        member,
        platform=platform,
        external_id=external_id,
        chat_id=chat_id,
        locale=locale,
        how="contact",
    )


async def create_invite(session: AsyncSession, phone_raw: str) -> Invite:
    """Create a one-time invite token for the person with that phone.

    Raises:
        DomainError: ``bind.bad_phone`` or ``bind.not_on_roster``.
    """
    phone = normalize_phone(phone_raw)
    if phone is None:
        raise DomainError("bind.bad_phone")
    member = (await session.exec(select(Member).where(Member.phone == phone))).first()
    if member is None:
        raise DomainError("bind.not_on_roster")
    invite = Invite(token=secrets.token_urlsafe(18), member_id=member.id)
    session.add(invite)
    await audit.record(
        session, "invite.created", actor=None, subject=f"member:{member.id}", payload={}
    )
    return invite


async def redeem_invite(
    session: AsyncSession,
    token: str,
    *,
    platform: str,
    external_id: str,
    chat_id: str,
    locale: str,
) -> Binding:
    """Bind by a one-time invite token; a used or unknown token binds nobody.

    Raises:
        DomainError: ``bind.invite_invalid`` or ``bind.invite_used``, or those of ``bind``.
    """
    invite = await session.get(Invite, token)
    if invite is None:
        raise DomainError("bind.invite_invalid")
    member = await session.get(Member, invite.member_id)
    if invite.used_at is not None:
        existing = await account_for(session, platform, external_id)
        if existing is not None and existing.member_id == invite.member_id:
            return Binding(existing, member, already=True)
        raise DomainError("bind.invite_used")
    binding = await bind(
        session,
        member,
        platform=platform,
        external_id=external_id,
        chat_id=chat_id,
        locale=locale,
        how="invite",
    )
    invite.used_at = utcnow()
    invite.used_by_account_id = binding.account.id
    session.add(invite)
    return binding
