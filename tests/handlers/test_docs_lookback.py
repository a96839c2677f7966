"""回头看 in the ledgers, the monthly report and the spot check: one reader, one answer.

"The ledger, the monthly report and the spot check show each item's look-back state." The chat
ledger (/ledger), attachment 4, attachment 5 and the spot check are compared with the records
(the ``LookBack`` rows and the items' days) and with each other.
"""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest

from campaign import spotcheck, supervise
from models import Account, Org
from models.lookback import LookBack, LookBackState
from reports.service import Reports
from templates import catalog
from tests.chat import SECRETARY, ChatBot
from tests.conftest import another_writer_can_write, seed_people
from tests.reports.conftest import NOW, TODAY, build_records

OFFICE = "5"
#: item number (as the records number them) → its look-back row's state, if it has one
STARTED = {3: "open", 6: "consolidated", 11: "rectify", 16: "open"}
#: what the ledger must say of each item on TODAY (2027-06-15): items 1, 6, 11, 16 were
#: crossed off on 10 May, items 3, 10 and 17 fell due on 31 May; the others are not due
EXPECTED = {1: "lapsed", 3: "open", 6: "consolidated", 10: "awaiting", 11: "rectify"}
EXPECTED[17] = "awaiting"
EXPECTED[16] = "lapsed"  # started, but still undecided more than a month after it fell due


def t(key, **ctx):
    return catalog().render(key, "zh_CN", **ctx)


@pytest.fixture
async def people(store):
    return await seed_people(store)


@pytest.fixture
async def bot(store, people):
    rec = await build_records(store, people, member_items=20, org_items=0, plain=True)
    async with store.write() as s:
        for key, chat in (("secretary", SECRETARY), ("office", OFFICE)):
            s.add(
                Account(platform="test", external_id=chat, chat_id=chat, member_id=people.ids[key])
            )
        for n, state in STARTED.items():
            item = rec.items[n]
            s.add(
                LookBack(
                    campaign_id=rec.campaign.id,
                    item_id=item.id,
                    pledge_id=item.pledge_id,
                    org_id=people.orgs["village"],
                    started_on=date(2027, 5, 12),
                    state=LookBackState(state),
                )
            )
    chat = ChatBot(store, people, lambda: NOW, documents=Reports())
    chat.rec = rec
    return chat


def _files(bot, chat):
    return [m.attachment for c, m in bot.messenger.sent if c == chat and m.attachment]


def test_the_state_follows_the_days_and_the_decision():
    day = date(2027, 6, 15)
    state = supervise.lookback_state
    assert state(None, date(2027, 12, 31), None, day) == ""  # not due
    assert state(None, day, None, day) == "awaiting"  # due today (as look_back.start_due)
    assert state(date(2027, 6, 1), None, "open", day) == "open"
    assert state(date(2027, 5, 10), None, "open", day) == "lapsed"
    assert state(date(2027, 5, 10), None, "consolidated", day) == "consolidated"
    assert state(None, date(2027, 5, 1), "rectify", day) == "rectify"


