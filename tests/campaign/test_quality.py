import json
import random
import time
from dataclasses import replace
from datetime import date

import pytest

from campaign.quality import (
    BASIC_TOPICS,
    CODES,
    FIELD_LIMITS,
    MIN_MEASURES_CHARS,
    NEAR_DUPLICATE_THRESHOLD,
    PLACEHOLDER_RE,
    REVIEWER_VARIANTS,
    CorpusIndex,
    Finding,
    ItemDraft,
    OtherText,
    Severity,
    basic_items,
    blocking,
    check_pledge,
    comparable_text,
    goal_checkable,
    ngrams,
    normalize,
    ordinary_duty_phrases,
    placeholders,
    similarity,
    slogan_score,
)
from models.org import OrgType
from models.pledge import PledgeItem
from templates import LOCALES, catalog

WINDOW = (date(2011, 3, 1), date(2011, 12, 31))
TODAY = date(2011, 4, 10)
DEADLINE = date(2011, 12, 20)

#: Items a reviewer would approve as they are.
GOOD_ITEMS = [
    ItemDraft(
        "帮助本村5户困难群众发展花椒种植，年底前户均增收2000元",
        "年底前5户困难群众户均增收2000元",
        "联系县林业站技术员每季度上门指导1次，协调小额贷款购买花椒苗",
        DEADLINE,
    ),
    ItemDraft(
        "每月走访辖区内的空巢老人和留守儿童，帮助解决实际困难",
        "全年走访不少于12次，为每户建立服务台账",
        "与社区网格员分片包户，每次走访做好记录，及时反映问题",
        DEADLINE,
    ),
    ItemDraft(
        "窗口办件当日办结，方便群众办事",
        "当日办结率95%以上，全年零投诉",
        "推行一次性告知和首问负责制，公开办事流程和时限",
        DEADLINE,
    ),
    ItemDraft(
        "带领车间开展技术革新，降低生产线能耗",
        "年底前车间综合能耗降低5%",
        "组织党员技术攻关小组，每月召开1次攻关会，推广节能改造",
        DEADLINE,
    ),
    ItemDraft(
        "为本村修建便民桥一座，解决群众雨季出行难",
        "9月底前建成通行",
        "筹集资金十万元，组织党员义务投工投劳",
        date(2011, 9, 30),
    ),
]

VAGUE_GOAL = "让群众满意"
VAGUE_MEASURES = "加强学习，转变作风，提高效能"


def item(content: str = GOOD_ITEMS[0].content, **changes) -> ItemDraft:
    return replace(GOOD_ITEMS[0], content=content, **changes)


def check(items, corpus=(), **kwargs) -> list[Finding]:
    return check_pledge(items, WINDOW, TODAY, corpus, **kwargs)


def codes(findings, index: int | None = 0) -> set[str]:
    return {f.code for f in findings if f.item_index == index}


