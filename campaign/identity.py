"""Bind platform accounts to people on the roster: by shared contact or by invite link.

A person has at most one active account per platform. A shared contact (the platform vouches
that the number is the sender's own) moves the binding to the sender's account and tells the
old one; an invite for someone already bound is refused. Invites expire, work once, and every
unused invite of a person is revoked the moment that person binds by any route. Binds of one
person are serialized by a lock on their roster row (PostgreSQL; SQLite has one writer), and a
partial unique index keeps two active accounts from ever coexisting.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import audit, outbox
from models.base import utcnow
from models.errors import DomainError
from models.org import Account, Invite, Member
from models.reply import CommandMenu, Reply

_PHONE_JUNK = re.compile(r"[\s\-()（）]")
DEFAULT_INVITE_TTL_DAYS = 7
#: the command menu of an account no longer bound (as for anyone not bound yet)
UNBOUND_MENU = ("start", "help", "lang")


def normalize_phone(raw: str) -> str | None:
    """Return the 11-digit mainland mobile number in ``raw``, or None if it is not one."""
    # NFKC turns the full-width digits and plus sign of Chinese input methods into ASCII.
    digits = _PHONE_JUNK.sub("", unicodedata.normalize("NFKC", raw or ""))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
            break
    if re.fullmatch(r"1[0-9]{10}", digits):
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
    """Return the account row of a platform identity (active or ended), if it has one."""
    return (
        await session.exec(
            select(Account)
            .where(Account.platform == platform, Account.external_id == external_id)
            # fresh from the database: binds read it again after taking the person's lock
            .execution_options(populate_existing=True)
        )
    ).first()


async def active_accounts(
    session: AsyncSession, member_id: int, platform: str | None = None
) -> list[Account]:
    """Return a member's active accounts, on one platform or on all."""
    query = select(Account).where(Account.member_id == member_id, Account.active == True)  # noqa: E712
    if platform is not None:
        query = query.where(Account.platform == platform)
    query = query.order_by(col(Account.id)).execution_options(populate_existing=True)
    return list((await session.exec(query)).all())


async def member_by_phone(session: AsyncSession, phone_raw: str) -> Member:
    """Return the roster member with that phone.

    Raises:
        DomainError: ``bind.bad_phone`` or ``bind.not_on_roster``.
    """
    phone = normalize_phone(phone_raw)
    if phone is None:
        raise DomainError("bind.bad_phone")
    member = (await session.exec(select(Member).where(Member.phone == phone))).first()
    if member is None:
        raise DomainError("bind.not_on_roster")
    return member


async def _lock_member(session: AsyncSession, member_id: int) -> None:
    """Serialize binds of one person: a second bind waits and then sees the first's result."""
    await session.exec(select(Member.id).where(Member.id == member_id).with_for_update())


async def end_binding(
    session: AsyncSession,
    account: Account,
    *,
    reason: str,
    actor: int | None,
    now: datetime | None = None,
    detail: dict | None = None,
) -> None:
    """End one active binding: mark it, audit it and tell that account in its own language."""
    now = now or utcnow()
    account.active = False
    account.ended_at = now
    account.end_reason = reason
    session.add(account)
    await session.flush()
    await outbox.enqueue(
        session,
        platform=account.platform,
        chat_id=account.chat_id,
        reply=Reply(f"account.ended_{reason}"),
        locale=account.locale,
    )
    await outbox.enqueue(
        session,
        platform=account.platform,
        chat_id=account.chat_id,
        reply=CommandMenu(UNBOUND_MENU),
        locale=account.locale,
    )
    await audit.record(
        session,
        "account.moved" if reason == "moved" else "account.unbound",
        actor=actor,
        subject=f"member:{account.member_id}",
        payload={
            "platform": account.platform,
            "external_id": account.external_id,
            "reason": reason,
            **(detail or {}),
        },
        at=now,
    )


