"""The console runtime and the scripted demo: every visible button pressable, every step real."""

from __future__ import annotations

import io

import pytest

from bot.cli_demo import run_demo
from bot.console import ConsoleMessenger
from bot.delivery import RenderedButton, RenderedMessage
from templates import catalog


def card(text: str, *labels: str, edit: str | None = None) -> RenderedMessage:
    row = tuple(RenderedButton(label, data=f"d:{label}") for label in labels)
    return RenderedMessage(text, buttons=(row,) if row else (), edit_message_id=edit)


async def test_buttons_keep_their_numbers_while_they_are_shown():
    m = ConsoleMessenger(out=io.StringIO())
    review = await m.send("c", card("review", "approve", "return"))
    other = await m.send("c", card("other", "a", "b"))
    # Found: an edited card followed by a message without buttons lost its buttons, so the
    # reason typed next ("4") reached the member as the text of the reason.
    await m.edit("c", card("reasons", "r1", "r2", "r3", "r4", edit=review))
    await m.send("c", card("pick a reason or type one"))
    assert m.button("c", 3)[:2] == ("a", "d:a")  # the other card is untouched
    pressed = m.button("c", m.find("c", "r4"))
    assert pressed == ("r4", "d:r4", review)
    # an edit that keeps the card's shape keeps its numbers
    await m.edit("c", card("other", "a ✓", "b", edit=other))
    assert m.button("c", 3)[0] == "a ✓" and m.button("c", 4)[0] == "b"
    # a card whose buttons are gone frees its numbers; nothing else moves
    await m.edit("c", card("decided", edit=review))
    assert m.find("c", "r4") is None and m.button("c", 3)[0] == "a ✓"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
async def test_the_demo_plays_every_announced_step(tmp_path, monkeypatch, locale):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    out = io.StringIO()
    await run_demo(60, out=out, locale=locale)  # raises if a scripted button is missing
    text = out.getvalue()
    render = catalog().render
    assert render("demo.done", locale, url=str(tmp_path / "demo.db")) in text
    assert render("menu.unknown", locale).splitlines()[0] not in text
    reason = render("review.reason.post", locale)
    assert text.count(reason) >= 3  # on the card, and to the member twice (DM and /mine)
    assert render("report.button.rest", locale) in text
    if locale == "zh_CN":
        assert "理由：4" not in text and "理由：未体现岗位职责特点" in text
    if locale == "en":
        assert render("lang.switched", "en") in text and "切换到英文" not in text


async def test_a_number_presses_a_shown_button_and_a_quoted_number_is_text(tmp_path, monkeypatch):
    from bot.compose import build_services
    from bot.console import ConsoleSession
    from bot.settings import load_settings
    from campaign.demo_data import load_demo

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/console.db")
    services = await build_services(load_settings())
    try:
        await load_demo(services.store, 12)
        out = io.StringIO()
        session = ConsoleSession(services, out=out)
        await session.take_seat("13800000001")
        await session.feed("/lang")  # the chooser: [1] 中文 [2] English
        await session.feed("'1")  # the text "1", not button 1
        assert catalog().render("menu.unknown", "zh_CN").splitlines()[0] in out.getvalue()
        await session.feed("2")
        assert catalog().render("lang.switched", "en") in out.getvalue()
    finally:
        await services.close()


async def test_a_notice_in_the_console_ends_with_its_summary(tmp_path, monkeypatch):
    from bot.compose import build_services
    from bot.console import ConsoleSession
    from bot.settings import load_settings
    from campaign.demo_data import load_demo

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/console.db")
    services = await build_services(load_settings())
    try:
        await load_demo(services.store, 12)
        out = io.StringIO()
        session = ConsoleSession(services, out=out)
        await session.take_seat("13800000001")  # the member takes a console seat first
        await session.take_seat("13800000002")  # the secretary: their branch
        await session.feed("/notice")
        await session.feed("今晚七点开支部党员大会。")
        await session.feed(str(session.messenger.find(session.seat, "全体党员")))
        await session.feed(str(session.messenger.find(session.seat, "确认发送")))
        text = out.getvalue()
        assert "【公告】" in text and "今晚七点" in text
        assert "公告发送完毕" in text and "送达 2" in text  # both seats
    finally:
        await services.close()
