"""Trust through the chat: invites, moved bindings and display-group links, on both stores.

The core, the outbox and a recording messenger (``tests.chat.ChatBot``); group messages are
sent from the group's chat id. Refusals are checked for changing nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from campaign import identity
from handlers.events import ButtonPressed, ChatType, CommandReceived, ContactShared, Sender
from models import Account, AuditEvent, GroupLink, Outbox
from models.org import Invite, Member, Org, OrgType, Role, RoleGrant
from templates import catalog
from tests.chat import MEMBER, PHONES, SECRETARY, ChatBot
from tests.conftest import seed_people

GROUP = "-1001"
OTHER_SECRETARY = "6"  # secretary of 西村党支部, a second branch of the same township
OFFICE = "5"  # 钱创先, the county's 创先办
STRANGER = "66"


def msg(key: str, locale: str = "zh_CN", **context) -> str:
    return catalog().render(key, locale, **context)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def bot(store):
    people = await seed_people(store)
    async with store.write() as s:
        township = await s.get(Org, people.orgs["township"])
        west = Org(
            name="西村党支部",
            full_name="陇南市/武都区/城关镇/西村党支部",
            type=OrgType.VILLAGE,
            parent_id=township.id,
            depth=3,
        )
        s.add(west)
        await s.flush()
        west.path = f"{township.path}{west.id}/"
        sec = Member(name="孙支书", phone="13800000006", org_id=west.id)
        s.add(sec)
        await s.flush()
        for role in (Role.MEMBER, Role.SECRETARY):
            s.add(RoleGrant(member_id=sec.id, role=role, org_id=west.id))
        people.orgs["west"] = west.id
        people.ids["west_secretary"] = sec.id
    clock = Clock()
    b = ChatBot(store, people, clock)
    b.clock = clock
    return b


async def share(bot: ChatBot, uid: str, phone: str):
    return await bot.send(
        ContactShared(
            sender=Sender(platform="test", user_id=uid, chat_id=uid),
            phone=phone,
            contact_user_id=uid,
            update_id=bot._uid(),
        )
    )


async def in_group(bot: ChatBot, uid: str, command: str, *, admin: bool | None = None):
    extra = {} if admin is None else {"is_chat_admin": admin}
    sender = Sender(
        platform="test",
        user_id=uid,
        chat_id=GROUP,
        chat_type=ChatType.GROUP,
        chat_title="党员群",
        **extra,
    )
    return await bot.send(CommandReceived(sender=sender, command=command, update_id=bot._uid()))


async def invite(bot: ChatBot, phone: str, **kw) -> str:
    async with bot.store.write() as s:
        return (await identity.create_invite(s, phone, now=bot.clock.now, **kw)).token


async def link_of(bot: ChatBot) -> int | None:
    rows = await bot.rows(GroupLink, GroupLink.chat_id == GROUP)
    return rows[0].org_id if rows else None


async def audit_kinds(bot: ChatBot) -> list[str]:
    async with bot.store.read() as s:
        return list((await s.exec(select(AuditEvent.kind).order_by(col(AuditEvent.id)))).all())


# -- accounts -------------------------------------------------------------------------------------


async def test_stranger_with_a_bound_secretarys_invite_is_refused(bot):
    """Found: a stranger bound with the secretary's unused invite and acted in her name."""
    async with bot.store.write() as s:
        token = (await identity.create_invite(s, PHONES[SECRETARY])).token
    await bot.bind(SECRETARY)
    before = (await bot.count(Account), await audit_kinds(bot))
    await bot.cmd(STRANGER, "start", f"inv_{token}")
    assert (await bot.count(Account), await audit_kinds(bot)) == before
    assert bot.last(STRANGER) == msg("bind.invite_revoked")
    await bot.cmd(STRANGER, "review")
    assert bot.last(STRANGER) == msg("bind.needed")


async def test_expired_invite_is_refused_plainly(bot):
    token = await invite(bot, PHONES[MEMBER])
    bot.clock.now += timedelta(days=8)
    await bot.cmd(STRANGER, "start", f"inv_{token}")
    assert bot.last(STRANGER) == msg("bind.invite_expired")
    assert await bot.count(Account) == 0


async def test_sharing_the_contact_on_a_new_account_moves_the_binding(bot):
    await bot.bind(MEMBER)
    await bot.cmd(MEMBER, "lang", "en")
    await share(bot, "11", PHONES[MEMBER])
    assert msg("account.ended_moved", "en") in bot.messenger.texts(MEMBER)
    assert bot.messenger.texts("11")[0].startswith(msg("bind.done", name="张建国", org="")[:8])
    await bot.cmd(MEMBER, "mine")
    assert bot.last(MEMBER) == msg("bind.needed", "en")
    active = await bot.rows(Account, Account.active == True)  # noqa: E712
    assert [a.external_id for a in active] == ["11"]


