"""/notice in chat: an office's notice to its subtree reaches every member once, on the right
channel, and the sender's message ends with a summary whose figures add up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from campaign import notices
from handlers.events import Unsupported, UnsupportedReceived
from models import Account, GroupLink, Member, Notice, Org, OrgType, Outbox, Role, RoleGrant
from tests.chat import MEMBER, PEER, REVIEWER, SECRETARY, ChatBot, sender
from tests.conftest import RecordingMessenger, seed_people, sms_for

OFFICE = "5"
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


async def grow(store, people) -> dict[str, int]:
    """Add a second branch under the township (one bound, one on SMS), and a county outside."""
    ids: dict[str, int] = {}
    async with store.write() as s:

        async def org(key, name, parent_key, typ):
            parent = await s.get(Org, people.orgs[parent_key])
            o = Org(
                name=name,
                full_name=f"{parent.full_name}/{name}",
                type=typ,
                parent_id=parent.id,
                depth=parent.depth + 1,
            )
            s.add(o)
            await s.flush()
            o.path = f"{parent.path}{o.id}/"
            people.orgs[key] = o.id

        await org("village2", "西河村党支部", "township", OrgType.VILLAGE)
        await org("county2", "成县", "city", OrgType.LEVEL)
        for key, name, phone, org_key in (
            ("v2a", "孙党员", "13800000011", "village2"),
            ("v2b", "周党员", "13800000012", "village2"),
            ("far", "吴党员", "13800000013", "county2"),
        ):
            m = Member(name=name, phone=phone, org_id=people.orgs[org_key])
            s.add(m)
            await s.flush()
            ids[key] = m.id
            s.add(RoleGrant(member_id=m.id, role=Role.MEMBER, org_id=people.orgs[org_key]))
        for key, chat in (
            ("member", MEMBER),
            ("secretary", SECRETARY),
            ("reviewer", REVIEWER),
            ("office", OFFICE),
        ):
            s.add(
                Account(platform="test", external_id=chat, chat_id=chat, member_id=people.ids[key])
            )
        s.add(Account(platform="test", external_id="21", chat_id="21", member_id=ids["v2a"]))
        s.add(Account(platform="test", external_id="far", chat_id="far", member_id=ids["far"]))
        s.add(
            GroupLink(
                platform="test",
                chat_id="g1",
                org_id=people.orgs["village"],
                linked_by=people.ids["secretary"],
            )
        )
        s.add(
            GroupLink(
                platform="test",
                chat_id="g-far",
                org_id=people.orgs["county2"],
                linked_by=people.ids["office"],
            )
        )
    return ids


@pytest.fixture
async def people(store):
    return await seed_people(store)


@pytest.fixture
async def bot(store, people):
    people.more = await grow(store, people)
    await sms_for(store, [people.more["v2b"]])  # v2b has no Telegram: reached by SMS
    chat = ChatBot(store, people, lambda: NOW, editing=True)
    chat.sms = RecordingMessenger(platform="sms")
    chat.worker.messengers["sms"] = chat.sms
    return chat


async def deliver(bot) -> None:
    """Run the worker's loop and the progress loop until nothing is left to do."""
    for _ in range(50):
        claimed = await bot.worker.run_once()
        async with bot.store.write() as s:
            ids = await notices.advance(s, now=NOW)
        await bot.worker.deliver_ids(ids)
        if not claimed and not ids:
            return
    raise AssertionError("delivery did not settle")


