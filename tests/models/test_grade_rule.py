"""The grade rule as data: hand-computed cases (all sides, missing sides, ties at thresholds)."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from models.errors import DomainError
from models.evaluation import (
    Grade,
    Side,
    check_rule,
    combine,
    default_rule,
    ended_quarter,
    public_mean,
)
from models.pledge import OwnerKind

E, G, F, P = Grade.EXCELLENT, Grade.GOOD, Grade.FAIR, Grade.POOR
RULE = default_rule()  # points 100/85/70/50; weights self 10, peer 20, org 40, evaluator 30


def member(**sides):
    return combine(RULE, OwnerKind.MEMBER, {Side(k): v for k, v in sides.items()})


def test_the_defaults_are_what_the_documentation_says():
    assert RULE["weights"]["member"] == {"self": 10, "peer": 20, "org": 40, "evaluator": 30}
    assert RULE["weights"]["org"] == {"self": 20, "upper": 50, "public": 30}
    assert RULE["points"] == {"excellent": 100, "good": 85, "fair": 70, "poor": 50}
    assert RULE["thresholds"] == {"excellent": 90, "good": 80, "fair": 65}
    assert check_rule(RULE) is RULE


def test_all_four_sides():
    # peers (85+100+70)/3 = 85; (10·100 + 20·85 + 40·85 + 30·100) / 100 = 91
    got = member(self=[E], peer=[G, E, F], org=[G], evaluator=[E])
    assert got.score == 91
    assert got.grade is E
    assert got.missing == []
    assert [p.count for p in got.parts] == [1, 3, 1, 1]


def test_a_missing_side_is_left_out_and_named():
    # (10·85 + 20·85 + 40·70) / 70 = 5350/70 = 76.43 → 一般
    got = member(self=[G], peer=[G, G], org=[F])
    assert got.score == Fraction(5350, 70)
    assert got.grade is F
    assert got.missing == ["evaluator"]
    assert got.as_dict()["score"] == 76.4


def test_without_the_organizations_rating_the_result_is_pending():
    got = member(self=[E], peer=[E, E], evaluator=[E])
    assert got.grade is None and got.score is None
    assert got.missing == ["org"]


@pytest.mark.parametrize(
    ("sides", "score", "grade"),
    [
        # (10·50 + 40·100) / 50 = 90 exactly: at the threshold reaches 优秀
        ({"self": [P], "org": [E]}, 90, E),
        # (20·70 + 40·85) / 60 = 80 exactly: 良好
        ({"peer": [F, F], "org": [G]}, 80, G),
        # (10·50 + 20·50 + 40·70 + 30·85) / 100 = 68.5 → 一般; (…·50 + 40·50 …) → 差
        ({"self": [P], "peer": [P], "org": [F], "evaluator": [G]}, Fraction(685, 10), F),
        ({"self": [P], "peer": [P], "org": [P], "evaluator": [G]}, Fraction(605, 10), P),
    ],
)
def test_ties_at_thresholds(sides, score, grade):
    got = member(**sides)
    assert got.score == score
    assert got.grade is grade


def test_just_below_a_threshold_is_the_grade_below():
    rule = default_rule()
    rule["thresholds"] = {"excellent": 91, "good": 80, "fair": 65}
    got = combine(
        rule,
        OwnerKind.MEMBER,
        {Side.SELF: [E], Side.PEER: [G, E, F], Side.ORG: [G], Side.EVALUATOR: [E]},
    )
    assert got.score == 91 and got.grade is E
    rule["thresholds"]["excellent"] = 92
    got = combine(
        rule,
        OwnerKind.MEMBER,
        {Side.SELF: [E], Side.PEER: [G, E, F], Side.ORG: [G], Side.EVALUATOR: [E]},
    )
    assert got.grade is G


def test_an_organization_with_the_public_poll():
    # public (2·100 + 0·80 + 1·40) / 3 = 80; (20·85 + 50·100 + 30·80) / 100 = 91
    totals = {"satisfied": 2, "basic": 0, "dissatisfied": 1}
    assert public_mean(RULE, totals) == 80
    got = combine(RULE, OwnerKind.ORG, {Side.SELF: [G], Side.UPPER: [E]}, totals)
    assert got.score == 91 and got.grade is E
    assert got.parts[2].count == 3
    # no votes: the public side is left out; without the level above: pending
    got = combine(RULE, OwnerKind.ORG, {Side.SELF: [G], Side.UPPER: [G]}, {})
    assert got.missing == ["public"] and got.score == 85 and got.grade is G
    assert combine(RULE, OwnerKind.ORG, {Side.SELF: [E]}, totals).grade is None


def test_changed_weights_change_the_grade():
    rule = default_rule()
    rule["weights"]["member"] = {"self": 0, "peer": 0, "org": 1, "evaluator": 0}
    got = combine(rule, OwnerKind.MEMBER, {Side.SELF: [E], Side.ORG: [F]})
    assert got.score == 70 and got.grade is F


@pytest.mark.parametrize(
    "broken",
    [
        lambda r: r["weights"]["member"].pop("peer"),
        lambda r: r["weights"]["org"].update(public=-1),
        lambda r: r["weights"]["member"].update(self=0, peer=0, org=0, evaluator=0),
        lambda r: r["points"].update(good=101),
        lambda r: r["thresholds"].update(good=95),
        lambda r: r.pop("public_points"),
        lambda r: r["thresholds"].update(fair="60"),
    ],
)
def test_a_broken_rule_is_refused(broken):
    rule = default_rule()
    broken(rule)
    with pytest.raises(DomainError) as err:
        check_rule(rule)
    assert err.value.key == "eval.bad_rule"


def test_the_quarter_just_ended():
    q = ended_quarter([1, 4, 7, 10], date(2027, 4, 1))
    assert (q.key, q.first, q.last) == ("2027Q1", date(2027, 1, 1), date(2027, 3, 31))
    q = ended_quarter([1, 4, 7, 10], date(2028, 1, 15))
    assert (q.key, q.first, q.last) == ("2027Q4", date(2027, 10, 1), date(2027, 12, 31))
    assert ended_quarter([1, 4, 7, 10], date(2027, 5, 1)) is None
    q = ended_quarter([3, 6, 9, 12], date(2027, 3, 2))
    assert (q.key, q.first, q.last) == ("2026Q4", date(2026, 12, 1), date(2027, 2, 28))
