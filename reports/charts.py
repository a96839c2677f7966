"""Charts of outcomes (never of people or activity): PNGs sized for a phone, in Chinese.

matplotlib's object API only: each chart is its own ``Figure`` on an Agg canvas, so nothing
touches pyplot's global state and charts can be drawn in worker threads (``asyncio.to_thread``)
while the bot goes on. The CJK font ships with the install (PyPI ``mplfonts``, Noto Sans CJK
SC) and is registered once at start-up (``register_font``); every text element names it, so no
glyph falls back to a font without Chinese.

Units are shown in the order of the organization tree, never sorted by their figures: a chart
shows where things stand, it does not rank anyone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from campaign import rollup, spotcheck
from campaign.documents import Chart
from campaign.fulfil import month_of
from models.campaign import Campaign
from models.org import Org
from models.progress import OrgReport
from reports.common import Labels, campaign_months

FONT_FILE = "NotoSansCJKsc-Regular.otf"
#: a phone screen held upright: 1080 × 1350 pixels
SIZE = (7.2, 9.0)
DPI = 150
#: the most units one chart shows; more are summed into the last bar
MAX_BARS = 24
FULFILMENT = ("done", "on_track", "blocked", "overdue", "unreported")
PLEDGING = ("published", "approved", "in_review", "returned", "drafting", "not_drafted")
COLORS = {
    "done": "#2e7d32",
    "on_track": "#64b5f6",
    "blocked": "#ffb300",
    "overdue": "#d32f2f",
    "unreported": "#bdbdbd",
    "published": "#2e7d32",
    "approved": "#81c784",
    "in_review": "#64b5f6",
    "returned": "#ffb300",
    "drafting": "#ce93d8",
    "not_drafted": "#bdbdbd",
    "excellent": "#2e7d32",
    "good": "#64b5f6",
    "fair": "#ffb300",
    "poor": "#d32f2f",
    "pending": "#bdbdbd",
}
#: the series of the grade chart: the four grades and 待评
GRADES = ("excellent", "good", "fair", "poor", "pending")


class FontMissing(RuntimeError):
    """The CJK font that ships with the install is not there: charts would draw boxes."""


def font_path() -> Path:
    """Return the shipped CJK font file.

    Raises:
        FontMissing: the ``mplfonts`` package or its Noto Sans CJK SC file is missing.
    """
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise FontMissing("the mplfonts package (Noto Sans CJK SC) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / FONT_FILE
    if not path.is_file():
        raise FontMissing(f"{path} is missing")
    return path


@cache
def register_font() -> font_manager.FontProperties:
    """Register the shipped CJK font with matplotlib (once) and return it for text elements."""
    path = font_path()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    return font_manager.FontProperties(family=name, size=11)


@dataclass(frozen=True)
class Bars:
    """Stacked horizontal bars: one per unit, one segment per series."""

    title: str
    units: list[str]
    series: list[tuple[str, str, list[int]]]  # (key, label, values per unit)
    xlabel: str
    empty: str


@dataclass(frozen=True)
class Lines:
    """A monthly trend: one line per series."""

    title: str
    months: list[str]
    series: list[tuple[str, str, list[int]]]
    ylabel: str
    empty: str


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    FigureCanvasAgg(fig).print_png(out)
    return out.getvalue()


def _style_axes(ax, font) -> None:
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_fontproperties(font)
    ax.spines[["top", "right"]].set_visible(False)


def render_bars(chart: Bars) -> bytes:
    """Draw stacked bars (blocking: call it in a thread)."""
    font = register_font()
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle(chart.title, fontproperties=font, fontsize=14)
    if not chart.units:
        ax.text(0.5, 0.5, chart.empty, ha="center", fontproperties=font)
        ax.set_axis_off()
        return _png(fig)
    positions = list(range(len(chart.units)))
    left = [0] * len(chart.units)
    for key, label, values in chart.series:
        ax.barh(positions, values, left=left, color=COLORS.get(key), label=label, height=0.7)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks(positions, chart.units)
    ax.invert_yaxis()  # the tree's order, top down
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(chart.xlabel, fontproperties=font)
    _style_axes(ax, font)
    ax.legend(prop=font, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, frameon=False)
    return _png(fig)


def render_lines(chart: Lines) -> bytes:
    """Draw a monthly trend (blocking: call it in a thread)."""
    font = register_font()
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle(chart.title, fontproperties=font, fontsize=14)
    if not chart.months:
        ax.text(0.5, 0.5, chart.empty, ha="center", fontproperties=font)
        ax.set_axis_off()
        return _png(fig)
    x = list(range(len(chart.months)))
    for key, label, values in chart.series:
        ax.plot(x, values, marker="o", color=COLORS.get(key), label=label, linewidth=2)
    ax.set_xticks(x, chart.months)
    ax.set_ylabel(chart.ylabel, fontproperties=font)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    _style_axes(ax, font)
    ax.legend(prop=font, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, frameon=False)
    return _png(fig)


# -- the data of each chart, from the records -----------------------------------------------------


def disjoint(figures: dict) -> dict[str, int]:
    """Split a unit's item figures into segments that add up to its items.

    The roll-up counts an overdue item also by its report this month; a bar shows each item
    once, so overdue items are taken out of the not-reported ones first (an overdue item is
    mostly one nobody reports on), then out of those with difficulty, then out of those on
    track.
    """
    items, done, overdue = figures["items"], figures["done"], figures["overdue"]
    rest = overdue
    parts = {}
    for key in ("unreported", "blocked", "on_track"):
        take = min(rest, figures[key])
        parts[key] = figures[key] - take
        rest -= take
    out = {"done": done, **parts, "overdue": overdue}
    # whatever the month's reports do not explain (reported on track, then crossed off) is
    # shown as on track, so a bar is never longer or shorter than the unit's items
    out["on_track"] += items - sum(out.values())
    out["on_track"] = max(out["on_track"], 0)
    return out


def _cap(units: list[str], values: dict[str, list[int]], more: str) -> list[str]:
    if len(units) <= MAX_BARS:
        return units
    for key, v in values.items():
        values[key] = [*v[: MAX_BARS - 1], sum(v[MAX_BARS - 1 :])]
    return [*units[: MAX_BARS - 1], more]


async def fulfilment_chart(
    session: AsyncSession, campaign: Campaign, level: Org, month: str, today: date, t: Labels
) -> Bars:
    """Return the data of "fulfilment by unit" from the roll-up of a level."""
    summary = await rollup.monthly_rollup(session, campaign.id, level.id, month, today)
    parts = summary["children"] or (
        [{"org": level.name, "figures": summary["figures"]}] if summary["figures"]["items"] else []
    )
    units = [p["org"] for p in parts]
    split = [disjoint(p["figures"]) for p in parts]
    values = {k: [s[k] for s in split] for k in FULFILMENT}
    units = _cap(units, values, t("doc.total"))
    name = t("doc.chart.fulfilment")
    return Bars(
        title=t("doc.chart.title", org=level.name, name=name, period=month),
        units=units,
        series=[(k, t(f"doc.chart.series.{k}"), values[k]) for k in FULFILMENT],
        xlabel=t("doc.chart.items"),
        empty=t("doc.chart.none_yet"),
    )


async def trend_chart(
    session: AsyncSession, campaign: Campaign, level: Org, today: date, t: Labels
) -> Lines:
    """Return the data of a level's monthly trend, as reported up month by month.

    Past months add up the monthly reports the branches confirmed (逐级上报: the figures each
    secretary submitted, kept with the report); this month, not yet reported, is the live
    roll-up of /summary.
    """
    current = month_of(today)
    months = [m for m in campaign_months(campaign) if m <= current]
    totals: dict[str, dict[str, int]] = {m: dict.fromkeys(FULFILMENT, 0) for m in months}
    rows = await session.exec(
        select(OrgReport.month, OrgReport.figures)
        .join(Org, col(Org.id) == OrgReport.org_id)
        .where(
            OrgReport.campaign_id == campaign.id,
            col(Org.path).startswith(level.path),
            OrgReport.month < current,
        )
    )
    for month, figures in rows.all():
        if month in totals:
            for key in FULFILMENT:
                totals[month][key] += int((figures or {}).get(key) or 0)
    live = await rollup.monthly_rollup(session, campaign.id, level.id, current, today)
    for key in FULFILMENT:
        totals[current][key] = live["figures"][key]
    shown = [m for m in months if any(totals[m].values())]
    series = [
        (key, t(f"doc.chart.series.{key}"), [totals[m][key] for m in shown])
        for key in ("done", "on_track", "blocked", "unreported")
    ]
    name = t("doc.chart.trend")
    return Lines(
        title=t("doc.chart.title", org=level.name, name=name, period=campaign.name),
        months=[t.month(m) for m in shown],
        series=series,
        ylabel=t("doc.chart.items"),
        empty=t("doc.chart.none_yet"),
    )


async def pledging_chart(
    session: AsyncSession, campaign: Campaign, level: Org, today: date, t: Labels
) -> Bars:
    """Return the data of "pledging by unit": members' pledges by state, per unit below."""
    rows = await spotcheck.pledging_by_unit(session, campaign.id, level)
    units = [r.org for r in rows]
    values = {k: [getattr(r, k) for r in rows] for k in PLEDGING}
    units = _cap(units, values, t("doc.total"))
    name = t("doc.chart.pledging")
    return Bars(
        title=t("doc.chart.title", org=level.name, name=name, period=today.isoformat()),
        units=units,
        series=[(k, t(f"doc.chart.series.{k}"), values[k]) for k in PLEDGING],
        xlabel=t("doc.chart.units_people"),
        empty=t("doc.chart.none_yet"),
    )