async def test_invite_for_someone_already_bound_elsewhere_is_refused(bot):
    await bot.bind(MEMBER)
    async with bot.store.write() as s:
        s.add(Invite(token="by-hand", member_id=bot.people.ids["member"]))
    before = (await bot.count(Account), await audit_kinds(bot))
    await bot.cmd(STRANGER, "start", "inv_by-hand")
    assert bot.last(STRANGER) == msg("bind.invite_already_bound")
    assert (await bot.count(Account), await audit_kinds(bot)) == before
    async with bot.store.read() as s:
        assert (await s.get(Invite, "by-hand")).used_at is None  # the claim was rolled back


# -- groups ---------------------------------------------------------------------------------------


async def test_another_branch_cannot_take_over_a_linked_group(bot):
    """Found: any secretary could silently take over another organization's display group."""
    await bot.bind(SECRETARY)
    await share(bot, OTHER_SECRETARY, "13800000006")
    await in_group(bot, SECRETARY, "bindgroup")
    assert await link_of(bot) == bot.people.orgs["village"]
    told = len(bot.messenger.texts(SECRETARY))
    await in_group(bot, OTHER_SECRETARY, "bindgroup")
    assert await link_of(bot) == bot.people.orgs["village"]
    assert bot.last(GROUP) == msg("grouplink.linked_elsewhere", org="东江村党支部")
    assert len(bot.messenger.texts(SECRETARY)) == told
    # nor by unlinking it first
    await in_group(bot, OTHER_SECRETARY, "unbindgroup")
    assert bot.last(GROUP) == msg("grouplink.unlink_not_allowed", org="东江村党支部")
    assert await link_of(bot) == bot.people.orgs["village"]


async def test_office_above_both_moves_the_group_and_the_old_secretary_is_told(bot):
    await bot.bind(SECRETARY)
    await bot.cmd(SECRETARY, "lang", "en")
    await share(bot, OFFICE, "13800000005")
    await in_group(bot, SECRETARY, "bindgroup")
    await in_group(bot, OFFICE, "bindgroup")
    assert bot.last(GROUP) == msg("group.linked", org="武都区")
    assert await link_of(bot) == bot.people.orgs["county"]
    assert bot.last(SECRETARY) == msg(
        "grouplink.moved_away", "en", group="党员群", org="东江村党支部", to="武都区", by="钱创先"
    )
    assert (await audit_kinds(bot))[-1] == "group.relinked"


async def test_only_the_groups_administrators_may_link_it(bot):
    await bot.bind(SECRETARY)
    await in_group(bot, SECRETARY, "bindgroup", admin=False)
    assert bot.last(GROUP) == msg("grouplink.not_admin")
    assert await link_of(bot) is None
    await in_group(bot, SECRETARY, "bindgroup", admin=True)
    assert await link_of(bot) == bot.people.orgs["village"]
    await in_group(bot, SECRETARY, "unbindgroup", admin=False)
    assert bot.last(GROUP) == msg("grouplink.not_admin")
    assert await link_of(bot) == bot.people.orgs["village"]


async def test_unbindgroup_by_the_secretary_or_an_office_above(bot):
    await bot.bind(SECRETARY)
    await bot.bind(MEMBER)
    await share(bot, OFFICE, "13800000005")
    await in_group(bot, MEMBER, "unbindgroup")
    assert bot.last(GROUP) == msg("grouplink.not_linked")
    await in_group(bot, SECRETARY, "bindgroup")
    await in_group(bot, MEMBER, "unbindgroup")
    assert bot.last(GROUP) == msg("grouplink.unlink_not_allowed", org="东江村党支部")
    await in_group(bot, SECRETARY, "unbindgroup")
    assert bot.last(GROUP) == msg("grouplink.unlinked", org="东江村党支部")
    assert await link_of(bot) is None
    await in_group(bot, SECRETARY, "bindgroup")
    await in_group(bot, OFFICE, "unbindgroup")
    assert await link_of(bot) is None
    assert bot.last(SECRETARY) == msg(
        "grouplink.unlinked_notice", group="党员群", org="东江村党支部", by="钱创先"
    )
    assert (await audit_kinds(bot)).count("group.unlinked") == 2


async def test_the_chooser_answers_only_the_one_who_asked(bot):
    # a person who may link two organizations gets a chooser; another secretary presses it
    async with bot.store.write() as s:
        s.add(
            RoleGrant(
                member_id=bot.people.ids["secretary"],
                role=Role.OFFICE,
                org_id=bot.people.orgs["township"],
            )
        )
    await bot.bind(SECRETARY)
    await share(bot, OTHER_SECRETARY, "13800000006")
    await in_group(bot, SECRETARY, "bindgroup")
    data = bot.button(GROUP, "城关镇")
    sender = Sender(
        platform="test",
        user_id=OTHER_SECRETARY,
        chat_id=GROUP,
        chat_type=ChatType.GROUP,
        chat_title="党员群",
    )
    await bot.send(ButtonPressed(sender=sender, data=data, update_id=bot._uid()))
    assert bot.toasts[-1] == msg("grouplink.not_your_chooser")
    assert await link_of(bot) is None
    await bot.send(
        ButtonPressed(
            sender=Sender(**{**sender.__dict__, "user_id": SECRETARY}),
            data=data,
            update_id=bot._uid(),
        )
    )
    assert await link_of(bot) == bot.people.orgs["township"]
    assert await bot.count(Outbox) > 0
