"""Every attachment, opened with openpyxl / python-docx, says what the records say."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import datetime

import docx
import openpyxl
import pytest

from campaign import rollup, supervise
from models import Org, OwnerKind
from reports import export
from reports.sheet import Book, neutral, risky
from templates import catalog
from tests.reports.conftest import LONG, NOW, RISKY, TODAY, build_records

SIZES = [0, 1, 30]


def t(key, **ctx):
    return catalog().render(key, "zh_CN", **ctx)


async def _build(store, rec, org_key, form, month=None):
    async with store.read() as s:
        org = await s.get(Org, rec.people.orgs[org_key])
        return await export.build(
            s, rec.campaign, org, form, today=TODAY, now=NOW, locale="zh_CN", month=month
        )


def excel_text(value):
    """Decode the _xHHHH_ escapes Excel uses for control characters (openpyxl leaves them)."""
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def _rows(ws):
    return [
        [excel_text(v) if isinstance(v, str) else v for v in r]
        for r in ws.iter_rows(values_only=True)
    ]


def test_risky_text_is_recognised_and_neutralised():
    for text in RISKY:
        assert risky(text)
        assert neutral(text) == "'" + text
    for text in ("帮助群众", "1+1", "a=b", ""):
        assert not risky(text)
        assert neutral(text) == text


def test_a_workbook_never_writes_a_formula():
    book = Book()
    sheet = book.sheet("台账", [10, 10])
    sheet.title("标题")
    sheet.header(["a", "b"])
    for text in RISKY:
        sheet.write([text, 1])
    wb = openpyxl.load_workbook(io.BytesIO(book.close()))
    ws = wb["台账"]
    for row, text in enumerate(RISKY, start=3):
        cell = ws.cell(row, 1)
        assert cell.data_type == "s" and excel_text(cell.value) == text and cell.quotePrefix
        assert ws.cell(row, 2).value == 1


@pytest.mark.parametrize("size", SIZES)
async def test_member_ledger_matches_the_records(store, people, size):
    rec = await build_records(store, people, member_items=size, org_items=0)
    result = await _build(store, rec, "village", 4)
    if size == 0:
        assert result is None
        return
    wb = openpyxl.load_workbook(io.BytesIO(result.data))
    assert wb.sheetnames == ["台账"]
    ws = wb["台账"]
    rows = _rows(ws)
    assert rows[0][0] == t("doc.form.4")
    assert "东江村党支部" in rows[1][0]
    head = rows[2]
    assert head[:7] == ["序号", "党组织", "党员姓名", "岗位", "承诺事项", "完成时限", "登记日期"]
    months = [f"{m}月" for m in range(1, 13)]
    assert head[7:19] == months
    assert head[19:] == ["销号日期", "状态", "回头看", "备注"]
    body = rows[3 : 3 + size]
    assert len(body) == size and rows[3 + size][0].startswith("本表由承诺通")
    async with store.read() as s:
        ledger = await supervise.ledger(s, rec.campaign.id, people.orgs["village"], TODAY)
    assert len(ledger) == size
    for n, (row, entry) in enumerate(zip(body, ledger, strict=True), 1):
        item = next(i for i in rec.items if i.id == entry.item_id)
        assert row[0] == n
        assert row[4] == item.content
        assert row[5] == datetime.combine(item.deadline, datetime.min.time())
        assert row[6] == datetime(2027, 4, 20)
        for k, month in enumerate(("2027-04", "2027-05", "2027-06")):
            reported = rec.reports[item.id].get(month)
            expected = t(f"doc.progress.{reported.value}") if reported else "未报"
            if reported is None and item.done_on and month > "2027-05":
                expected = None
            assert row[10 + k] == expected, (n, month)
        assert row[7:10] == [None, None, None]  # before it was registered
        assert row[13:19] == [None] * 6  # months to come
        assert row[19] == (
            datetime.combine(item.done_on, datetime.min.time()) if item.done_on else None
        )
        assert row[20] == t(f"doc.state.{entry.state}")
        assert row[21] == (t(f"doc.lookback.{entry.lookback}") if entry.lookback else None)
    # the longest allowed texts arrive whole, and risky ones stay text
    if size == 30:
        assert body[0][4] == LONG["content"]
        cell = ws.cell(5, 5)
        assert cell.value == RISKY[0] and cell.data_type == "s" and cell.quotePrefix
    # printing: A4 landscape, one page wide, the title and header on every page
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0
    assert ws.print_title_rows == "$1:$3"
    assert "A1:W1" in {str(r) for r in ws.merged_cells.ranges}


@pytest.mark.parametrize("size", [0, 1, 10])
async def test_organization_ledger_lists_the_branch_items(store, people, size):
    rec = await build_records(store, people, member_items=3, org_items=size)
    result = await _build(store, rec, "village", 3)
    if size == 0:
        assert result is None
        return
    ws = openpyxl.load_workbook(io.BytesIO(result.data))["台账"]
    rows = _rows(ws)
    assert rows[2][:5] == ["序号", "党组织", "承诺事项", "完成时限", "登记日期"]
    body = rows[3 : 3 + size]
    org_items = [i for i in rec.items if i.pledge_id == rec.pledges[0].id]
    assert [r[2] for r in body] == [i.content for i in org_items]


async def test_a_level_gets_a_sheet_per_unit_below(store, people):
    rec = await build_records(store, people, member_items=12, org_items=0)
    result = await _build(store, rec, "county", 4)
    wb = openpyxl.load_workbook(io.BytesIO(result.data))
    assert wb.sheetnames == ["城关镇"]
    rows = _rows(wb["城关镇"])
    assert rows[3][1] == "城关镇/东江村党支部"
    assert result.rows == 12


@pytest.mark.parametrize("size", SIZES)
async def test_monthly_report_matches_the_roll_up(store, people, size):
    rec = await build_records(store, people, member_items=size, org_items=0)
    result = await _build(store, rec, "county", 5, month="2027-06")
    if size == 0:
        assert result is None
        return
    wb = openpyxl.load_workbook(io.BytesIO(result.data))
    assert wb.sheetnames == ["武都区", "城关镇"]
    async with store.read() as s:
        summary = await rollup.monthly_rollup(
            s, rec.campaign.id, people.orgs["county"], "2027-06", TODAY
        )
    rows = _rows(wb["武都区"])
    assert rows[0][0] == t("doc.form.5") and "2027-06" in rows[1][0]
    f = summary["figures"]
    unit, total = rows[3], rows[4]
    assert unit[1] == "城关镇" and total[1] == "合计"
    keys = ["items", "done", "done_month", "on_track", "blocked", "overdue", "unreported"]
    assert total[2:9] == [f[k] for k in keys]
    assert unit[2:9] == [summary["children"][0]["figures"][k] for k in keys]
    assert total[9] == pytest.approx(f["done"] / f["items"])
    assert wb["武都区"].cell(5, 10).number_format == "0.0%"
    township = _rows(wb["城关镇"])
    assert township[3][1] == "城关镇（本级）"  # the township's own staff are a unit too
    (village,) = [r for r in township if r[1] == "东江村党支部"]
    assert village[2] == size
    # 回头看: the counts of the ledger's look-back column (one reader, one answer)
    async with store.read() as s:
        ledger = await supervise.ledger(s, rec.campaign.id, people.orgs["village"], TODAY)
    states = [r.lookback for r in ledger]
    pending = sum(states.count(k) for k in ("open", "awaiting", "lapsed"))
    expected = [states.count("consolidated"), states.count("rectify"), pending]
    assert village[10:13] == expected
    assert total[10:13] == expected  # nothing else in the county has items
    assert village[14] == "1个单位未上报"


@pytest.mark.parametrize("size", SIZES)
async def test_application_forms_carry_items_and_the_decision(store, people, size):
    rec = await build_records(store, people, member_items=size, org_items=min(size, 10))
    for form in (1, 2):
        result = await _build(store, rec, "village", form)
        if size == 0:
            assert result is None
            continue
        d = docx.Document(io.BytesIO(result.data))
        text = "\n".join(p.text for p in d.paragraphs)
        assert text.count(t(f"doc.form.{form}")) == (1 if form == 1 else -(-size // 10))
        assert "同意（确认）：同意，措施具体可行" in text
        assert "审核人：" in text and "日期：2027-04-15" in text
        tables = [tb for tb in d.tables if tb.rows[0].cells[0].text == "序号"]
        contents = [r.cells[1].text for tb in tables for r in tb.rows[1:]]
        kind = OwnerKind.ORG if form == 1 else OwnerKind.MEMBER
        ids = {p.id for p in rec.pledges if p.owner_kind is kind}
        # Word has no carriage return inside a paragraph: it becomes a line break
        expected = [i.content.replace("\r", "\n") for i in rec.items if i.pledge_id in ids]
        assert contents == expected
        header = tables[0].rows[0]._tr.trPr
        assert header is not None and "tblHeader" in header.xml
        section = d.sections[0]
        assert section.page_width < section.page_height  # A4 portrait


@pytest.mark.parametrize("size", SIZES)
async def test_display_table_shows_each_item_state(store, people, size):
    rec = await build_records(store, people, member_items=size, org_items=0)
    result = await _build(store, rec, "village", 7)
    if size == 0:
        assert result is None
        return
    d = docx.Document(io.BytesIO(result.data))
    table = d.tables[0]
    assert [c.text for c in table.rows[0].cells][-1] == "进展"
    async with store.read() as s:
        ledger = await supervise.ledger(s, rec.campaign.id, people.orgs["village"], TODAY)
    states = [t(f"doc.state.{r.state}") for r in ledger]
    assert [r.cells[-1].text for r in table.rows[1:]] == states
    contents = [r.content.replace("\r", "\n") for r in ledger]
    assert [r.cells[2].text for r in table.rows[1:]] == contents
    section = d.sections[0]
    assert section.page_width > section.page_height  # landscape for the board


def _soffice():
    return shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(
    not (_soffice() and shutil.which("pdfinfo")), reason="LibreOffice not installed"
)
async def test_each_form_prints_on_one_page_with_the_chinese_intact(store, people, tmp_path):
    if store.url.startswith("postgresql"):
        pytest.skip("the conversion does not depend on the database")
    rec = await build_records(store, people, member_items=1, org_items=1, plain=True)
    for form in range(1, 8):
        result = await _build(store, rec, "village", form, month="2027-06")
        assert result is not None, form
        path = tmp_path / result.name
        path.write_bytes(result.data)
        subprocess.run(
            [
                _soffice(),
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
                str(tmp_path),
                str(path),
            ],
            check=True,
            capture_output=True,
            timeout=180,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        pdf = path.with_suffix(".pdf")
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        pages = int(
            next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages"))
        )
        assert pages == 1, (form, pages)
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert t(f"doc.form.{form}").replace(" ", "") in text.replace(" ", ""), form