async def test_ledger_file_report_and_check_agree_with_the_records(bot, people, store):
    rec = bot.rec
    village = people.orgs["village"]
    async with store.read() as s:
        ledger = await supervise.ledger(s, rec.campaign.id, village, TODAY)
    assert [r.item_id for r in ledger] == [i.id for i in rec.items]
    assert [r.lookback for r in ledger] == [EXPECTED.get(n, "") for n in range(len(rec.items))]
    # the grouped counts (attachment 5, the spot check) are the counts of that column
    async with store.read() as s:
        org = await s.get(Org, village)
        counted = await supervise.lookback_figures(s, rec.campaign.id, org.path, TODAY)
    states = [r.lookback for r in ledger]
    assert counted[org.path] == {
        "lb_consolidated": states.count("consolidated"),
        "lb_rectify": states.count("rectify"),
        "lb_pending": sum(states.count(k) for k in ("open", "awaiting", "lapsed")),
        "lb_lapsed": states.count("lapsed"),
    }

    # attachment 4: the look-back column says the same, row by row
    await bot.cmd(SECRETARY, "export")
    await bot.press(SECRETARY, "附件4")
    [sheet] = _files(bot, SECRETARY)
    ws = openpyxl.load_workbook(io.BytesIO(sheet["data"])).active
    rows = list(ws.iter_rows(values_only=True))
    col = rows[2].index("回头看")
    body = [r for r in rows[3:] if isinstance(r[0], int)]
    assert [r[4] for r in body] == [i.content for i in rec.items]
    labels = [t(f"doc.lookback.{EXPECTED[n]}") if n in EXPECTED else None for n in range(20)]
    assert [r[col] for r in body] == labels

    # the chat ledger shows it beside each item
    await bot.cmd(SECRETARY, "ledger")
    shown = "\n".join(bot.messenger.texts(SECRETARY))
    for state in set(EXPECTED.values()):
        assert t(f"ledger.lookback.{state}") in shown

    # attachment 5: consolidated, rectifying after look-back, still to decide
    await bot.cmd(OFFICE, "export")
    await bot.press(OFFICE, "附件5")
    report = _files(bot, OFFICE)[-1]
    wb = openpyxl.load_workbook(io.BytesIO(report["data"]))
    head = list(wb["城关镇"].iter_rows(values_only=True))[2]
    at = head.index("巩固销号")
    assert head[at : at + 3] == ("巩固销号", "回头看后整改", "待回头看")
    (row,) = [r for r in wb["城关镇"].iter_rows(values_only=True) if r[1] == "东江村党支部"]
    assert list(row[at : at + 3]) == [1, 1, 5]
    total = next(r for r in wb["武都区"].iter_rows(values_only=True) if r[1] == "合计")
    assert list(total[at : at + 3]) == [1, 1, 5]

    # the spot check: two look-backs lapsed in the branch, as the ledger says
    async with store.read() as s:
        level = await s.get(Org, people.orgs["county"])
        checked = await spotcheck.check(s, rec.campaign, level, TODAY)
    (branch,) = [g for g in checked if g.org_id == village]
    assert branch.counts["lookback_lapsed"] == 2 and "lookback_lapsed" in branch.gaps
    await bot.cmd(OFFICE, "spotcheck")
    table = _files(bot, OFFICE)[-1]
    ws = openpyxl.load_workbook(io.BytesIO(table["data"])).active
    rows = list(ws.iter_rows(values_only=True))
    col = rows[2].index("回头看逾期")
    (line,) = [r for r in rows if r[1] == "城关镇/东江村党支部"]
    assert line[col] == 2
    assert "回头看逾期" in "\n".join(bot.messenger.texts(OFFICE))


class Probe(Reports):
    """Makes the real files, and tries to write to the database while it makes one."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.could_write: list[bool] = []

    async def export(self, session, *args, **kwargs):
        self.could_write.append(another_writer_can_write(self.path))
        return await super().export(session, *args, **kwargs)


async def test_an_export_is_made_without_holding_the_write_lock(sqlite_store, tmp_path):
    """Found: a city-wide export held SQLite's one write lock for as long as it took."""
    people = await seed_people(sqlite_store)
    await build_records(sqlite_store, people, member_items=3, org_items=0)
    async with sqlite_store.write() as s:
        s.add(
            Account(
                platform="test",
                external_id=SECRETARY,
                chat_id=SECRETARY,
                member_id=people.ids["secretary"],
            )
        )
    probe = Probe(str(tmp_path / "test.db"))
    bot = ChatBot(sqlite_store, people, lambda: NOW, documents=probe)
    await bot.cmd(SECRETARY, "export")
    await bot.press(SECRETARY, "附件4")
    assert probe.could_write == [True]
    [sent] = _files(bot, SECRETARY)
    assert sent["filename"].endswith(".xlsx") and "进度统计台账" in bot.last(SECRETARY)