async def test_an_office_notice_to_a_township_reaches_every_member_once_on_the_right_channel(
    bot, people
):
    await bot.cmd(OFFICE, "notice")
    assert "公告内容" in bot.last(OFFICE)
    await bot.say(OFFICE, "请各支部于本周五前完成承诺事项自查。")
    assert "全体党员" in bot.labels(OFFICE)
    await bot.press(OFFICE, "某个下级组织")
    await bot.press(OFFICE, "城关镇")
    preview = bot.last(OFFICE)
    # 6 members in the township: 4 bound here, 1 on SMS, 1 (王党员) on no channel
    assert "城关镇全体党员" in preview
    assert "共 6 人" in preview and "短信 1 条" in preview and "1 人未绑定" in preview
    data, message_id = bot.find(OFFICE, "确认发送")
    await bot.press_data(OFFICE, data, message_id)
    assert "已排队" in bot.toasts[-1]
    rows = await bot.count(Outbox)
    await bot.press_data(OFFICE, data, message_id)  # a double tap
    assert "不会重复" in bot.toasts[-1]
    assert await bot.count(Outbox) == rows
    await deliver(bot)

    received = sorted(c for c, m in bot.messenger.sent if m.text.startswith("【公告】"))
    assert received == sorted([MEMBER, SECRETARY, REVIEWER, "21"])  # once each
    assert [c for c, _ in bot.sms.sent] == ["13800000012"]
    assert bot.sms.sent[0][1].text.startswith("武都区公告：请各支部")  # the SMS wording
    [notice] = await bot.rows(Notice)
    figs = await _figures(bot, notice)
    assert figs["sent"] == 5 and figs["pending"] == 0 and figs["dead"] == 0
    assert figs["sent"] + figs["pending"] + figs["dead"] == figs["messages"]
    assert figs["telegram"] + figs["sms"] + figs["group"] + figs["other"] == figs["messages"]
    # the preview, edited in place into the summary
    summary = bot.messenger.sent[int(message_id) - 1][1].text
    assert "发送完毕" in summary and "共 5 条：送达 5 · 无法送达 0" in summary
    assert "短信 1 条（已发 1）" in summary and "未绑定任何渠道 1 人" in summary
    # /notices lists it with the same figures
    await bot.cmd(OFFICE, "notices")
    assert "送达 5" in bot.last(OFFICE) and "短信 1" in bot.last(OFFICE)


async def test_an_office_notice_to_the_county_skips_other_counties(bot, people):
    await bot.cmd(OFFICE, "notice")
    await bot.say(OFFICE, "全区通知。")
    await bot.press(OFFICE, "全体党员")
    assert "共 7 人" in bot.last(OFFICE)  # the township's 6 and the office itself
    await bot.press(OFFICE, "确认发送")
    await deliver(bot)
    received = sorted(c for c, m in bot.messenger.sent if m.text.startswith("【公告】"))
    assert received == sorted([MEMBER, SECRETARY, REVIEWER, OFFICE, "21"])
    assert "far" not in received and "g-far" not in received


async def _figures(bot, notice):
    async with bot.store.read() as s:
        return await notices.figures(s, await s.get(Notice, notice.id))


async def test_a_secretary_sends_to_the_branch_only_and_groups_get_it(bot, people):
    await bot.cmd(SECRETARY, "notice")
    await bot.say(SECRETARY, "今晚七点在村部开支部党员大会。")
    labels = bot.labels(SECRETARY)
    assert "全体党员" in labels and "关联的群" in labels
    await bot.press(SECRETARY, "关联的群")
    assert "关联群 1 个" in bot.last(SECRETARY)
    await bot.press(SECRETARY, "确认发送")
    await deliver(bot)
    assert [c for c, m in bot.messenger.sent if m.text.startswith("【公告】")] == ["g1"]


async def test_a_reviewer_picks_one_branch_below(bot, people):
    await bot.cmd(REVIEWER, "notice")
    await bot.photo(REVIEWER, "photo-file-1")
    assert "图片已收到" in bot.last(REVIEWER)
    await bot.say(REVIEWER, "西河村请于月底前补报进度。")
    await bot.press(REVIEWER, "某个下级组织")
    await bot.press(REVIEWER, "西河村党支部")
    assert "共 2 人" in bot.last(REVIEWER) and "附图片" in bot.last(REVIEWER)
    await bot.press(REVIEWER, "确认发送")
    await deliver(bot)
    photos = [(c, m) for c, m in bot.messenger.sent if m.attachment and c == "21"]
    assert len(photos) == 1 and photos[0][1].attachment["file_id"] == "photo-file-1"
    assert [c for c, _ in bot.sms.sent] == ["13800000012"]
    assert MEMBER not in [c for c, m in bot.messenger.sent if m.text.startswith("【公告】")]


