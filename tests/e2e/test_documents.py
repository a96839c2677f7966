"""End to end: files the real bot sends over Telegram, downloaded from the proxy and opened.

The emulator cannot take uploads; the proxy parses the bot's multipart sendDocument/sendPhoto
calls and keeps the files (``proxy.uploads``), so these tests open exactly what was sent.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlmodel import select

from campaign import supervise
from campaign.demo_data import CITY, VILLAGE_BRANCH
from campaign.setup import open_campaign
from models import GroupLink, JobRun, Member, Org, OwnerKind, Pledge, PledgeItem, PledgeStatus
from models.progress import Progress, ProgressReport
from reminders.calendar import due_jobs
from tests.e2e.conftest import BotProcess
from tests.e2e.test_pledge_loop import bind, with_store

pytestmark = pytest.mark.e2e

SECRETARY = "13800000002"  # 李秀英, 东江村党支部书记
OFFICE = "13800000006"  # 杨志军, 武都区创先办
GROUP = -1_001_234_567
ZONE = ZoneInfo("Asia/Shanghai")
QUIET = "新台村党支部"
ITEMS = ("村务、财务每月5日前公开", "-硬化村组道路2公里", "=为12户留守老人送医送药")


def published_branch_pledge(db_url: str) -> None:
    """Open this year's campaign with the quarter due today, the branch's pledge published."""

    async def work(store) -> None:
        async with store.write() as s:
            local = datetime.now(ZONE)
            camp = await open_campaign(s, CITY, local.year, starts_on=date(local.year, 1, 1))
            camp.quarter_starts = [local.month]
            camp.send_hour = 0
            s.add(camp)
            await s.flush()
            for due in due_jobs(camp, local):  # hold everything but the bulletin
                if due.job != "quarter":
                    s.add(JobRun(job=due.job, campaign_id=camp.id, period=due.period))
            village = (await s.exec(select(Org).where(Org.full_name == VILLAGE_BRANCH))).one()
            secretary = (await s.exec(select(Member).where(Member.phone == SECRETARY))).one()
            pledge = Pledge(
                campaign_id=camp.id,
                owner_kind=OwnerKind.ORG,
                org_id=village.id,
                drafted_by=secretary.id,
                status=PledgeStatus.PUBLISHED,
                published_at=datetime.now(UTC),
            )
            s.add(pledge)
            await s.flush()
            for n, content in enumerate(ITEMS):
                item = PledgeItem(
                    pledge_id=pledge.id,
                    seq=n,
                    content=content,
                    goal="按时完成",
                    measures="支部负责",
                    deadline=date(local.year, 12, 31),
                )
                s.add(item)
                await s.flush()
                if n == 0:
                    s.add(
                        ProgressReport(
                            item_id=item.id,
                            pledge_id=pledge.id,
                            month=f"{local.year:04d}-{local.month:02d}",
                            status=Progress.ON_TRACK,
                            reported_by=secretary.id,
                        )
                    )
            # a branch that never drafted anything
            quiet = Org(
                name=QUIET,
                full_name=f"{village.full_name.rsplit('/', 1)[0]}/{QUIET}",
                type=village.type,
                parent_id=village.parent_id,
                depth=village.depth,
            )
            s.add(quiet)
            await s.flush()
            quiet.path = f"{village.path.rsplit('/', 2)[0]}/{quiet.id}/"
            s.add(quiet)
            s.add(
                GroupLink(
                    platform="telegram",
                    chat_id=str(GROUP),
                    org_id=village.id,
                    title="东江村党员群",
                    linked_by=secretary.id,
                )
            )

    with_store(db_url, work)


@pytest.fixture(scope="module")
def docs_bot(proxy, tmp_path_factory, runtime):
    from tests.e2e.conftest import seeded_database

    workdir = tmp_path_factory.mktemp("docs-bot")
    _, url = seeded_database(workdir)
    published_branch_pledge(url)
    from tests.e2e.conftest import new_token

    process = BotProcess(proxy, workdir, url, token=new_token(), runtime=runtime)
    try:
        process.start()
        yield process
    finally:
        process.stop()


@pytest.mark.both_runtimes
def test_the_quarterly_bulletin_reaches_the_linked_group_with_a_chart(docs_bot, proxy):
    uploads = proxy.wait_for_upload(GROUP, token=docs_bot.token, count=2, timeout=60)
    photo, document = uploads[0], uploads[1]
    assert photo.method == "sendPhoto" and photo.data.startswith(b"\x89PNG")
    assert "东江村党支部" in (photo.caption or "")
    assert document.method == "sendDocument" and document.filename.endswith(".xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(document.data))
    assert wb.sheetnames == ["东江村党支部"]
    texts = [c.params.get("text", "") for c in proxy.calls("sendMessage", token=docs_bot.token)]
    assert any("季度通报" in t for t in texts)


@pytest.mark.both_runtimes
def test_a_secretary_exports_the_branch_ledger(docs_bot, proxy, user_of):
    secretary = user_of(docs_bot)
    bind(secretary, SECRETARY)
    secretary.send_command("/export")
    chooser = secretary.wait_for_reply(lambda m: "请选择要导出的表格" in m.text)
    before = len(proxy.uploads(secretary.chat_id, token=docs_bot.token))
    secretary.press("附件3 组织台账", chooser)
    [sent] = proxy.wait_for_upload(secretary.chat_id, token=docs_bot.token, count=before + 1)[
        before:
    ]
    assert sent.method == "sendDocument" and sent.filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(sent.data)).active
    assert ws["A1"].value == "基层党组织公开承诺事项进度统计台账"
    rows = [r for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]

    async def ledger(store):
        async with store.read() as s:
            village = (await s.exec(select(Org).where(Org.full_name == VILLAGE_BRANCH))).one()
            camp_id = (await s.exec(select(Pledge.campaign_id))).first()
            return await supervise.ledger(s, camp_id, village.id, datetime.now(ZONE).date())

    expected = with_store(docs_bot.db_url, ledger)
    assert [r[2] for r in rows] == [e.content for e in expected] == list(ITEMS)
    assert ws.cell(5, 3).quotePrefix and ws.cell(6, 3).quotePrefix  # "-…" and "=…" stay text


def test_an_office_spot_check_names_a_branch_that_never_drafted(docs_bot, proxy, user_of):
    office = user_of(docs_bot)
    bind(office, OFFICE)
    office.send_command("/spotcheck")
    summary = office.wait_for_reply(lambda m: "【程序记录抽查】" in m.text, 30)
    assert "承诺未起草" in summary.text
    assert f"{QUIET}：承诺未起草" in summary.text
    [table] = proxy.wait_for_upload(office.chat_id, token=docs_bot.token, count=1, timeout=30)
    ws = openpyxl.load_workbook(io.BytesIO(table.data)).active
    names = [r[1] for r in ws.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    assert any(n.endswith(QUIET) for n in names)
