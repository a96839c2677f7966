"""Demo data: a plausible Longnan roster of any size that imports cleanly, fixed cast included."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from campaign.demo_data import (
    COUNTIES,
    DEMO_CAST,
    DEMO_PEOPLE,
    TOWNSHIP,
    VILLAGE_BRANCH,
    generate_roster,
    load_demo,
    roster_table,
)
from campaign.roster import HEADER, parse_roster, validate_rows, write_roster
from models import Category, Member, Org, OrgType, Role, RoleGrant


def test_same_seed_same_roster_other_seed_other_people():
    assert generate_roster(500, seed=7) == generate_roster(500, seed=7)
    assert generate_roster(500, seed=7) != generate_roster(500, seed=8)


@pytest.mark.parametrize("size", [1, 9, 10, 40, 100, 1000, 5000])
def test_exact_size_unique_phones_and_clean_validation(size):
    rows = generate_roster(size)
    assert len(rows) == max(size, len(DEMO_PEOPLE))
    assert all(len(row) == len(HEADER) for row in rows)
    assert len({row[3] for row in rows}) == len(rows)
    parsed = validate_rows(roster_table(rows))
    assert parsed.ok, parsed.errors[:5]


def test_the_fixed_cast_is_always_there():
    phones = [p.phone for p in DEMO_PEOPLE]
    assert phones == [f"1380000000{i}" for i in range(1, 10)]
    for size in (9, 100, 3000):
        rows = generate_roster(size)
        assert [row[3] for row in rows[: len(DEMO_PEOPLE)]] == phones
        assert not {row[3] for row in rows[len(DEMO_PEOPLE) :]} & set(phones)
    cast = DEMO_CAST
    assert cast.member.org == cast.secretary.org == cast.peer_a.org == cast.peer_b.org
    assert cast.member.org == VILLAGE_BRANCH and cast.reviewer.org == TOWNSHIP
    assert VILLAGE_BRANCH.rsplit("/", 1)[0] == cast.reviewer.org
    assert Role.SECRETARY in cast.secretary.roles and Role.REVIEWER in cast.reviewer.roles
    assert Role.OFFICE in cast.county_office.roles and Role.OFFICE in cast.city_office.roles
    assert cast.city_office.org == "陇南市" and cast.county_office.org == "陇南市/武都区"


def test_a_large_roster_looks_like_longnan():
    rows = generate_roster(20000, seed=3)
    parsed = validate_rows(roster_table(rows))
    assert parsed.ok
    counties = {r.org.split("/")[1] for r in parsed.records if r.org.count("/") >= 1}
    assert set(COUNTIES) <= counties
    types = Counter(parsed.org_types.values())
    assert types[OrgType.VILLAGE] > types[OrgType.COMMUNITY] > 0
    for kind in (OrgType.ORGAN, OrgType.SCHOOL, OrgType.INSTITUTION, OrgType.ENTERPRISE):
        assert types[kind] > 0, kind
    assert types[OrgType.PRIVATE_ENTERPRISE] > 0
    assert {r.category for r in parsed.records} == {*Category, None}
    roles = Counter(role for r in parsed.records for role in r.roles)
    assert set(roles) == set(Role)
    # every branch has a secretary; every township has a reviewer on the township itself
    branches = {r.org for r in parsed.records if r.org.endswith("党支部")}
    with_secretary = {r.org for r in parsed.records if Role.SECRETARY in r.roles}
    assert branches <= with_secretary
    townships = {b.rsplit("/", 1)[0] for b in branches if b.count("/") == 3}
    reviewed = {r.org for r in parsed.records if Role.REVIEWER in r.roles}
    assert townships <= reviewed
    assert {r.rank for r in parsed.records} >= {"副科级", "正科级", "副县级", "正县级"}
    posts = {r.post for r in parsed.records}
    assert {"村文书", "网格员", "车间主任", "科员", "窗口工作人员", "教师"} <= posts


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_written_files_read_back_the_same(tmp_path, suffix):
    rows = generate_roster(300)
    path = tmp_path / f"demo.{suffix}"
    assert write_roster(path, rows) == 300
    parsed = parse_roster(path)
    assert parsed.ok
    assert [(r.phone, r.name, r.org) for r in parsed.records] == [
        (row[3], row[2], row[0]) for row in rows
    ]


async def test_small_demo_imports_cleanly_with_every_role_and_the_cast(store):
    result = await load_demo(store, 150)
    assert result.ok, result.errors
    assert result.created == 150 and result.deactivated == 0
    async with store.read() as s:
        orgs = {o.full_name: o for o in (await s.exec(select(Org))).all()}
        members = {m.phone: m for m in (await s.exec(select(Member))).all()}
        grants = {(g.member_id, g.role, g.org_id) for g in (await s.exec(select(RoleGrant))).all()}
    assert {role for _, role, _ in grants} == set(Role)
    for person in DEMO_PEOPLE:
        member = members[person.phone]
        assert member.name == person.name and member.active
        assert member.org_id == orgs[person.org].id
        held = {(role, org) for mid, role, org in grants if mid == member.id}
        assert held == {(role, orgs[person.org].id) for role in person.roles}, person.name
    village, township = orgs[VILLAGE_BRANCH], orgs[TOWNSHIP]
    assert village.parent_id == township.id and village.type is OrgType.VILLAGE
    assert village.path.startswith(township.path)

    again = await load_demo(store, 150)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 150)
