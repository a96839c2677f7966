"""Roster import: the file format, every kind of bad row, and all-or-nothing writes."""

from __future__ import annotations

import csv
import re
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlmodel import func, select

from campaign import roster
from campaign.roster import (
    HEADER,
    RowError,
    format_error,
    import_roster,
    parse_roster,
    validate_rows,
    write_roster,
)
from models import Category, Member, Org, OrgType, Role, RoleGrant
from templates import catalog

VILLAGE = "陇南市/武都区/城关镇/东江村党支部"
COMMUNITY = "陇南市/武都区/城关镇/北关社区党支部"
TOWNSHIP = "陇南市/武都区/城关镇"
COUNTY = "陇南市/武都区"

GOOD = [
    (VILLAGE, "村", "张建国", "13800000001", "农村", "村文书", "党员", ""),
    (VILLAGE, "村", "李秀英", "138 0000 0002", "农村", "村党支部书记", "党员、书记", ""),
    (VILLAGE, "村", "周德福", "+86 138-0000-0008", "", "村民代表", "评议员", ""),
    (COMMUNITY, "社区", "王芳", "13800000011", "社区", "网格员", "党员,评议员", ""),
    (
        TOWNSHIP,
        "机关",
        "陈明",
        "0086 13800000005",
        "机关事业",
        "组织委员",
        "党员，审核人",
        "副科级",
    ),
    (
        COUNTY,
        "机关",
        "杨志军",
        "8613800000006",
        "机关事业",
        "创先办主任",
        "党员、创先办",
        "正科级",
    ),
]


def write_csv(path: Path, rows, header=HEADER, bom=True) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def table(rows, header=HEADER):
    return [list(header), *[list(r) for r in rows]]


def errors_of(rows, header=HEADER) -> list[RowError]:
    parsed = validate_rows(table(rows, header))
    assert not parsed.records
    return parsed.errors


def where(errors) -> list[tuple[int, str | None, str]]:
    return [(e.row, e.column, e.reason_key.rsplit(".", 1)[1]) for e in errors]


# -- pure checks ---------------------------------------------------------------------------------


def test_good_rows_become_records():
    parsed = validate_rows(table(GOOD))
    assert parsed.ok
    first, secretary, evaluator, peer, reviewer, office = parsed.records
    assert first.row == 2 and first.org == VILLAGE and first.org_type is OrgType.VILLAGE
    assert first.category is Category.RURAL and first.roles == (Role.MEMBER,)
    assert secretary.phone == "13800000002" and secretary.roles == (Role.MEMBER, Role.SECRETARY)
    assert evaluator.phone == "13800000008" and evaluator.category is None
    assert peer.roles == (Role.MEMBER, Role.EVALUATOR)
    assert reviewer.phone == "13800000005" and reviewer.rank == "副科级"
    assert office.phone == "13800000006" and office.roles == (Role.MEMBER, Role.OFFICE)
    assert parsed.org_types == {
        VILLAGE: OrgType.VILLAGE,
        COMMUNITY: OrgType.COMMUNITY,
        TOWNSHIP: OrgType.ORGAN,
        COUNTY: OrgType.ORGAN,
    }


def test_header_order_whitespace_extra_columns_and_no_rank():
    header = [" 姓名 ", "手机", "备注", "组织", "组织类型", "角色", "类别", "岗位 "]
    row = ["张建国", "13800000001", "whatever", " 陇南市 / 武都区/城关镇／东江村党支部 ", "村"]
    row += ["党员", "农村", "村文书"]
    parsed = validate_rows([header, row])
    assert parsed.ok, parsed.errors
    (rec,) = parsed.records
    assert rec.org == VILLAGE and rec.name == "张建国" and rec.post == "村文书" and rec.rank == ""


def test_missing_required_columns_reject_the_file():
    header = ["组织", "组织类型", "姓名", "类别", "岗位"]
    errors = errors_of([], header)
    assert where(errors) == [(1, "手机", "column_missing"), (1, "角色", "column_missing")]