async def revoke_invites(
    session: AsyncSession,
    member_id: int,
    *,
    reason: str,
    actor: int | None,
    now: datetime | None = None,
) -> int:
    """Revoke (keep, never delete) every unused invite of a member; return how many."""
    now = now or utcnow()
    result = await session.exec(
        update(Invite)
        .where(
            col(Invite.member_id) == member_id,
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
        )
        .values(revoked_at=now, revoke_reason=reason)
        .execution_options(synchronize_session=False)
    )
    count = result.rowcount or 0
    if count:
        await audit.record(
            session,
            "invite.revoked",
            actor=actor,
            subject=f"member:{member_id}",
            payload={"count": count, "reason": reason},
            at=now,
        )
    return count


async def bind(
    session: AsyncSession,
    member: Member,
    *,
    platform: str,
    external_id: str,
    chat_id: str,
    locale: str,
    how: str,
    now: datetime | None = None,
) -> Binding:
    """Bind a platform identity to a member, recording how.

    By ``contact`` the binding moves from the member's other account on the platform (which is
    told); by ``invite`` a member already bound on the platform is refused.

    Raises:
        DomainError: ``bind.inactive`` for someone no longer on the roster, ``bind.taken`` when
            the identity is bound to someone else, ``bind.invite_already_bound`` for an invite
            to someone bound elsewhere, ``bind.busy`` when a simultaneous bind won the race.
    """
    if not member.active:
        raise DomainError("bind.inactive")
    now = now or utcnow()
    await _lock_member(session, member.id)
    existing = await account_for(session, platform, external_id)
    if existing is not None and existing.active:
        if existing.member_id != member.id:
            raise DomainError("bind.taken")
        existing.chat_id = chat_id
        session.add(existing)
        return Binding(existing, member, already=True)
    others = [a for a in await active_accounts(session, member.id, platform) if a is not existing]
    if others and how == "invite":
        raise DomainError("bind.invite_already_bound")
    for old in others:
        await end_binding(
            session, old, reason="moved", actor=member.id, now=now, detail={"to": external_id}
        )
    previously = None
    try:
        async with session.begin_nested():
            if existing is None:
                account = Account(
                    platform=platform,
                    external_id=external_id,
                    chat_id=chat_id,
                    member_id=member.id,
                    locale=locale,
                    bound_at=now,
                )
            else:
                # the identity's old, ended row is bound afresh (to this person, or another)
                previously = existing.member_id
                account = existing
                account.member_id = member.id
                account.chat_id = chat_id
                account.active = True
                account.bound_at = now
                account.ended_at = None
                account.end_reason = ""
            session.add(account)
            await session.flush()
    except IntegrityError as exc:
        raise DomainError("bind.busy") from exc
    await revoke_invites(session, member.id, reason="bound", actor=member.id, now=now)
    payload = {"platform": platform, "external_id": external_id, "how": how}
    if others:
        payload["moved_from"] = [a.external_id for a in others]
    if previously is not None and previously != member.id:
        payload["previously_member"] = previously
    await audit.record(
        session, "account.bound", actor=member.id, subject=f"member:{member.id}", payload=payload
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
    now: datetime | None = None,
) -> Binding:
    """Bind by a phone number the platform vouches for (a shared contact, an SMS sender).

    Raises:
        DomainError: ``bind.bad_phone`` or ``bind.not_on_roster``, or those of ``bind``.
    """
    member = await member_by_phone(session, phone_raw)
    return await bind(
        session,
        member,
        platform=platform,
        external_id=external_id,
        chat_id=chat_id,
        locale=locale,
        how="contact",
        now=now,
    )