def only(findings, code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, findings
    return matching[0]


def fill(draft: ItemDraft, value: str = "5") -> ItemDraft:
    def sub(text: str) -> str:
        return PLACEHOLDER_RE.sub(value, text)

    return replace(
        draft, content=sub(draft.content), goal=sub(draft.goal), measures=sub(draft.measures)
    )


def render_zh(key: str) -> str:
    return catalog().render(key, "zh_CN")


# --------------------------------------------------------------------------- good items


@pytest.mark.parametrize("draft", GOOD_ITEMS, ids=lambda d: d.content[:12])
def test_good_item_has_no_finding(draft):
    assert check([draft]) == []


def test_good_items_together_have_no_finding():
    assert check(GOOD_ITEMS) == []


def test_a_pledge_item_row_is_checked_like_a_draft():
    row = PledgeItem(
        pledge_id=1,
        **{k: getattr(GOOD_ITEMS[0], k) for k in ("content", "goal", "measures", "deadline")},
    )
    assert check([row]) == []
    assert codes(check([PledgeItem(pledge_id=1)])) >= {"no_content", "no_goal", "no_deadline"}


# --------------------------------------------------------------------------- Q4 操作性


def test_no_items_blocks():
    findings = check([])
    assert [(f.item_index, f.code, f.severity) for f in findings] == [
        (None, "no_items", Severity.BLOCK)
    ]
    assert blocking(findings)


def test_empty_item_misses_all_four_and_blocks():
    findings = check([ItemDraft()])
    assert codes(findings) == {"no_content", "no_goal", "no_measures", "no_deadline"}
    assert all(f.severity is Severity.BLOCK for f in findings)
    assert blocking(findings)


def test_punctuation_only_is_empty():
    findings = check([item(goal="……", measures="。。。，，，！")])
    assert codes(findings) == {"no_goal", "no_measures"}


@pytest.mark.parametrize("measures", ["认真落实", "加强学习。", "抓落实", ""])
def test_measures_too_short_to_be_a_measure(measures):
    finding = only(check([item(measures=measures)]), "no_measures")
    assert finding.severity is Severity.BLOCK
    assert finding.context == {"item": 1, "min_chars": MIN_MEASURES_CHARS}


def test_six_characters_of_measures_are_enough():
    assert "no_measures" not in codes(check([item(measures="每月走访一次")]))


@pytest.mark.parametrize("goal", ["", "无", "  "])
def test_no_goal_blocks(goal):
    assert only(check([item(goal=goal)]), "no_goal").severity is Severity.BLOCK


@pytest.mark.parametrize(
    "goal",
    [
        "年底前户均增收2000元",
        "两个月内完成",
        "办结率100%",
        "实现零投诉",
        "每月走访一次",
        "建成文化广场",
        "全村三个组都通自来水",
        "覆盖全村",
        "费用控制在10万元以内",
        "帮扶3户",
        "六月底前",
        "村务按月公开",
    ],
)
def test_checkable_goal(goal):
    assert goal_checkable(goal)
    assert "goal_not_checkable" not in codes(check([item(goal=goal)]))


@pytest.mark.parametrize(
    "goal",
    [
        "群众满意",
        "进一步提高服务水平",
        "取得明显成效",
        "服务千家万户",
        "争创一流",
        "做一名合格党员",
        "有较大改善",
    ],
)
def test_vague_goal_warns_but_does_not_block(goal):
    findings = check([item(goal=goal)])
    assert only(findings, "goal_not_checkable").severity is Severity.WARN
    assert not blocking(findings)


def test_no_deadline_blocks():
    assert only(check([item(deadline=None)]), "no_deadline").severity is Severity.BLOCK


def test_deadline_in_the_past_blocks():
    finding = only(check([item(deadline=date(2011, 4, 1))]), "deadline_outside_campaign")
    assert finding.severity is Severity.BLOCK
    assert finding.context == {
        "item": 1,
        "deadline": "2011-04-01",
        "earliest": "2011-04-10",
        "latest": "2011-12-31",
        "reason": "before",
    }


def test_deadline_after_the_campaign_blocks():
    finding = only(check([item(deadline=date(2012, 1, 15))]), "deadline_outside_campaign")
    assert finding.context["reason"] == "after"


@pytest.mark.parametrize("deadline", [TODAY, WINDOW[1]])
def test_deadline_bounds_are_inclusive(deadline):
    assert check([item(deadline=deadline)]) == []


def test_deadline_before_the_campaign_starts_blocks_even_if_not_past():
    findings = check_pledge([item(deadline=date(2011, 2, 25))], WINDOW, date(2011, 2, 20))
    assert only(findings, "deadline_outside_campaign").context["earliest"] == "2011-03-01"


def test_field_limits_are_the_column_sizes():
    for name, limit in FIELD_LIMITS.items():
        assert PledgeItem.__table__.c[name].type.length == limit


@pytest.mark.parametrize(("name", "limit"), list(FIELD_LIMITS.items()))
def test_too_long_blocks(name, limit):
    text = "每月走访困难群众1次" * (limit // 10 + 1)
    finding = only(check([replace(GOOD_ITEMS[0], **{name: text})]), "too_long")
    assert finding.severity is Severity.BLOCK
    assert finding.context == {"item": 1, "field": name, "limit": limit, "length": len(text)}


def test_at_the_limit_is_not_too_long():
    text = "每月走访困难群众1次" * 100
    assert "too_long" not in codes(check([item(measures=text[: FIELD_LIMITS["measures"]])]))


# --------------------------------------------------------------------------- Q2 实践性

SLOGANS = [
    "全心全意为人民服务，发挥先锋模范作用",
    "争当先锋，做一名合格党员",
    "努力做到不断提高服务水平",
    "爱岗敬业，无私奉献，开拓进取",
    "带头学习提高，带头争创佳绩，带头服务群众",
    "认真学习，努力工作，树立良好形象",
    "进一步提高服务质量，树立良好形象",
    "求真务实，勤勉敬业，服务为民",
    "带领群众共同致富，发挥先锋模范作用",
]


@pytest.mark.parametrize("content", SLOGANS)
def test_slogan_warns(content):
    findings = check([item(content, goal=VAGUE_GOAL, measures=VAGUE_MEASURES)])
    finding = only(findings, "slogan")
    assert finding.severity is Severity.WARN
    assert finding.item_index == 0
    assert finding.context["score"] >= 0.5
    assert not blocking(findings)


@pytest.mark.parametrize(
    "content",
    [
        "修建村道，硬化路面，安装路灯",  # four-character clauses, but real work
        "发展花椒产业，发挥先锋模范作用",  # one slogan, half of the text concrete
        "进一步加强村道维护，年底前修复3处塌方",
        "全心全意为人民服务，为本村留守儿童义务辅导功课",
    ],
)
def test_not_a_slogan(content):
    assert "slogan" not in codes(check([item(content, goal=VAGUE_GOAL, measures=VAGUE_MEASURES)]))


def test_slogan_with_a_concrete_goal_is_not_flagged():
    draft = item("全心全意为人民服务", goal="年底前为本村5户留守老人每月送医送药1次")
    assert "slogan" not in codes(check([draft]))


def test_slogan_score_scale():
    assert slogan_score("") == 0
    assert slogan_score("爱岗敬业，无私奉献，开拓进取") == 1
    assert slogan_score("帮助本村5户困难群众发展花椒种植") == 0
    assert slogan_score("修建村道，硬化路面，安装路灯") < 0.5


# --------------------------------------------------------------------------- Q1 先进性


@pytest.mark.parametrize(
    ("content", "phrases"),
    [
        ("按时交纳党费，按时参加三会一课", ["按时交纳党费", "参加三会一课"]),
        ("遵守单位各项规章制度，不迟到不早退", ["遵守单位各项规章制度", "不迟到", "不早退"]),
        (
            "认真完成领导交办的各项工作任务，服从组织安排",
            ["完成领导交办的各项工作任务", "服从组织安排"],
        ),
        ("遵纪守法，不参与赌博，廉洁自律", ["遵纪守法", "不参与赌博", "廉洁自律"]),
        ("作为一名党员，我承诺严格遵守党的纪律", ["遵守党的纪律"]),
        ("每月按时缴纳党费", ["按时缴纳党费"]),
        ("做好本职工作", ["做好本职工作"]),
    ],
)
def test_ordinary_duty_warns(content, phrases):
    findings = check([item(content)])
    finding = only(findings, "ordinary_duty")
    assert finding.severity is Severity.WARN
    assert finding.context == {"item": 1, "phrases": phrases}
    assert "slogan" not in codes(findings)


def test_ordinary_duty_with_a_precise_goal_is_still_ordinary():
    draft = item("按时交纳党费", goal="每月5日前交纳，全年12次")
    assert "ordinary_duty" in codes(check([draft]))


@pytest.mark.parametrize(
    "content",
    [
        "按时参加组织生活，帮助本村5户困难群众发展花椒种植",
        "按时交纳党费，每年为本村留守儿童捐助学习用品",
        "遵纪守法，带头移风易俗，婚事新办",
    ],
)
def test_duty_plus_something_more_is_not_ordinary(content):
    assert ordinary_duty_phrases(content) == []
    assert "ordinary_duty" not in codes(check([item(content)]))


# --------------------------------------------------------------------------- Q3 针对性

ORIGINAL = ItemDraft(
    "帮助本村5户困难群众发展花椒种植，年底前户均增收2000元",
    "5户困难群众户均增收2000元",
    "请技术员上门指导，协调贷款购买花椒苗",
    DEADLINE,
)
OTHERS = [
    OtherText(11, "李秀英", 3, comparable_text(ORIGINAL)),
    OtherText(12, "王建军", 3, "每季度组织辖区居民开展一次环境卫生整治\n全年4次"),
    OtherText(13, "赵红梅", 3, "为本村种植花椒的农户提供病虫害防治技术指导\n年底前培训200人次"),
]


@pytest.mark.parametrize(
    ("content", "goal"),
    [
        # different numbers, punctuation and spacing
        ("帮助本村三户困难群众发展花椒种植；年底前户均增收1500元！", "3户困难群众户均增收1500元"),
        # reordered, one word added
        ("年底前帮助本村5户困难群众发展花椒种植，使户均增收2000元", "5户困难群众户均增收2000元"),
        # full-width digits and spaces
        (
            "帮助 本村 ５户 困难群众 发展花椒种植, 年底前 户均增收 ２０００元",
            "5户困难群众户均增收2000元",
        ),
    ],
)
def test_near_duplicate_warns_and_names_the_other_pledge(content, goal):
    findings = check([replace(ORIGINAL, content=content, goal=goal)], OTHERS)
    finding = only(findings, "near_duplicate")
    assert finding.severity is Severity.WARN
    assert finding.context["pledge_id"] == 11
    assert finding.context["owner_name"] == "李秀英"
    assert finding.context["org_id"] == 3
    assert 60 <= finding.context["percent"] <= 100
    assert not blocking(findings)


def test_same_topic_written_differently_is_not_a_duplicate():
    draft = ItemDraft(
        "带领本组村民发展花椒产业，新栽花椒苗500亩",
        "年底前新栽花椒500亩，成活率90%以上",
        "统一购苗，党员示范户带头栽植并包片管护",
        DEADLINE,
    )
    assert "near_duplicate" not in codes(check([draft], OTHERS))
    score = similarity(ngrams(comparable_text(draft)), ngrams(OTHERS[0].text))
    assert 0 < score < NEAR_DUPLICATE_THRESHOLD


def test_threshold_separates_rewording_from_a_new_item():
    reworded = ngrams("每月走访辖区空巢老人，帮他们解决实际困难")
    original = ngrams("每月走访辖区内的空巢老人，帮助解决实际困难")
    neighbour = ngrams("年底前为本村安装路灯20盏")
    assert similarity(reworded, original) >= NEAR_DUPLICATE_THRESHOLD
    assert similarity(ngrams("年底前为本村修建村道3公里"), neighbour) < NEAR_DUPLICATE_THRESHOLD


def test_a_copy_with_a_clause_added_is_still_a_duplicate():
    a = ngrams("每月走访辖区内的空巢老人，帮助解决实际困难")
    b = ngrams("每月走访辖区内的空巢老人，帮助解决实际困难，并为行动不便的老人代购生活用品")
    assert similarity(a, b) >= NEAR_DUPLICATE_THRESHOLD


def test_near_duplicate_reports_the_most_similar_pledge():
    closer = OtherText(14, "孙志刚", 3, comparable_text(ORIGINAL) + "。")
    looser = OtherText(15, "周海燕", 3, "帮助本村5户困难群众发展花椒种植\n户均增收")
    finding = only(check([ORIGINAL], [looser, closer]), "near_duplicate")
    assert finding.context["pledge_id"] == 14


def test_own_pledge_is_not_a_duplicate_of_itself():
    assert "near_duplicate" not in codes(check([ORIGINAL], OTHERS, own_pledge_id=11))


def test_normalize_strips_punctuation_and_numbers():
    assert normalize("帮助 本村５户，年底前增收2,000.5元！") == normalize(
        "帮助本村三户年底前增收1000元"
    )


def test_duplicate_within_the_pledge():
    second = replace(ORIGINAL, content="年底前帮助本村5户困难群众发展花椒种植，使户均增收2000元")
    findings = check([ORIGINAL, GOOD_ITEMS[1], second])
    finding = only(findings, "duplicate_within")
    assert finding.item_index == 2
    assert finding.severity is Severity.WARN
    assert finding.context["other_item"] == 1
    assert finding.context["item"] == 3


def test_distinct_items_are_not_duplicates_within():
    assert "duplicate_within" not in {f.code for f in check(GOOD_ITEMS)}


# --------------------------------------------------------------------------- basic pledge (S2)


@pytest.mark.parametrize("org_type", [OrgType.VILLAGE, OrgType.COMMUNITY, "village"])
def test_basic_items_of_villages_and_communities(org_type):
    keys: list[str] = []

    def record(key: str) -> str:
        keys.append(key)
        return render_zh(key)

    drafts = basic_items(org_type, record, deadline=WINDOW[1])
    assert len(drafts) == len(BASIC_TOPICS) == 3
    assert all(d.basic and d.deadline == WINDOW[1] for d in drafts)
    assert all(catalog().has(k) for k in keys)
    kind = OrgType(org_type).value
    assert keys[0] == f"basic_pledge.{kind}.affairs.content"


def test_basic_items_in_the_notice_words():
    village = basic_items(OrgType.VILLAGE, render_zh)
    assert "阳光透明" in village[0].content and "村务" in village[0].content
    assert "到村坐班" in village[1].content and "驻村乡镇干部" in village[1].content
    assert "监督电话号码" in village[2].content and "大门显著位置" in village[2].content
    community = basic_items(OrgType.COMMUNITY, render_zh)
    assert "社区事务" in community[0].content


@pytest.mark.parametrize("org_type", [OrgType.ENTERPRISE, OrgType.ORGAN, OrgType.SCHOOL])
def test_no_basic_items_for_other_types(org_type):
    assert basic_items(org_type, render_zh) == []


def test_basic_items_block_until_placeholders_are_filled():
    drafts = basic_items(OrgType.VILLAGE, render_zh, deadline=WINDOW[1])
    findings = check(drafts, require_basic=True)
    unfilled = [f for f in findings if f.code == "unfilled_placeholder"]
    assert [f.item_index for f in unfilled] == [0, 1, 2]
    assert "村干部坐班天数" in unfilled[1].context["placeholders"]
    assert "监督电话" in unfilled[2].context["placeholders"]
    assert blocking(findings)
    assert check([fill(d) for d in drafts], require_basic=True) == []


@pytest.mark.parametrize("locale", LOCALES)
def test_filled_basic_items_pass_in_every_locale(locale):
    drafts = basic_items(
        OrgType.COMMUNITY, lambda k: catalog().render(k, locale), deadline=DEADLINE
    )
    assert all(placeholders(d.goal + d.measures) for d in drafts[:2])
    assert check([fill(d) for d in drafts]) == []


def test_missing_basic_pledge_blocks_a_village_pledge():
    findings = check(GOOD_ITEMS[:1], require_basic=True)
    finding = only(findings, "missing_basic")
    assert finding.item_index is None
    assert finding.context == {"expected": 3, "missing": 3}
    assert findings[0] is finding  # pledge-wide findings come first
    assert blocking(findings)


def test_basic_items_are_exempt_from_duplicate_and_duty_checks():
    mine = [fill(d) for d in basic_items(OrgType.VILLAGE, render_zh, deadline=DEADLINE)]
    theirs = [fill(d, "3") for d in basic_items(OrgType.VILLAGE, render_zh)]
    corpus = [
        OtherText(20 + i, "东江村党支部", 7, comparable_text(d), basic=True)
        for i, d in enumerate(theirs)
    ]
    # even when the caller does not mark the corpus as basic
    corpus += [
        OtherText(30 + i, "西坡村党支部", 8, comparable_text(d)) for i, d in enumerate(theirs)
    ]
    twice = [*mine, mine[0]]
    assert check(twice, corpus) == []
    duty = ItemDraft("按时交纳党费", "每月交纳", "每月5日前交支部委员", DEADLINE, basic=True)
    assert check([duty]) == []


def test_an_own_item_similar_to_a_basic_item_of_another_village_is_not_flagged():
    theirs = fill(basic_items(OrgType.VILLAGE, render_zh)[0])
    corpus = [OtherText(20, "东江村党支部", 7, comparable_text(theirs), basic=True)]
    mine = replace(theirs, basic=False, deadline=DEADLINE)
    assert "near_duplicate" not in codes(check([mine], corpus))


def test_an_own_item_repeating_the_basic_item_is_a_duplicate_within():
    basic = fill(basic_items(OrgType.VILLAGE, render_zh, deadline=DEADLINE)[0])
    own = replace(basic, basic=False)
    assert only(check([basic, own]), "duplicate_within").item_index == 1


# --------------------------------------------------------------------------- findings and catalogs


def _every_finding() -> list[Finding]:
    copy = replace(ORIGINAL, content="年底前帮助本村5户困难群众发展花椒种植，使户均增收2000元")
    drafts = [
        ItemDraft(),
        item("帮" * 2001, deadline=date(2012, 3, 1)),
        item("按时交纳党费，按时参加三会一课", goal=VAGUE_GOAL),
        item("全心全意为人民服务，发挥先锋模范作用", goal=VAGUE_GOAL, measures=VAGUE_MEASURES),
        copy,
        replace(copy, content=copy.content + "。"),
    ]
    basic = basic_items(OrgType.VILLAGE, render_zh, deadline=DEADLINE)
    return [*check([]), *check(drafts, OTHERS, require_basic=True), *check(basic)]


def test_examples_cover_every_code():
    assert {f.code for f in _every_finding()} == set(CODES)


def test_finding_context_is_json_friendly_and_finding_hashable():
    for finding in _every_finding():
        json.dumps(finding.context)
        hash(finding)
        assert finding.rule == CODES[finding.code][0]


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_has_a_message_for_every_code(locale):
    keys = catalog().keys(locale)
    for code in CODES:
        assert f"quality.{code}" in keys, code
    for code in REVIEWER_VARIANTS:
        assert f"quality.{code}_reviewer" in keys, code
    for field in FIELD_LIMITS:
        assert f"quality.field.{field}" in keys
    for rule in {rule for rule, _ in CODES.values() if rule}:
        assert f"quality.rule.{rule}" in keys


def test_quality_and_basic_keys_are_the_same_in_every_locale():
    def ours(locale: str) -> set[str]:
        return {k for k in catalog().keys(locale) if k.startswith(("quality.", "basic_pledge."))}

    assert ours("zh_CN") == ours("en")
    assert {
        f"basic_pledge.{kind}.{topic}.{part}"
        for kind in ("village", "community")
        for topic in BASIC_TOPICS
        for part in ("content", "goal", "measures")
    } <= ours("en")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_finding_renders_for_drafter_and_reviewer(locale):
    for finding in _every_finding():
        for reviewer in (False, True):
            text = catalog().render(
                finding.message_key(reviewer=reviewer), locale, **finding.context
            )
            assert text and "{{" not in text
    for key in ("quality.summary_block", "quality.summary_warn"):
        assert "3" in catalog().render(key, locale, count=3)
    assert catalog().render("quality.all_good", locale)


def test_drafter_does_not_see_the_owner_but_the_reviewer_does():
    finding = only(
        check([replace(ORIGINAL, content=ORIGINAL.content + "。")], OTHERS), "near_duplicate"
    )
    assert finding.message_key() == "quality.near_duplicate"
    assert finding.message_key(reviewer=True) == "quality.near_duplicate_reviewer"
    drafter = catalog().render(finding.message_key(), "zh_CN", **finding.context)
    reviewer = catalog().render(finding.message_key(reviewer=True), "zh_CN", **finding.context)
    assert "李秀英" not in drafter
    assert "李秀英" in reviewer
    assert "针对性" in drafter


def test_messages_use_the_notice_words():
    zh = catalog().messages["zh_CN"]
    assert "先进性" in zh["quality.ordinary_duty"]
    assert "实践性" in zh["quality.slogan"]
    assert "针对性" in zh["quality.near_duplicate"]
    assert "有明确目标" in zh["quality.no_goal"]
    assert "有管用措施" in zh["quality.no_measures"]
    assert "有完成时限" in zh["quality.no_deadline"]
    assert "有具体项目" in zh["quality.no_content"]


def test_findings_are_ordered_pledge_first_then_by_item():
    findings = check([ItemDraft(), item(deadline=None)], require_basic=True)
    order = [(f.item_index, f.code) for f in findings]
    assert order[0] == (None, "missing_basic")
    assert order[1:] == [
        (0, "no_content"),
        (0, "no_goal"),
        (0, "no_measures"),
        (0, "no_deadline"),
        (1, "no_deadline"),
    ]


# --------------------------------------------------------------------------- scale

_WHO = ["帮助", "带领", "组织", "协助", "指导", "动员"]
_WHOM = [
    "本村困难群众",
    "本组村民",
    "辖区空巢老人",
    "留守儿童",
    "残疾人家庭",
    "本车间职工",
    "低保户",
]
_WHAT = [
    "发展花椒种植",
    "发展核桃产业",
    "养殖土鸡",
    "修建便民桥",
    "硬化村道",
    "开展技能培训",
    "整治环境卫生",
    "种植中药材",
]
_WHEN = ["年底前", "6月底前", "国庆前", "每月", "每季度", "全年"]
_GOAL = ["户均增收{}元", "完成{}户", "培训{}人次", "建成{}处", "覆盖率达到{}%", "新增{}亩"]


def _corpus(size: int, seed: int = 7) -> list[OtherText]:
    rng = random.Random(seed)
    out = []
    for i in range(size):
        text = (
            rng.choice(_WHEN)
            + rng.choice(_WHO)
            + rng.choice(_WHOM)
            + rng.choice(_WHAT)
            + "，"
            + rng.choice(_GOAL).format(rng.randint(1, 3000))
        )
        out.append(OtherText(i // 3, f"党员{i // 3}", 1, text))
    return out


def test_index_finds_what_a_full_scan_finds():
    corpus = _corpus(600, seed=3)
    index = CorpusIndex(corpus)
    rng = random.Random(5)
    for query in rng.sample(corpus, 40):
        grams = ngrams(query.text[2:] + "。")
        scan = max(((e, similarity(grams, ngrams(e.text))) for e in corpus), key=lambda p: p[1])
        found = index.most_similar(grams)
        if scan[1] >= NEAR_DUPLICATE_THRESHOLD:
            assert found is not None and found[1] == pytest.approx(scan[1])
        else:
            assert found is None


def test_two_thousand_item_corpus_is_not_pathological():
    corpus = _corpus(2000)
    drafts = [item(other.text) for other in corpus[::200]] + GOOD_ITEMS
    started = time.perf_counter()
    findings = check(drafts, corpus)
    elapsed = time.perf_counter() - started
    # not an assertion on speed: the figure is printed for `pytest -s`
    print(f"\n{len(drafts)} items against {len(corpus)}: {elapsed * 1000:.0f} ms")
    assert sum(1 for f in findings if f.code == "near_duplicate") >= 10