def test_duplicate_column_is_an_error():
    header = [*HEADER, "手机"]
    assert where(errors_of([GOOD[0]], header)) == [(1, "手机", "column_duplicate")]


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        ({0: ""}, "组织", "org_empty"),
        ({0: "陇南市//东江村党支部"}, "组织", "org_path_invalid"),
        ({0: "陇南市/" + "长" * 129}, "组织", "org_name_too_long"),
        ({0: "/".join(["级"] * 17)}, "组织", "org_path_too_long"),
        ({1: "村委会"}, "组织类型", "org_type_invalid"),
        ({2: ""}, "姓名", "name_empty"),
        ({2: "张" * 65}, "姓名", "name_too_long"),
        ({3: ""}, "手机", "phone_empty"),
        ({3: "1380000000"}, "手机", "phone_invalid"),
        ({3: "23800000001"}, "手机", "phone_invalid"),
        ({3: "1380000000a"}, "手机", "phone_invalid"),
        ({4: "城市"}, "类别", "category_invalid"),
        ({4: ""}, "类别", "category_required"),
        ({5: "岗" * 129}, "岗位", "post_too_long"),
        ({6: ""}, "角色", "roles_empty"),
        ({6: "、"}, "角色", "roles_empty"),
        ({6: "党员、组长"}, "角色", "role_invalid"),
        ({7: "级" * 33}, "职级", "rank_too_long"),
    ],
)
def test_each_bad_cell_is_reported_with_row_and_column(change, column, reason):
    bad = list(GOOD[0])
    for index, value in change.items():
        bad[index] = value
    errors = errors_of([GOOD[1], bad])
    assert where(errors) == [(3, column, reason)]
    assert catalog().has(errors[0].reason_key)


def test_duplicate_phone_names_the_first_row():
    dup = list(GOOD[3])
    dup[3] = "+86 138 0000 0001"
    (error,) = errors_of([GOOD[0], GOOD[1], dup])
    assert where([error]) == [(4, "手机", "phone_duplicate")]
    assert error.context["first_row"] == 2
    assert "第2行" in format_error(error)


def test_one_org_cannot_have_two_types():
    other = list(GOOD[1])
    other[1] = "社区"
    (error,) = errors_of([GOOD[0], other])
    assert where([error]) == [(3, "组织类型", "org_type_conflict")]
    text = format_error(error)
    assert text.startswith("第3行 [组织类型]") and "第2行" in text and "“村”" in text


def test_every_error_is_listed_and_blank_rows_keep_numbering():
    rows = [
        GOOD[0],
        ("", "", "", "", "", "", "", ""),
        (VILLAGE, "乡", "", "12", "农村", "", "党员", ""),
        GOOD[1],
    ]
    errors = errors_of(rows)
    assert where(errors) == [
        (4, "组织类型", "org_type_invalid"),
        (4, "姓名", "name_empty"),
        (4, "手机", "phone_invalid"),
    ]


def test_no_people_is_an_error():
    assert where(errors_of([])) == [(0, None, "no_rows")]
    assert where(validate_rows([]).errors) == [(0, None, "file_empty")]


def test_errors_render_in_both_locales():
    error = RowError(7, "手机", "roster.error.phone_invalid", {"value": "123"})
    assert format_error(error, "zh_CN") == "第7行 [手机] 手机号应为以1开头的11位数字：123"
    assert format_error(error, "en").startswith("Row 7 [手机] The mobile number")
    whole = RowError(0, None, "roster.error.no_rows", {})
    assert format_error(whole, "zh_CN") == "花名册中没有人员：表头下面至少要有一行。"


def test_every_reason_key_in_the_code_exists_in_both_locales():
    source = Path(roster.__file__).read_text(encoding="utf-8")
    reasons = set(re.findall(r'_ERR \+ "(\w+)"', source))
    reasons |= set(re.findall(r'_fail\(\s*row,\s*"\w+",\s*"(\w+)"', source))
    assert len(reasons) > 20
    cat = catalog()
    for reason in reasons:
        for locale in ("zh_CN", "en"):
            assert f"roster.error.{reason}" in cat.messages[locale], reason


# -- reading files -------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_and_without_bom(tmp_path, bom):
    path = write_csv(tmp_path / "r.csv", GOOD, bom=bom)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") is bom
    parsed = parse_roster(path)
    assert parsed.ok and len(parsed.records) == len(GOOD)


