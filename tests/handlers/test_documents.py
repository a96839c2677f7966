"""/export, /chart, /spotcheck, /selfcheck in chat: who gets which file, and what is in it."""

from __future__ import annotations

import io

import docx
import openpyxl
import pytest

from campaign import supervise
from models import Account, Org, StoredFile
from reports.service import Reports
from tests.chat import MEMBER, SECRETARY, ChatBot
from tests.conftest import seed_people
from tests.reports.conftest import NOW, TODAY, build_records

OFFICE = "5"


@pytest.fixture
async def people(store):
    return await seed_people(store)


@pytest.fixture
async def bot(store, people):
    rec = await build_records(store, people, member_items=3, org_items=2)
    async with store.write() as s:
        for key, chat in (("member", MEMBER), ("secretary", SECRETARY), ("office", OFFICE)):
            s.add(
                Account(platform="test", external_id=chat, chat_id=chat, member_id=people.ids[key])
            )
    chat = ChatBot(store, people, lambda: NOW, documents=Reports())
    chat.rec = rec
    return chat


def _files(bot, chat):
    return [m.attachment for c, m in bot.messenger.sent if c == chat and m.attachment]


async def test_a_secretary_exports_the_branch_ledger_as_a_document(bot, people, store):
    await bot.cmd(SECRETARY, "export")
    assert "东江村党支部" in bot.last(SECRETARY)
    await bot.press(SECRETARY, "附件3")
    [sent] = _files(bot, SECRETARY)
    assert sent["kind"] == "document" and sent["filename"].endswith(".xlsx")
    assert "进度统计台账" in bot.last(SECRETARY)
    ws = openpyxl.load_workbook(io.BytesIO(sent["data"])).active
    rows = [r for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    async with store.read() as s:
        ledger = await supervise.ledger(s, bot.rec.campaign.id, people.orgs["village"], TODAY)
    org_rows = [r for r in ledger if r.kind == "org"]
    assert [r[2] for r in rows] == [r.content for r in org_rows]
    assert await bot.count(StoredFile) == 1


async def test_a_member_gets_only_their_own_application_form(bot, people):
    await bot.cmd(MEMBER, "export")
    [sent] = _files(bot, MEMBER)
    d = docx.Document(io.BytesIO(sent["data"]))
    text = "\n".join(c.text for t in d.tables for r in t.rows for c in r.cells)
    assert "张建国" in text and "党员1" not in text
    # a forged button for the branch's ledger is refused and sends nothing
    from handlers.documents import ExportCb

    data = bot.core.codec.encode(ExportCb(3, people.orgs["village"]))
    await bot.press_data(MEMBER, data)
    assert len(_files(bot, MEMBER)) == 1
    assert bot.toasts


async def test_an_office_exports_its_subtree_report_and_spot_checks(bot, people):
    await bot.cmd(OFFICE, "export")
    await bot.press(OFFICE, "附件5")
    [report] = _files(bot, OFFICE)
    wb = openpyxl.load_workbook(io.BytesIO(report["data"]))
    assert wb.sheetnames[0] == "武都区"
    await bot.cmd(OFFICE, "spotcheck")
    texts = bot.messenger.texts(OFFICE)
    assert any("程序记录抽查" in t for t in texts)
    table = _files(bot, OFFICE)[-1]
    ws = openpyxl.load_workbook(io.BytesIO(table["data"])).active
    names = [r[1] for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    assert "城关镇/东江村党支部" in names


async def test_chart_is_for_supervisors_and_sends_photos(bot):
    await bot.cmd(SECRETARY, "chart")
    assert "/chart" in bot.last(SECRETARY) and not _files(bot, SECRETARY)
    await bot.cmd(OFFICE, "chart")
    photos = _files(bot, OFFICE)
    assert len(photos) == 3 and all(p["kind"] == "photo" for p in photos)
    assert all(p["data"].startswith(b"\x89PNG") for p in photos)


async def test_selfcheck_names_what_the_branch_lacks(bot):
    await bot.cmd(SECRETARY, "selfcheck")
    text = bot.last(SECRETARY)
    assert "自查" in text and "月报缺报" in text and "/summary" in text
    await bot.cmd(MEMBER, "selfcheck")
    assert "/selfcheck" in bot.last(MEMBER)


async def test_without_a_documents_maker_the_commands_answer_plainly(store, people):
    async with store.write() as s:
        s.add(
            Account(
                platform="test",
                external_id=SECRETARY,
                chat_id=SECRETARY,
                member_id=people.ids["secretary"],
            )
        )
    bot = ChatBot(store, people, lambda: NOW)
    await build_records(store, people, member_items=1, org_items=0)
    await bot.cmd(SECRETARY, "selfcheck")
    assert "没有配置文件导出" in bot.last(SECRETARY)


async def test_spotcheck_names_a_branch_that_never_drafted(bot, people, store):
    async with store.write() as s:
        s.add(
            Org(
                name="新村党支部",
                full_name="陇南市/武都区/城关镇/新村党支部",
                type="village",
                parent_id=people.orgs["township"],
                path="",
                depth=3,
            )
        )
    async with store.write() as s:
        from sqlmodel import select

        org = (await s.exec(select(Org).where(Org.name == "新村党支部"))).one()
        township = await s.get(Org, people.orgs["township"])
        org.path = f"{township.path}{org.id}/"
        s.add(org)
    await bot.cmd(OFFICE, "spotcheck")
    summary = [t for t in bot.messenger.texts(OFFICE) if "【程序记录抽查】" in t][-1]
    assert "新村党支部：承诺未起草" in summary


async def test_letter_and_display_post_have_a_printable_version(bot, people, store):
    from campaign import publish
    from models import GroupLink, Pledge, PledgeStatus

    async with store.write() as s:
        s.add(
            GroupLink(
                platform="test",
                chat_id="-1",
                org_id=people.orgs["village"],
                linked_by=people.ids["secretary"],
            )
        )
        pledge = await s.get(Pledge, bot.rec.pledges[1].id)  # 张建国's
        pledge.status = PledgeStatus.APPROVED
        pledge.published_at = None
        s.add(pledge)
        await s.flush()
        await publish.publish(s, pledge, actor_id=people.ids["secretary"], codec=bot.core.codec)
    while await bot.worker.run_once():
        pass
    post = [m for c, m in bot.messenger.sent if c == "-1"][-1]
    assert "公开承诺公示" in post.text
    # each item shows its state: one done item, the others in progress or overdue
    states = {"✅ 已销号", "进行中", "⚠️ 超期"}
    assert sum(post.text.count(s) for s in states) == 3
    letter = [m for c, m in bot.messenger.sent if c == MEMBER][-1]
    assert "承诺书" in letter.text and "打印版" in letter.buttons[0][0].text
    await bot.press(MEMBER, "打印版")
    sent = _files(bot, MEMBER)[-1]
    d = docx.Document(io.BytesIO(sent["data"]))
    text = "\n".join(p.text for p in d.paragraphs)
    assert text.startswith("承诺书") and "张建国" in text
    # in the group anyone may press it: the display table of that one pledge
    data = post.buttons[0][0].data
    from handlers.events import ButtonPressed, ChatType, Sender

    group_sender = Sender(platform="test", user_id="999", chat_id="-1", chat_type=ChatType.GROUP)
    await bot.send(ButtonPressed(sender=group_sender, data=data, update_id="g1"))
    table = _files(bot, "-1")[-1]
    d = docx.Document(io.BytesIO(table["data"]))
    assert len(d.tables[0].rows) == 1 + 3 and "张建国" in d.tables[0].rows[1].cells[1].text
