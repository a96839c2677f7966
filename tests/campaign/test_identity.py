"""Binding on SQLite and PostgreSQL: invites expire, work once, are revoked; one active account.

Each test runs on both stores (the ``store`` fixture). Refusals are checked for what they leave
behind as well as for their message key.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, func, select

from campaign import identity
from models import Account, AuditEvent, Outbox
from models.errors import DomainError
from models.org import Invite, Member
from tests.conftest import seed_people

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SECRETARY_PHONE = "13800000002"
MEMBER_PHONE = "13800000001"


@pytest.fixture
async def people(store):
    return await seed_people(store)


async def _invite(store, phone: str, **kw) -> str:
    async with store.write() as s:
        return (await identity.create_invite(s, phone, now=kw.pop("now", T0), **kw)).token


async def _contact(store, phone: str, uid: str, *, now=T0, locale="zh_CN"):
    async with store.write() as s:
        return await identity.bind_by_phone(
            s, phone, platform="t", external_id=uid, chat_id=uid, locale=locale, now=now
        )


async def _redeem(store, token: str, uid: str, *, now=T0):
    async with store.write() as s:
        return await identity.redeem_invite(
            s, token, platform="t", external_id=uid, chat_id=uid, locale="zh_CN", now=now
        )


async def _active(store, member_id: int) -> list[str]:
    async with store.read() as s:
        rows = await s.exec(
            select(Account.external_id).where(
                Account.member_id == member_id,
                Account.active == True,  # noqa: E712
            )
        )
        return sorted(rows.all())


async def _kinds(store) -> list[str]:
    async with store.read() as s:
        return list((await s.exec(select(AuditEvent.kind).order_by(col(AuditEvent.id)))).all())


async def test_unused_invite_dies_when_its_person_binds_by_contact(store, people):
    """Found: a secretary's unused invite still bound a stranger after she bound by contact."""
    token = await _invite(store, SECRETARY_PHONE)
    await _contact(store, SECRETARY_PHONE, "secretary-phone")
    with pytest.raises(DomainError) as refused:
        await _redeem(store, token, "stranger")
    assert refused.value.key == "bind.invite_revoked"
    assert await _active(store, people.ids["secretary"]) == ["secretary-phone"]
    async with store.read() as s:
        invite = await s.get(Invite, token)
        stranger = await identity.account_for(s, "t", "stranger")
    assert stranger is None
    assert invite.revoked_at is not None and invite.revoke_reason == "bound"
    assert invite.used_at is None
    assert (await _kinds(store))[-2:] == ["invite.revoked", "account.bound"]


async def test_every_unused_invite_dies_when_one_of_them_is_used(store, people):
    first = await _invite(store, MEMBER_PHONE)
    async with store.write() as s:
        # an older link made before the reissue rule, still unused
        s.add(Invite(token="older-link", member_id=people.ids["member"], created_at=T0))
    await _redeem(store, first, "member-phone")
    with pytest.raises(DomainError) as refused:
        await _redeem(store, "older-link", "stranger")
    assert refused.value.key == "bind.invite_revoked"


async def test_a_new_invite_replaces_the_unused_one(store, people):
    old = await _invite(store, MEMBER_PHONE)
    new = await _invite(store, MEMBER_PHONE)
    with pytest.raises(DomainError) as refused:
        await _redeem(store, old, "someone")
    assert refused.value.key == "bind.invite_revoked"
    assert (await _redeem(store, new, "member-phone")).member.id == people.ids["member"]


async def test_invite_expires_after_its_days(store, people):
    token = await _invite(store, MEMBER_PHONE, ttl_days=7)
    with pytest.raises(DomainError) as refused:
        await _redeem(store, token, "late", now=T0 + timedelta(days=7, seconds=1))
    assert refused.value.key == "bind.invite_expired"
    binding = await _redeem(store, token, "in-time", now=T0 + timedelta(days=6, hours=23))
    assert binding.member.id == people.ids["member"] and not binding.already


async def test_invite_works_once(store, people):
    token = await _invite(store, MEMBER_PHONE)
    await _redeem(store, token, "first")
    again = await _redeem(store, token, "first")  # the same person opening it again
    assert again.already
    with pytest.raises(DomainError) as refused:
        await _redeem(store, token, "second")
    assert refused.value.key == "bind.invite_used"
    assert await _active(store, people.ids["member"]) == ["first"]


async def test_contact_moves_the_binding_and_tells_the_old_account(store, people):
    await _contact(store, MEMBER_PHONE, "old-phone", locale="en")
    binding = await _contact(store, MEMBER_PHONE, "new-phone", now=T0 + timedelta(hours=1))
    assert not binding.already
    assert await _active(store, people.ids["member"]) == ["new-phone"]
    async with store.read() as s:
        old = await identity.account_for(s, "t", "old-phone")
        told = (
            await s.exec(
                select(Outbox).where(Outbox.chat_id == "old-phone", Outbox.kind == "message")
            )
        ).all()
        moved = (await s.exec(select(AuditEvent).where(AuditEvent.kind == "account.moved"))).one()
    assert (old.active, old.end_reason) == (False, "moved")
    assert [(o.payload["template"], o.payload["locale"]) for o in told] == [
        ("account.ended_moved", "en")
    ]
    assert moved.payload["external_id"] == "old-phone" and moved.payload["to"] == "new-phone"
    # and back again: the old identity's ended row is bound afresh
    await _contact(store, MEMBER_PHONE, "old-phone", now=T0 + timedelta(hours=2))
    assert await _active(store, people.ids["member"]) == ["old-phone"]


