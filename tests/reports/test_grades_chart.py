"""The grade chart of 每季一评: counts of outcomes per kind and per side, in Chinese, no tofu."""

from __future__ import annotations

import io
import warnings

from matplotlib import font_manager
from PIL import Image

from reports import charts
from reports.common import Labels

RESULTS = {
    "org": "东江村党支部",
    "quarter": "2027Q1",
    "entries": [],
    "kinds": {
        "member": {"excellent": 2, "good": 2, "fair": 0, "poor": 0, "pending": 1},
        "org": {"excellent": 0, "good": 1, "fair": 0, "poor": 0, "pending": 0},
    },
    "sides": [
        {"side": "self", "counts": {"excellent": 4, "good": 0, "fair": 0, "poor": 0}},
        {"side": "peer", "counts": {"excellent": 3, "good": 10, "fair": 2, "poor": 0}},
        {"side": "org", "counts": {"excellent": 1, "good": 2, "fair": 1, "poor": 0}},
    ],
}


def test_the_grade_chart_counts_outcomes_and_names_nobody():
    data = charts.grades_chart(RESULTS, Labels("zh_CN"))
    assert data.title == "东江村党支部 · 评议等次分布（2027年第1季度）"
    assert data.units == ["党员综合评定", "党组织综合评定", "自评", "互评", "组织评价"]
    by_key = {key: values for key, _, values in data.series}
    assert [label for _, label, _ in data.series] == ["优秀", "良好", "一般", "差", "待评"]
    # the members' bar: 2 优秀, 2 良好, 1 待评 (five members, nobody named or ordered)
    assert [by_key[k][0] for k in charts.GRADES] == [2, 2, 0, 0, 1]
    assert [by_key[k][3] for k in charts.GRADES] == [3, 10, 2, 0, 0]
    assert sum(by_key["pending"][2:]) == 0  # a side's bar counts grades given only


def test_an_empty_quarter_says_so():
    data = charts.grades_chart({"org": "x", "quarter": "2027Q2"}, Labels("en"))
    assert data.units == [] and data.empty
    assert charts.render_bars(data).startswith(b"\x89PNG")


async def test_the_grade_chart_uses_the_shipped_cjk_font_without_a_missing_glyph():
    prop = charts.register_font()
    assert font_manager.findfont(prop, fallback_to_default=False) == str(charts.font_path())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = [await charts.draw_grades(RESULTS, locale=loc) for loc in ("zh_CN", "en")]
    glyphs = [str(w.message) for w in caught if "missing" in str(w.message).lower()]
    assert not glyphs, glyphs
    assert [c.key for c in drawn] == ["grades", "grades"]
    assert drawn[0].name == "评议等次分布"
    for chart in drawn:
        image = Image.open(io.BytesIO(chart.png))
        assert image.format == "PNG" and image.size == (1080, 1350)
