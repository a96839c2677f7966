"""Wording found wrong in use: doubled words, slashes in names, guessed plurals, odd terms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.org import formal_name
from templates import LOCALES, Catalog


@pytest.fixture(scope="module")
def cat():
    return Catalog()


def test_org_paths_read_as_names():
    assert formal_name("陇南市/武都区/城关镇/东江村党支部") == "武都区城关镇东江村党支部"
    assert formal_name("陇南市/武都区") == "陇南市武都区"
    assert formal_name("陇南市") == "陇南市"
    assert formal_name("陇南市/陇南市财政局党支部") == "陇南市财政局党支部"
    assert formal_name("陇南市/武都区/武都区第一中学党支部") == "陇南市武都区第一中学党支部"


@pytest.mark.parametrize("status", ["approved", "published"])
def test_no_doubled_already(cat, status):
    # Found: "您的承诺已已公示".
    source = cat.messages["zh_CN"]["pledge.published"]
    assert '已{{ t("status.' not in source
    assert cat.render(f"status.{status}", "zh_CN").startswith("已")


def test_no_doubled_role_words(cat):
    # Found: "党支部党组织" in the pledge letter, "审核人审核" in the submission notice.
    for role in ("secretary", "reviewer"):
        text = cat.render(
            "pledge.submitted",
            "zh_CN",
            version=1,
            role=role,
            org="东江村党支部",
            escalated=False,
            peers=0,
            warnings=0,
        )
        assert (
            "审核人审核" not in text
            and "党支部」党组织" not in text
            and "党支部党组织" not in text
        )


def test_english_has_plurals_and_the_standard_terms(cat):
    en = cat.messages["en"]
    assert not [k for k, v in en.items() if "(s)" in v], "guessed plurals"
    assert "Scientific Outlook on Development" in en["criterion_full.sci"]
    assert "advanced nature" in en["criterion_full.adv"]
    assert cat.render("quality.summary_block", "en", count=1).startswith("1 point must")
    assert cat.render("quality.summary_block", "en", count=2).startswith("2 points must")


def test_no_slashed_org_paths_in_formal_texts(cat):
    slashed = re.compile(r"[\u4e00-\u9fff]/[\u4e00-\u9fff]")
    for locale in LOCALES:
        for key, source in cat.messages[locale].items():
            assert not slashed.search(source), key


@pytest.mark.parametrize("org", ["东江村党支部", "城关镇党委", "陇南市财政局"])
def test_the_pledge_letter_names_the_organization_once(cat, org):
    text = cat.render(
        "publish.letter",
        "zh_CN",
        kind="org",
        org=org,
        owner="李秀英",
        post="",
        items=[],
        published_at="",
    )
    assert "党支部党组织" not in text and "党委党组织" not in text
    assert ("党组织为" in text) == (org == "陇南市财政局")


@pytest.mark.parametrize("name", ["README.md", "ARCHITECTURE.md"])
def test_the_docs_stand_on_their_own(name):
    # Found: both pointed at ../shared/DESIGN.md, outside the repository.
    text = (Path(__file__).resolve().parent.parent / name).read_text(encoding="utf-8")
    assert "../" not in text and "shared/" not in text


@pytest.mark.parametrize(("locale", "month"), [("zh_CN", "2027年3月"), ("en", "March 2027")])
def test_the_member_reads_months_not_iso_months(cat, locale, month):
    for key, extra in (
        ("report.prompt", {"kind": "member", "owner": "张建国", "org": "", "items": []}),
        ("report.after_binding", {}),
        ("report.month_closed", {}),
    ):
        text = cat.render(key, locale, month="2027-03", **extra)
        assert month in text and "2027-03" not in text, key


def test_no_example_date_with_a_fixed_year(cat):
    # Found: examples such as 2026-06-30 and 2011-06-30 were in the past when read.
    fixed_year = re.compile(r"(?<![{\w])(19|20)\d\d-\d\d(-\d\d)?")
    for locale in LOCALES:
        for key, source in cat.messages[locale].items():
            assert not fixed_year.search(source), (locale, key)