def grades_chart(results: dict, t: Labels) -> Bars:
    """Return the data of a branch's grade chart from ``campaign.evaluate.branch_results``.

    One bar for the members' final grades (待评 included), one for the organization's, then
    one per side with the grades that side gave the members. Outcomes counted, never people
    ordered: the chart names no member.
    """
    units, values = [], {k: [] for k in GRADES}
    for kind in ("member", "org"):
        counts = results.get("kinds", {}).get(kind)
        if counts and any(counts.values()):
            units.append(t(f"eval_chart.kind.{kind}"))
            for key in GRADES:
                values[key].append(int(counts.get(key, 0)))
    for part in results.get("sides", []):
        units.append(t(f"eval.side.member.{part['side']}"))
        for key in GRADES:
            values[key].append(int(part["counts"].get(key, 0)))
    period = t("eval_chart.quarter", q=results.get("quarter", ""))
    name = t("doc.chart.grades")
    return Bars(
        title=t("doc.chart.title", org=results.get("org", ""), name=name, period=period),
        units=units,
        series=[(k, t(f"eval_chart.series.{k}"), values[k]) for k in GRADES],
        xlabel=t("eval_chart.xlabel"),
        empty=t("doc.chart.none_yet"),
    )


async def draw_grades(results: dict, *, locale: str) -> Chart:
    """Draw a branch's grade chart off the event loop."""
    t = Labels(locale)
    png = await asyncio.to_thread(render_bars, grades_chart(results, t))
    return Chart("grades", t("doc.chart.grades"), png)


async def charts_of_level(
    session: AsyncSession,
    campaign: Campaign,
    level: Org,
    *,
    today: date,
    locale: str,
    which: tuple[str, ...] = ("fulfilment", "trend", "pledging"),
) -> list[Chart]:
    """Gather the data of a level's charts, then draw them off the event loop."""
    t = Labels(locale)
    month = month_of(today)
    out = []
    for key in which:
        if key == "fulfilment":
            data = await fulfilment_chart(session, campaign, level, month, today, t)
            png = await asyncio.to_thread(render_bars, data)
        elif key == "trend":
            data = await trend_chart(session, campaign, level, today, t)
            png = await asyncio.to_thread(render_lines, data)
        else:
            data = await pledging_chart(session, campaign, level, today, t)
            png = await asyncio.to_thread(render_bars, data)
        out.append(Chart(key, t(f"doc.chart.{key}"), png))
    return out


async def children_of(session: AsyncSession, org: Org) -> list[Org]:
    """Return the units directly below an organization, in tree order."""
    rows = await session.exec(select(Org).where(Org.parent_id == org.id).order_by(col(Org.id)))
    return list(rows.all())