async def create_invite(
    session: AsyncSession,
    phone_raw: str,
    *,
    ttl_days: int = DEFAULT_INVITE_TTL_DAYS,
    replace: bool = False,
    now: datetime | None = None,
) -> Invite:
    """Create a one-time invite token for the person with that phone, valid ``ttl_days``.

    Older unused invites of the person are revoked. A person already bound is refused unless
    ``replace``, which ends their bindings first (each account is told).

    Raises:
        DomainError: ``bind.bad_phone``, ``bind.not_on_roster``, ``bind.inactive`` or
            ``invite.already_bound`` (with the bound ``platforms``).
    """
    now = now or utcnow()
    member = await member_by_phone(session, phone_raw)
    if not member.active:
        raise DomainError("bind.inactive")
    await _lock_member(session, member.id)
    bound = await active_accounts(session, member.id)
    if bound and not replace:
        raise DomainError("invite.already_bound", platforms=sorted({a.platform for a in bound}))
    for account in bound:
        await end_binding(session, account, reason="replaced", actor=None, now=now)
    await revoke_invites(session, member.id, reason="reissued", actor=None, now=now)
    invite = Invite(
        token=secrets.token_urlsafe(18),
        member_id=member.id,
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
    )
    session.add(invite)
    await audit.record(
        session,
        "invite.created",
        actor=None,
        subject=f"member:{member.id}",
        payload={"expires_at": invite.expires_at.isoformat(), "replace": bool(bound)},
        at=now,
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
    now: datetime | None = None,
) -> Binding:
    """Bind by a one-time invite token; a used, revoked, expired or unknown one binds nobody.

    Raises:
        DomainError: ``bind.invite_invalid``, ``bind.invite_used``, ``bind.invite_revoked``,
            ``bind.invite_expired``, or those of ``bind``.
    """
    now = now or utcnow()
    invite = await session.get(Invite, token)
    if invite is None:
        raise DomainError("bind.invite_invalid")
    member = await session.get(Member, invite.member_id)
    if invite.used_at is not None:
        existing = await account_for(session, platform, external_id)
        if (
            existing is not None
            and existing.active
            and existing.id == invite.used_by_account_id
            and existing.member_id == invite.member_id
        ):
            return Binding(existing, member, already=True)
        raise DomainError("bind.invite_used")
    if invite.revoked_at is not None:
        raise DomainError("bind.invite_revoked")
    if invite.expires_at is not None and invite.expires_at <= now:
        raise DomainError("bind.invite_expired")
    # The person's lock first, then the invite (the order every bind takes: no deadlock);
    # claim it by a conditional update: of two simultaneous redemptions one wins.
    await _lock_member(session, invite.member_id)
    claimed = await session.exec(
        update(Invite)
        .where(
            col(Invite.token) == token,
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise DomainError("bind.invite_used")
    binding = await bind(
        session,
        member,
        platform=platform,
        external_id=external_id,
        chat_id=chat_id,
        locale=locale,
        how="invite",
        now=now,
    )
    invite.used_at = now
    invite.used_by_account_id = binding.account.id
    session.add(invite)
    return binding


@dataclass(frozen=True)
class Bindings:
    """A person's accounts (active and ended) and invites, newest first."""

    member: Member
    accounts: list[Account]
    invites: list[Invite]


async def bindings_of(session: AsyncSession, phone_raw: str) -> Bindings:
    """Return a person's bindings and invites for the office, and audit that they were shown.

    Raises:
        DomainError: ``bind.bad_phone`` or ``bind.not_on_roster``.
    """
    member = await member_by_phone(session, phone_raw)
    accounts = (
        await session.exec(
            select(Account)
            .where(Account.member_id == member.id)
            .order_by(col(Account.active).desc(), col(Account.bound_at).desc())
        )
    ).all()
    invites = (
        await session.exec(
            select(Invite)
            .where(Invite.member_id == member.id)
            .order_by(col(Invite.created_at).desc())
        )
    ).all()
    await audit.record(session, "account.listed", actor=None, subject=f"member:{member.id}")
    return Bindings(member, list(accounts), list(invites))


async def unbind(
    session: AsyncSession, phone_raw: str, *, now: datetime | None = None
) -> tuple[Member, list[Account], int]:
    """End every active binding of a person and revoke their unused invites (the office).

    Returns:
        The person, the accounts whose binding ended (each was told) and how many invites
        were revoked.

    Raises:
        DomainError: ``bind.bad_phone`` or ``bind.not_on_roster``.
    """
    now = now or utcnow()
    member = await member_by_phone(session, phone_raw)
    await _lock_member(session, member.id)
    ended = await active_accounts(session, member.id)
    for account in ended:
        await end_binding(session, account, reason="unbound", actor=None, now=now)
    revoked = await revoke_invites(session, member.id, reason="unbound", actor=None, now=now)
    return member, ended, revoked