async def test_a_file_sent_in_chat_goes_with_the_notice(bot, people):
    """Found: the notice asks for "text, optionally a photo or a document", and a document sent
    in chat was answered as content the bot cannot read."""
    await bot.cmd(REVIEWER, "notice")
    await bot.send(
        UnsupportedReceived(
            sender=sender(REVIEWER),
            kind=Unsupported.DOCUMENT,
            file_id="doc-file-1",
            file_name="关于开展回头看的通知.pdf",
            update_id=bot._uid(),
        )
    )
    assert "文件《关于开展回头看的通知.pdf》已收到" in bot.last(REVIEWER)
    await bot.say(REVIEWER, "请西河村按附件要求开展回头看。")
    await bot.press(REVIEWER, "某个下级组织")
    await bot.press(REVIEWER, "西河村党支部")
    assert "附文件《关于开展回头看的通知.pdf》" in bot.last(REVIEWER)
    await bot.press(REVIEWER, "确认发送")
    await deliver(bot)
    files = [(c, m) for c, m in bot.messenger.sent if m.attachment and c == "21"]
    assert len(files) == 1
    attachment = files[0][1].attachment
    assert attachment["kind"] == "document" and attachment["file_id"] == "doc-file-1"
    assert attachment["filename"] == "关于开展回头看的通知.pdf"
    # the SMS says the text only
    assert [c for c, _ in bot.sms.sent] == ["13800000012"]
    # outside the notice a file is still content the bot cannot read
    await bot.send(
        UnsupportedReceived(
            sender=sender(REVIEWER),
            kind=Unsupported.DOCUMENT,
            file_id="doc-file-2",
            update_id=bot._uid(),
        )
    )
    assert "文件" in bot.last(REVIEWER) and "【公告】" not in bot.last(REVIEWER)


async def test_bad_input_and_people_who_may_not_send(bot, people):
    await bot.cmd(MEMBER, "notice")
    assert "限创先办" in bot.last(MEMBER)
    await bot.cmd(PEER, "notice")  # not bound at all
    await bot.cmd(OFFICE, "notice")
    await bot.say(OFFICE, "   ")
    assert "不能为空" in bot.last(OFFICE)
    await bot.say(OFFICE, "长" * 5000)
    assert "太长了" in bot.last(OFFICE)
    assert await bot.count(Notice) == 0
    await bot.say(OFFICE, "短通知")
    async with bot.store.write() as s:  # no group linked in the county any more
        await s.exec(delete(GroupLink).where(GroupLink.chat_id == "g1"))
    await bot.press(OFFICE, "关联的群")
    assert "没有可以送达的渠道" in bot.toasts[-1]
    await bot.press(OFFICE, "全体党员")
    await bot.press(OFFICE, "取消")
    assert "已取消" in bot.last(OFFICE)
    assert await bot.count(Notice) == 0
    await bot.cmd(OFFICE, "notices")
    assert "还没有发过" in bot.last(OFFICE)


async def test_the_menu_offers_notices_to_senders_only(bot, people):
    await bot.cmd(OFFICE, "help")
    await bot.cmd(MEMBER, "help")
    office = [m for c, m in bot.messenger.sent if c == OFFICE][-1]
    member = [m for c, m in bot.messenger.sent if c == MEMBER][-1]
    office_labels = [label for row in office.keyboard_rows for label in row]
    assert {"发公告", "我发的公告"} <= set(office_labels) and "/notice —" in office.text
    assert "发公告" not in [label for row in member.keyboard_rows for label in row]
    assert "/notice" not in member.text
    # the menu button's label is the command, as people press it
    await bot.say(OFFICE, "发公告")
    assert "公告内容" in bot.last(OFFICE)