def test_xlsx_first_sheet_with_numbers_as_phones(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "花名册"
    sheet.append(list(HEADER))
    for row in GOOD:
        sheet.append(list(row))
    sheet.append([None] * 8)
    sheet.append([VILLAGE, "村", "刘桂兰", 13800000004, "农村", None, "党员", None])
    other = workbook.create_sheet("说明")
    other.append(["这一页不读"])
    path = tmp_path / "r.xlsx"
    workbook.save(path)
    parsed = parse_roster(path)
    assert parsed.ok, parsed.errors
    assert [r.row for r in parsed.records] == [2, 3, 4, 5, 6, 7, 9]
    assert parsed.records[-1].phone == "13800000004" and parsed.records[-1].post == ""


def test_write_roster_round_trips(tmp_path):
    for name in ("w.csv", "w.xlsx"):
        assert write_roster(tmp_path / name, GOOD) == len(GOOD)
        parsed = parse_roster(tmp_path / name)
        assert parsed.ok and [r.name for r in parsed.records] == [r[2] for r in GOOD]


def test_unreadable_files(tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(",".join(HEADER).encode("gbk"))
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    cases = {
        tmp_path / "missing.csv": "file_missing",
        gbk: "file_not_utf8",
        old: "file_xls",
        broken: "file_unreadable",
    }
    for path, reason in cases.items():
        assert where(parse_roster(path).errors) == [(0, None, reason)], path
        assert format_error(parse_roster(path).errors[0])


# -- writing -------------------------------------------------------------------------------------


async def snapshot(store):
    async with store.read() as s:
        orgs = (await s.exec(select(Org.full_name, Org.type, Org.parent_id, Org.path))).all()
        members = (
            await s.exec(
                select(Member.phone, Member.name, Member.org_id, Member.post, Member.active)
            )
        ).all()
        grants = (
            await s.exec(select(RoleGrant.member_id, RoleGrant.role, RoleGrant.org_id))
        ).all()
    return sorted(map(tuple, orgs)), sorted(map(tuple, members)), sorted(map(tuple, grants))


async def load(store):
    async with store.read() as s:
        orgs = {o.full_name: o for o in (await s.exec(select(Org))).all()}
        members = {m.phone: m for m in (await s.exec(select(Member))).all()}
        grants = {(g.member_id, g.role, g.org_id) for g in (await s.exec(select(RoleGrant))).all()}
    return orgs, members, grants


async def test_import_builds_the_tree_people_and_scoped_roles(store, tmp_path):
    seen: list[tuple[int, int]] = []
    result = await import_roster(
        store, write_csv(tmp_path / "r.csv", GOOD), lambda d, t: seen.append((d, t))
    )
    assert result.ok, result.errors
    assert (result.rows, result.created, result.updated, result.deactivated) == (6, 6, 0, 0)
    assert result.orgs_created == 5
    assert seen and seen[-1][0] == seen[-1][1] == 12
    assert all(a[0] <= b[0] for a, b in pairwise(seen))

    orgs, members, grants = await load(store)
    city, county, township = orgs["陇南市"], orgs[COUNTY], orgs[TOWNSHIP]
    village, community = orgs[VILLAGE], orgs[COMMUNITY]
    assert city.parent_id is None and city.path == f"/{city.id}/" and city.depth == 0
    assert city.type is OrgType.LEVEL and city.name == "陇南市"
    assert county.parent_id == city.id and county.path == f"/{city.id}/{county.id}/"
    assert county.type is OrgType.ORGAN  # typed by 杨志军's row
    assert township.parent_id == county.id and township.depth == 2
    assert township.type is OrgType.ORGAN
    assert village.parent_id == township.id and village.name == "东江村党支部"
    assert village.path == f"{township.path}{village.id}/" and village.depth == 3
    assert village.type is OrgType.VILLAGE and community.type is OrgType.COMMUNITY

    m = {phone[-2:]: members[phone] for phone in members}
    assert m["01"].org_id == village.id and m["01"].category is Category.RURAL
    assert m["01"].post == "村文书" and m["01"].active
    assert m["05"].rank == "副科级" and m["08"].category is None
    assert grants == {
        (m["01"].id, Role.MEMBER, village.id),
        (m["02"].id, Role.MEMBER, village.id),
        (m["02"].id, Role.SECRETARY, village.id),
        (m["08"].id, Role.EVALUATOR, village.id),
        (m["11"].id, Role.MEMBER, community.id),
        (m["11"].id, Role.EVALUATOR, community.id),
        (m["05"].id, Role.MEMBER, township.id),
        (m["05"].id, Role.REVIEWER, township.id),
        (m["06"].id, Role.MEMBER, county.id),
        (m["06"].id, Role.OFFICE, county.id),
    }


@pytest.mark.parametrize("kind", ["csv-bom", "csv", "xlsx"])
async def test_import_from_each_file_kind(store, tmp_path, kind):
    if kind == "xlsx":
        path = tmp_path / "r.xlsx"
        write_roster(path, GOOD)
    else:
        path = write_csv(tmp_path / "r.csv", GOOD, bom=kind == "csv-bom")
    result = await import_roster(store, path)
    assert result.ok and result.created == len(GOOD)


BAD_ROWS = [
    (VILLAGE, "村", "新人", "13900000001", "农村", "", "党员", ""),  # good, but must not land
    ("", "村", "无组织", "13900000002", "农村", "", "党员", ""),
    (VILLAGE, "社区", "类型不一", "13900000003", "农村", "", "党员", ""),
    (VILLAGE, "村", "", "13900000004", "农村", "", "党员", ""),
    (VILLAGE, "村", "坏号码", "1390000", "农村", "", "党员", ""),
    (VILLAGE, "村", "重号", "13900000001", "农村", "", "党员", ""),
    (VILLAGE, "村", "坏类别", "13900000006", "工人", "", "党员", ""),
    (VILLAGE, "村", "缺类别", "13900000007", "", "", "党员、书记", ""),
    (VILLAGE, "村", "坏角色", "13900000008", "农村", "", "支委", ""),
    (VILLAGE, "村", "长岗位", "13900000009", "农村", "岗" * 200, "党员", ""),
    (VILLAGE, "村", "长职级", "13900000010", "农村", "", "党员", "级" * 40),
    ("陇南市//武都区", "村", "空层级", "13900000011", "农村", "", "党员", ""),
    (VILLAGE, "村委", "坏类型", "13900000012", "农村", "", "党员", ""),
    (VILLAGE, "村", "无角色", "13900000013", "农村", "", "", ""),
]


async def test_a_bad_file_changes_nothing_and_lists_every_error(store, tmp_path):
    assert (await import_roster(store, write_csv(tmp_path / "ok.csv", GOOD))).ok
    before = await snapshot(store)
    changed_good = [(*GOOD[0][:5], "新岗位", *GOOD[0][6:]), *GOOD[1:]]
    result = await import_roster(store, write_csv(tmp_path / "bad.csv", changed_good + BAD_ROWS))
    assert not result.ok
    first = len(changed_good) + 2
    assert [(row - first, column) for row, column, _ in where(result.errors)] == [
        (1, "组织"),
        (2, "组织类型"),
        (3, "姓名"),
        (4, "手机"),
        (5, "手机"),
        (6, "类别"),
        (7, "类别"),
        (8, "角色"),
        (9, "岗位"),
        (10, "职级"),
        (11, "组织"),
        (12, "组织类型"),
        (13, "角色"),
    ]
    assert await snapshot(store) == before


async def test_reimport_updates_by_phone_and_deactivates_the_missing(store, tmp_path):
    assert (await import_roster(store, write_csv(tmp_path / "v1.csv", GOOD))).ok
    _, members_before, _ = await load(store)
    moved = (COMMUNITY, "社区", "张建国", "138-0000-0001", "社区", "网格员", "党员、书记", "")
    renamed = (VILLAGE, "村", "李秀英（改）", "13800000002", "农村", "村党支部书记", "党员", "")
    newcomer = (VILLAGE, "村", "赵新", "13800000099", "农村", "村文书", "党员、书记", "")
    v2 = [moved, renamed, GOOD[3], GOOD[4], GOOD[5], newcomer]  # 周德福 (…08) dropped
    # one of six is more than 10%: the operator confirms the deactivation
    result = await import_roster(store, write_csv(tmp_path / "v2.csv", v2), allow_deactivate=True)
    assert result.ok, result.errors
    assert (result.created, result.updated, result.unchanged, result.deactivated) == (1, 2, 3, 1)
    assert result.orgs_created == 0

    orgs, members, grants = await load(store)
    village, community = orgs[VILLAGE].id, orgs[COMMUNITY].id
    zhang, li, zhou = members["13800000001"], members["13800000002"], members["13800000008"]
    assert zhang.id == members_before["13800000001"].id
    assert zhang.org_id == community and zhang.category is Category.COMMUNITY
    assert zhang.post == "网格员"
    assert li.name == "李秀英（改）" and li.id == members_before["13800000002"].id
    assert not zhou.active and zhou.name == "周德福"
    assert all(m.active for p, m in members.items() if p != "13800000008")
    mine = {(r, o) for mid, r, o in grants if mid == zhang.id}
    assert mine == {(Role.MEMBER, community), (Role.SECRETARY, community)}
    assert {(r, o) for mid, r, o in grants if mid == li.id} == {(Role.MEMBER, village)}
    assert not [g for g in grants if g[0] == zhou.id]  # an inactive person holds no role

    # Back on the roster: active again, with the file's roles.
    result = await import_roster(store, write_csv(tmp_path / "v3.csv", [*v2, GOOD[2]]))
    assert (result.created, result.updated, result.unchanged, result.deactivated) == (0, 1, 6, 0)
    _, members, grants = await load(store)
    assert members["13800000008"].active
    assert (members["13800000008"].id, Role.EVALUATOR, village) in grants


async def test_reimport_retypes_an_org_and_keeps_inner_nodes(store, tmp_path):
    assert (await import_roster(store, write_csv(tmp_path / "v1.csv", GOOD))).ok
    v2 = [(VILLAGE, "社区", *GOOD[0][2:]), *GOOD[1:2]]
    v2[1] = (VILLAGE, "社区", *GOOD[1][2:])
    result = await import_roster(store, write_csv(tmp_path / "v2.csv", v2), allow_deactivate=True)
    assert result.ok and result.orgs_updated == 1 and result.deactivated == 4
    orgs, _, _ = await load(store)
    assert orgs[VILLAGE].type is OrgType.COMMUNITY
    assert orgs[TOWNSHIP].type is OrgType.ORGAN  # not given this time: kept
    assert len(orgs) == 5  # organizations are never deleted


async def test_identical_reimport_changes_nothing(store, tmp_path):
    path = write_csv(tmp_path / "r.csv", GOOD)
    assert (await import_roster(store, path)).ok
    before = await snapshot(store)
    result = await import_roster(store, path)
    assert (result.created, result.updated, result.unchanged) == (0, 0, len(GOOD))
    assert (result.grants_added, result.grants_removed, result.orgs_created) == (0, 0, 0)
    assert await snapshot(store) == before


async def test_many_rows_in_several_chunks(store, tmp_path, monkeypatch):
    monkeypatch.setattr(roster, "CHUNK", 7)
    rows = [
        (
            f"陇南市/成县/城关镇/第{i % 5}村党支部",
            "村",
            f"党员{i}",
            f"139{i:08d}",
            "农村",
            "",
            "党员",
            "",
        )
        for i in range(40)
    ]
    result = await import_roster(store, write_csv(tmp_path / "r.csv", rows))
    assert result.ok and result.created == 40 and result.grants_added == 40
    async with store.read() as s:
        assert (await s.exec(select(func.count()).select_from(Member))).one() == 40


# -- command line --------------------------------------------------------------------------------


def _cli():
    import click

    from bot.cli_roster import register

    @click.group()
    @click.option("--lang", "locale", default="zh_CN")
    @click.pass_context
    def main(ctx, locale):
        ctx.obj = {"locale": locale}

    register(main)
    return main


def test_cli_import_prints_errors_and_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    bad = write_csv(
        tmp_path / "bad.csv", [GOOD[0], (VILLAGE, "村", "坏号码", "123", "农村", "", "党员", "")]
    )
    result = CliRunner().invoke(_cli(), ["roster", "import", str(bad)])
    assert result.exit_code == 1
    assert "第3行 [手机] 手机号应为以1开头的11位数字：123" in result.output
    result = CliRunner().invoke(_cli(), ["--lang", "en", "roster", "import", str(bad)])
    assert result.exit_code == 1 and "Row 3 [手机]" in result.output

    good = write_csv(tmp_path / "good.csv", GOOD)
    result = CliRunner().invoke(_cli(), ["roster", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "新增6人" in result.output


def test_cli_demo_data_writes_and_imports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    out = tmp_path / "demo.xlsx"
    # Found: --out FILE also imported the roster; it writes the file, and imports on --import.
    result = CliRunner().invoke(_cli(), ["demo-data", "-n", "120", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists() and "新增" not in result.output
    assert not (tmp_path / "demo.db").exists()
    result = CliRunner().invoke(_cli(), ["demo-data", "-n", "120", "--out", str(out), "--import"])
    assert result.exit_code == 0, result.output
    assert "新增120人" in result.output
    result = CliRunner().invoke(_cli(), ["demo-data", "-n", "50"])
    assert result.exit_code != 0 and "--import" in result.output
