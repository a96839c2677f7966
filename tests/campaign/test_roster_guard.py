"""The roster at the boundary: unsafe names refused by row, the deactivation guard, --dry-run.

Found: a 3-row file deactivated 99,997 people without a question (here: 300 people).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlmodel import func, select

from campaign.roster import (
    DEACTIVATE_MAX,
    deactivation_refused,
    format_error,
    import_roster,
    validate_rows,
)
from models import Member
from tests.campaign.test_roster import GOOD, VILLAGE, _cli, snapshot, table, where, write_csv


def people(n: int, start: int = 0) -> list[tuple]:
    return [
        (VILLAGE, "村", f"党员{i}", f"139{i:08d}", "农村", "村民", "党员", "")
        for i in range(start, start + n)
    ]


async def active(store) -> int:
    async with store.read() as s:
        return (await s.exec(select(func.count()).where(Member.active))).one()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (2, "张\u200b建国", "name_unsafe"),
        (2, "\u202e国建张", "name_unsafe"),
        (2, "张\x1b[31m建国", "name_unsafe"),
        (2, "张\t建国", "name_unsafe"),
        (2, "\ufeff张建国", "name_unsafe"),
        (0, "陇南市/武都区/城关\u200d镇/东江村党支部", "org_unsafe"),
        (0, "陇南市/武都区/\u2066城关镇\u2069/东江村党支部", "org_unsafe"),
        (0, "陇南市/../城关镇/东江村党支部", "org_dot_segment"),
        (0, "陇南市/武都区/./东江村党支部", "org_dot_segment"),
        (0, "../陇南市", "org_dot_segment"),
        (5, "村文书\x00", "post_unsafe"),
        (7, "副科级\u200b", "rank_unsafe"),
    ],
)
def test_unsafe_names_and_dot_segments_are_refused_with_their_row(column, value, reason):
    bad = list(GOOD[0])
    bad[column] = value
    parsed = validate_rows(table([GOOD[1], GOOD[2], bad]))
    assert not parsed.records
    assert [(e.row, e.reason_key.rsplit(".", 1)[1]) for e in parsed.errors] == [(4, reason)]
    line = format_error(parsed.errors[0])
    assert line.startswith("第4行")
    # the message spells the character out instead of printing it
    assert "\u202e" not in line and "\u200b" not in line and "\x1b" not in line


def test_decomposed_names_are_stored_composed():
    row = list(GOOD[0])
    row[2] = "Jose\u0301"
    (record, *_) = validate_rows(table([row])).records
    assert record.name == "José"


def test_every_bad_row_is_listed_not_only_the_first():
    rows = [list(r) for r in GOOD]
    rows[0][2] = "张\u200b建国"
    rows[3][0] = "陇南市/../x"
    errors = validate_rows(table(rows)).errors
    assert where(errors) == [(2, "姓名", "name_unsafe"), (5, "组织", "org_dot_segment")]


@pytest.mark.parametrize(
    ("count", "active_people", "refused"),
    [
        (0, 0, False),
        (1, 10, False),
        (2, 10, True),
        (10, 100, False),
        (11, 100, True),
        (20, 1000, False),
        (21, 1000, True),
        (DEACTIVATE_MAX + 1, 10**6, True),
    ],
)
def test_the_guard_is_ten_percent_or_twenty(count, active_people, refused):
    assert deactivation_refused(count, active_people) is refused


async def test_a_three_row_file_does_not_deactivate_everyone(store, tmp_path):
    assert (await import_roster(store, write_csv(tmp_path / "all.csv", people(300)))).ok
    before = await snapshot(store)
    three = write_csv(tmp_path / "three.csv", people(3))
    result = await import_roster(store, three)
    assert not result.ok
    (error,) = result.errors
    assert error.reason_key == "roster.error.too_many_deactivated"
    assert error.context == {"count": 297, "active": 300}
    assert "297" in format_error(error) and "--allow-deactivate" in format_error(error)
    assert await snapshot(store) == before

    result = await import_roster(store, three, allow_deactivate=True)
    assert result.ok and result.deactivated == 297
    assert await active(store) == 3


async def test_small_changes_pass_and_the_limit_counts_only_active_people(store, tmp_path):
    assert (await import_roster(store, write_csv(tmp_path / "a.csv", people(100)))).ok
    result = await import_roster(store, write_csv(tmp_path / "b.csv", people(90)))
    assert result.ok and result.deactivated == 10  # exactly 10%
    # 90 active now: dropping 10 more is over 10% of them
    result = await import_roster(store, write_csv(tmp_path / "c.csv", people(80)))
    assert not result.ok and result.errors[0].context == {"count": 10, "active": 90}
    assert await active(store) == 90


async def test_dry_run_reports_the_changes_and_writes_nothing(store, tmp_path):
    assert (await import_roster(store, write_csv(tmp_path / "a.csv", people(100)))).ok
    before = await snapshot(store)
    rows = [*people(40), *people(5, start=500)]  # 60 leave, 5 arrive
    result = await import_roster(store, write_csv(tmp_path / "b.csv", rows), dry_run=True)
    assert result.ok and result.dry_run
    assert (result.created, result.unchanged, result.deactivated) == (5, 40, 60)
    assert result.refusal is not None and result.refusal.context["count"] == 60
    assert len(result.deactivated_people) == 50
    assert result.deactivated_people[0] == ("党员40", "13900000040", VILLAGE)
    assert await snapshot(store) == before


def test_cli_dry_run_and_allow_deactivate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    everyone = write_csv(tmp_path / "all.csv", people(30))
    assert CliRunner().invoke(_cli(), ["roster", "import", str(everyone)]).exit_code == 0
    three = write_csv(tmp_path / "three.csv", people(3))

    result = CliRunner().invoke(_cli(), ["roster", "import", "--dry-run", str(three)])
    assert result.exit_code == 0, result.output
    assert "数据库没有任何改动" in result.output and "停用 27 人" in result.output
    assert "将停用：党员3（13900000003，陇南市/武都区/城关镇/东江村党支部）" in result.output
    assert "正式导入时会被拒绝" in result.output

    result = CliRunner().invoke(_cli(), ["roster", "import", str(three)])
    assert result.exit_code == 1 and "--allow-deactivate" in result.output

    result = CliRunner().invoke(_cli(), ["roster", "import", "--allow-deactivate", str(three)])
    assert result.exit_code == 0, result.output
    assert "停用27人" in result.output.replace(" ", "")

    result = CliRunner().invoke(
        _cli(), ["--lang", "en", "roster", "import", "--dry-run", str(everyone)]
    )
    assert result.exit_code == 0 and "nothing was written" in result.output
