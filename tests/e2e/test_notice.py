"""End to end: an office's /notice to a township reaches every bound member once, and the
sender's message, edited in place as delivery goes, ends with a summary whose figures add up."""

from __future__ import annotations

import re

import pytest

from templates import catalog
from tests.e2e.test_foundation import bind

pytestmark = pytest.mark.e2e

OFFICE = "13800000006"  # 杨志军, 区创先办 (武都区)
IN_TOWNSHIP = ("13800000001", "13800000002", "13800000003", "13800000005")
OUTSIDE = "13800000009"  # 孙国华, 区委组织部: the county, not the township
TEXT = "请城关镇各支部于本周五前完成承诺事项自查。"


def msg(key: str, **context) -> str:
    return catalog().render(key, "zh_CN", **context)


def test_an_office_notice_to_a_township_reaches_every_member_once_and_the_figures_add_up(
    start_bot, user_of
):
    bot = start_bot(env={"NOTICE_EVERY": "0.3"})
    office = user_of(bot)
    bind(office, OFFICE)
    members = {phone: user_of(bot) for phone in IN_TOWNSHIP}
    for phone, user in members.items():
        bind(user, phone)
    outside = user_of(bot)
    bind(outside, OUTSIDE)

    office.send_text(msg("menu.btn.notice"))  # the menu button, as people press it
    office.wait_for_reply("公告内容")
    office.send_text(TEXT)
    office.wait_for_reply("请选择发给谁")
    office.press(msg("notice.btn.pick"))
    children = office.wait_for_edit(office.last_reply, lambda m: "下级党组织" in m.text)
    office.press("城关镇", children)
    preview = office.wait_for_edit(children, lambda m: "公告预览" in m.text)
    assert "城关镇全体党员" in preview.text
    office.press(msg("notice.btn.confirm"), preview)
    office.press(msg("notice.btn.confirm"), preview)  # a double tap sends nothing twice

    for user in members.values():
        got = user.wait_for_reply(lambda m: TEXT in m.text)
        assert got.text.startswith("【公告】")
    summary = office.wait_for_edit(preview, lambda m: "公告发送完毕" in m.text, timeout=30)
    total, sent, dead = (
        int(n)
        for n in re.search(r"共 (\d+) 条：送达 (\d+) · 无法送达 (\d+)", summary.text).groups()
    )
    assert sent == len(IN_TOWNSHIP) and total == sent + dead
    for user in members.values():
        assert sum(TEXT in m.text for m in user.bot_messages()) == 1
    assert not any(TEXT in m.text for m in outside.bot_messages())

    office.send_text(msg("menu.btn.notices"))
    listed = office.wait_for_reply("我发的公告")
    assert f"送达 {sent}" in listed.text