async def test_invite_for_someone_bound_is_refused_and_changes_nothing(store, people):
    await _contact(store, MEMBER_PHONE, "member-phone")
    with pytest.raises(DomainError) as refused:
        await _invite(store, MEMBER_PHONE)
    assert refused.value.key == "invite.already_bound"
    assert refused.value.context["platforms"] == ["t"]
    async with store.write() as s:
        s.add(Invite(token="made-by-hand", member_id=people.ids["member"], created_at=T0))
    before = await _kinds(store)
    with pytest.raises(DomainError) as refused:
        await _redeem(store, "made-by-hand", "stranger")
    assert refused.value.key == "bind.invite_already_bound"
    assert await _kinds(store) == before
    assert await _active(store, people.ids["member"]) == ["member-phone"]


async def test_invite_replace_ends_the_old_binding_at_once(store, people):
    await _contact(store, MEMBER_PHONE, "lost-phone")
    token = await _invite(store, MEMBER_PHONE, replace=True)
    assert await _active(store, people.ids["member"]) == []
    async with store.read() as s:
        told = (
            await s.exec(select(Outbox).where(Outbox.chat_id == "lost-phone").order_by(Outbox.id))
        ).all()
    assert [(o.kind, o.payload.get("template")) for o in told] == [
        ("message", "account.ended_replaced"),
        ("commands", None),  # the menu of someone not bound
    ]
    await _redeem(store, token, "new-phone")
    assert await _active(store, people.ids["member"]) == ["new-phone"]


async def test_unbind_ends_bindings_and_revokes_invites(store, people):
    await _contact(store, MEMBER_PHONE, "member-phone")
    async with store.write() as s:
        s.add(Invite(token="pending", member_id=people.ids["member"], created_at=T0))
    async with store.write() as s:
        member, ended, revoked = await identity.unbind(s, MEMBER_PHONE)
    assert member.id == people.ids["member"]
    assert [a.external_id for a in ended] == ["member-phone"] and revoked == 1
    assert await _active(store, people.ids["member"]) == []
    kinds = await _kinds(store)
    assert kinds[-2:] == ["account.unbound", "invite.revoked"]
    async with store.write() as s:
        shown = await identity.bindings_of(s, MEMBER_PHONE)
    assert [(a.external_id, a.end_reason) for a in shown.accounts] == [("member-phone", "unbound")]
    assert [i.revoke_reason for i in shown.invites] == ["unbound"]
    assert (await _kinds(store))[-1] == "account.listed"


async def test_two_redemptions_at_once_bind_one_account(store, people):
    token = await _invite(store, SECRETARY_PHONE)

    async def redeem(uid: str):
        try:
            return await _redeem(store, token, uid)
        except DomainError as exc:
            return exc.key

    results = await asyncio.gather(*(redeem(f"racer-{i}") for i in range(4)))
    winners = [r for r in results if not isinstance(r, str)]
    assert len(winners) == 1
    assert sorted(r for r in results if isinstance(r, str)) == ["bind.invite_used"] * 3
    assert await _active(store, people.ids["secretary"]) == [winners[0].account.external_id]


async def test_two_contact_binds_at_once_leave_one_active_account(store, people):
    async def share(uid: str):
        try:
            return await _contact(store, SECRETARY_PHONE, uid)
        except DomainError as exc:
            return exc.key

    results = await asyncio.gather(*(share(f"phone-{i}") for i in range(4)))
    active = await _active(store, people.ids["secretary"])
    assert len(active) == 1
    # every bind that did not lose a race moved the binding on; the last one holds it
    assert all(isinstance(r, identity.Binding) or r == "bind.busy" for r in results)
    async with store.read() as s:
        ended = (
            await s.exec(
                select(func.count())
                .select_from(Account)
                .where(Account.member_id == people.ids["secretary"], Account.active == False)  # noqa: E712
            )
        ).one()
        member = await s.get(Member, people.ids["secretary"])
    assert ended == sum(isinstance(r, identity.Binding) for r in results) - 1
    assert member.active


async def test_an_ended_identity_may_bind_another_person_and_the_audit_says_so(store, people):
    await _contact(store, MEMBER_PHONE, "shared-phone")
    async with store.write() as s:
        await identity.unbind(s, MEMBER_PHONE)
    binding = await _contact(store, SECRETARY_PHONE, "shared-phone")
    assert binding.member.id == people.ids["secretary"] and not binding.already
    assert await _active(store, people.ids["member"]) == []
    async with store.read() as s:
        bound = (
            await s.exec(
                select(AuditEvent)
                .where(AuditEvent.kind == "account.bound")
                .order_by(col(AuditEvent.id).desc())
            )
        ).first()
    assert bound.payload["previously_member"] == people.ids["member"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800000001", "13800000001"),
        ("+86 138-0000-0001", "13800000001"),
        ("１３８００００００01", "13800000001"),  # full-width digits of a Chinese input method
        ("＋８６１３８００００００01", "13800000001"),
        ("1३800000001", None),  # digits of another script are not a phone number
        ("12345", None),
    ],
)
def test_normalize_phone_gives_ascii_digits_or_none(raw, expected):
    assert identity.normalize_phone(raw) == expected
