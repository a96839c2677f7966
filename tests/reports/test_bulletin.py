"""The quarterly bulletin reaches offices and linked groups with its chart and attachment 5."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import openpyxl
from sqlmodel import select

from bot.outbox import OutboxWorker
from handlers.app import build_router
from models import Account, GroupLink, Outbox
from models.callbacks import CallbackCodec
from reminders.jobs import Jobs
from reports.service import Reports
from tests.conftest import RecordingMessenger
from tests.reports.conftest import build_records

CST = ZoneInfo("Asia/Shanghai")


async def test_bulletin_carries_a_chart_and_the_monthly_report(store, people):
    await build_records(store, people, member_items=12, org_items=3)
    async with store.write() as s:
        s.add(
            Account(
                platform="t", external_id="o", chat_id="office", member_id=people.ids["office"]
            )
        )
        s.add(
            GroupLink(
                platform="t",
                chat_id="-100",
                org_id=people.orgs["village"],
                linked_by=people.ids["secretary"],
            )
        )
    jobs = Jobs(store, CallbackCodec(b"k", build_router().callback_types()), documents=Reports())
    queued = await jobs.tick(datetime(2027, 7, 1, 10, tzinfo=CST).astimezone(UTC))
    assert queued["quarter"] == 6  # office: text, chart, file; the group: the same
    messenger = RecordingMessenger(platform="t")
    worker = OutboxWorker(store, {"t": messenger})
    while await worker.run_once():
        pass
    for chat, unit in (("office", "武都区"), ("-100", "东江村党支部")):
        # (the group also gets the quarter's public evaluation poll: not part of the bulletin)
        sent = [m for c, m in messenger.sent if c == chat and m.poll is None]
        assert "季度通报" in sent[0].text and sent[0].attachment is None
        photo, document = sent[1].attachment, sent[2].attachment
        assert photo["kind"] == "photo" and photo["data"].startswith(b"\x89PNG")
        assert document["kind"] == "document" and document["filename"].endswith(".xlsx")
        wb = openpyxl.load_workbook(io.BytesIO(document["data"]))
        assert wb.sheetnames[0] == unit
        assert "2027-06" in wb.worksheets[0]["A2"].value
    # a second tick sends nothing again
    assert "quarter" not in await jobs.tick(datetime(2027, 7, 2, 10, tzinfo=CST).astimezone(UTC))
    async with store.read() as s:
        rows = (await s.exec(select(Outbox).where(Outbox.chat_id == "-100"))).all()
    assert len([r for r in rows if not r.payload.get("poll")]) == 3
