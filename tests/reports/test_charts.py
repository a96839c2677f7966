"""Charts draw Chinese with the shipped CJK font: no missing glyph, no tofu."""

from __future__ import annotations

import io
import warnings

from matplotlib import font_manager
from PIL import Image

from models import Org
from reports import charts
from reports.common import Labels
from tests.reports.conftest import TODAY, build_records


def test_the_font_matplotlib_resolves_is_the_shipped_cjk_font():
    prop = charts.register_font()
    resolved = font_manager.findfont(prop, fallback_to_default=False)
    assert resolved == str(charts.font_path())
    assert "CJK" in font_manager.FontProperties(fname=resolved).get_name()


async def test_every_chart_renders_without_a_missing_glyph(store, people):
    rec = await build_records(store, people, member_items=30, org_items=5)
    async with store.read() as s:
        city = await s.get(Org, people.orgs["city"])
        village = await s.get(Org, people.orgs["village"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            drawn = await charts.charts_of_level(
                s, rec.campaign, city, today=TODAY, locale="zh_CN"
            )
            drawn += await charts.charts_of_level(
                s, rec.campaign, village, today=TODAY, locale="zh_CN"
            )
            drawn += await charts.charts_of_level(s, rec.campaign, city, today=TODAY, locale="en")
    glyphs = [str(w.message) for w in caught if "missing" in str(w.message).lower()]
    assert not glyphs, glyphs
    assert [c.key for c in drawn[:3]] == ["fulfilment", "trend", "pledging"]
    for chart in drawn:
        image = Image.open(io.BytesIO(chart.png))
        assert image.format == "PNG" and image.size == (1080, 1350)


def test_an_empty_chart_says_so():
    t = Labels("zh_CN")
    png = charts.render_bars(
        charts.Bars("标题", [], [], t("doc.chart.items"), t("doc.chart.none_yet"))
    )
    assert png.startswith(b"\x89PNG")


def test_bars_add_up_to_the_items_without_counting_overdue_twice():
    figures = {
        "items": 10,
        "done": 3,
        "done_month": 1,
        "on_track": 3,
        "blocked": 2,
        "overdue": 2,
        "unreported": 2,
    }
    split = charts.disjoint(figures)
    assert sum(split.values()) == 10
    assert split == {"done": 3, "unreported": 0, "blocked": 2, "on_track": 3, "overdue": 2}


async def test_units_are_in_tree_order_not_ranked(store, people):
    rec = await build_records(store, people, member_items=3, org_items=0)
    async with store.read() as s:
        county = await s.get(Org, people.orgs["county"])
        data = await charts.fulfilment_chart(
            s, rec.campaign, county, "2027-06", TODAY, Labels("zh_CN")
        )
    assert data.units == ["城关镇"]
    assert sum(sum(v) for _, _, v in data.series) == 3


async def test_the_trend_adds_up_the_confirmed_monthly_reports(store, people):
    from models import OrgReport

    rec = await build_records(store, people, member_items=4, org_items=0)
    async with store.write() as s:
        s.add(
            OrgReport(
                campaign_id=rec.campaign.id,
                org_id=people.orgs["village"],
                month="2027-05",
                figures={"items": 4, "done": 1, "on_track": 2, "blocked": 1, "unreported": 0},
                confirmed_by=people.ids["secretary"],
            )
        )
    async with store.read() as s:
        county = await s.get(Org, people.orgs["county"])
        data = await charts.trend_chart(s, rec.campaign, county, TODAY, Labels("zh_CN"))
    assert data.months == ["5月", "6月"]
    series = {key: values for key, _, values in data.series}
    assert [series[k][0] for k in ("done", "on_track", "blocked", "unreported")] == [1, 2, 1, 0]
    assert sum(series[k][1] for k in series) > 0  # this month: the live roll-up
