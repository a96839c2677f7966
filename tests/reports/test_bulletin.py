"""The quarterly bulletin reaches offices and linked groups with its chart and attachment 5."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlmodel import select

from bot.outbox import OutboxWorker
from handlers.app import build_router
from models import Account, GroupLink, Outbox
from models.callbacks import CallbackCodec
from reminders.jobs import Jobs
from reports.service import Reports
from tests.conftest import RecordingMessenger, another_writer_can_write
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


class WritingProbe(Reports):
    """Makes the real files, and tries to write to the database while it draws each chart."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.could_write: list[bool] = []

    async def charts(self, session, *args, **kwargs):
        self.could_write.append(another_writer_can_write(self.path))
        return await super().charts(session, *args, **kwargs)


async def test_the_bulletin_is_drawn_without_holding_the_write_lock(store, people):
    """Found: the quarterly bulletin drew every level's chart and attachment 5 inside the
    calendar's write transaction, holding SQLite's one writer for as long as it took."""
    if not store.is_sqlite:
        pytest.skip("SQLite's one writer is what this is about")
    sqlite_store = store
    await build_records(sqlite_store, people, member_items=3, org_items=1)
    async with sqlite_store.write() as s:
        s.add(
            Account(
                platform="t", external_id="o", chat_id="office", member_id=people.ids["office"]
            )
        )
    probe = WritingProbe(sqlite_store.url.split(":///", 1)[1])
    jobs = Jobs(
        sqlite_store, CallbackCodec(b"k", build_router().callback_types()), documents=probe
    )
    queued = await jobs.tick(datetime(2027, 7, 1, 10, tzinfo=CST).astimezone(UTC))
    assert queued["quarter"] == 3  # the office: text, chart, file
    assert probe.could_write and all(probe.could_write)
