"""e2e: a member without Telegram takes part by SMS, through the real process and a local SMSC.

The issue's two cases: an unbound member gets the monthly prompt by SMS, replies 1, and the
ledger shows the month on track; a member who blocked the bot on Telegram gets a notice by SMS,
once. Both go through ``pledgebot run`` with ``SMS_GATEWAY`` pointing at the npm ``smpp``
server, and the notice goes through the Bot API emulator as an office sends it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from campaign import supervise
from models import Account, Campaign, JobRun, Member, Org
from templates import catalog
from tests.e2e.conftest import new_user_id
from tests.e2e.smsc import smsc, wait_until  # noqa: F401  (the fixture)
from tests.e2e.test_pledge_loop import (
    GOOD_ITEM,
    MEMBER,
    SECOND_ITEM,
    SECRETARY,
    bot_codec,
    db_rows,
    decide,
    draft_and_submit,
    open_campaign_today,
    this_month,
    with_store,
)
from tests.e2e.test_sms import SIGNATURE, sms_env

pytestmark = pytest.mark.e2e

OFFICE_TG = new_user_id()
BLOCKED_TG = new_user_id()
OFFICE = "13800000006"  # 杨志军, 创先办 of 武都区 (demo roster)
TEXT = "请城关镇各支部于本周五前完成承诺事项自查。"


def msg(key: str, **context: Any) -> str:
    return catalog().render(key, "zh_CN", **context)


def published_pledge_unbound_member(db_url: str) -> None:
    """A campaign whose report day has passed; 张建国's pledge published; he has no Telegram."""
    codec = bot_codec()
    open_campaign_today(db_url, report_day=1, reminder_day=1, summary_day=1, send_hour=0)
    pledge_id = draft_and_submit(db_url, MEMBER, [GOOD_ITEM, SECOND_ITEM], codec)
    decide(db_url, SECRETARY, pledge_id, 1, codec)

    async def hold(store: Any) -> None:
        async with store.write() as session:
            (camp,) = (await session.exec(select(Campaign))).all()
            # the member drafted through the console seat the helpers use: unbind it, so that
            # SMS is his only channel
            member = (await session.exec(select(Member).where(Member.phone == MEMBER))).one()
            for acc in (
                await session.exec(select(Account).where(Account.member_id == member.id))
            ).all():
                acc.active = False
                session.add(acc)
            for job in ("remind", "summary"):
                session.add(JobRun(job=job, campaign_id=camp.id, period=this_month()))

    with_store(db_url, hold)


def ledger_months(db_url: str) -> list[str | None]:
    """Return the month's state of each of 张建国's items, as the ledger reads it."""

    async def work(store: Any) -> list[str | None]:
        async with store.read() as s:
            camp = (await s.exec(select(Campaign))).one()
            root = (await s.exec(select(Org).where(Org.depth == 0))).one()
            member = (await s.exec(select(Member).where(Member.phone == MEMBER))).one()
            today = supervise_today(camp)
            rows = [r async for r in supervise.ledger_rows(s, camp.id, root.path, today)]
        return [r.months.get(this_month()) for r in rows if r.member_id == member.id]

    return with_store(db_url, work)


def supervise_today(camp: Campaign):
    from campaign.fulfil import local_now
    from models.base import utcnow

    return local_now(camp, utcnow()).date()


def test_an_unbound_member_is_prompted_by_sms_replies_1_and_the_ledger_shows_it(
    start_bot,
    smsc,  # noqa: F811
):
    bot = start_bot(env=sms_env(smsc), prepare=published_pledge_unbound_member)
    smsc.wait_bound()
    to_member = "86" + MEMBER

    def prompts() -> list[dict]:
        return [p for p in smsc.submits() if p["dest"] == to_member and "回复1" in p["text"]]

    (prompt,) = wait_until(prompts, timeout=60, what="the monthly prompt by SMS")
    assert prompt["text"].startswith(SIGNATURE) and "2项" in prompt["text"]
    before = len(smsc.submits())
    assert smsc.mo(MEMBER, "1") == [0]
    answer = wait_until(
        lambda: [p for p in smsc.submits()[before:] if p["dest"] == to_member],
        what="the answer to 1",
    )
    assert "全部按计划" in "".join(p["text"] for p in answer)
    assert ledger_months(bot.db_url) == ["on_track", "on_track"]
    # nothing went to Telegram for him, and the prompt went once
    assert db_rows(bot, "SELECT count(*) FROM outbox WHERE dedup_key LIKE 'prompt:%'") == [(1,)]


def office_and_blocked_member(db_url: str) -> None:
    """The office and 张建国 bound to Telegram; 张建国 will have blocked the bot."""

    async def bind(store: Any) -> None:
        async with store.write() as session:
            for phone, tg in ((OFFICE, OFFICE_TG), (MEMBER, BLOCKED_TG)):
                member = (await session.exec(select(Member).where(Member.phone == phone))).one()
                session.add(
                    Account(
                        platform="telegram",
                        external_id=str(tg),
                        chat_id=str(tg),
                        member_id=member.id,
                    )
                )

    with_store(db_url, bind)


def test_a_member_who_blocked_the_bot_gets_the_notice_by_sms_once(
    start_bot,
    user_of,
    proxy,
    smsc,  # noqa: F811
):
    bot = start_bot(env=sms_env(smsc), prepare=office_and_blocked_member)
    smsc.wait_bound()
    proxy.block(bot.token, BLOCKED_TG)  # Telegram answers 403 for him from now on
    office = user_of(bot, OFFICE_TG)
    office.send_text(msg("menu.btn.notice"))
    office.wait_for_reply("公告内容")
    office.send_text(TEXT)
    office.wait_for_reply("请选择发给谁")
    office.press(msg("notice.btn.pick"))
    children = office.wait_for_edit(office.last_reply, lambda m: "下级党组织" in m.text)
    office.press("城关镇", children)
    preview = office.wait_for_edit(children, lambda m: "公告预览" in m.text)
    office.press(msg("notice.btn.confirm"), preview)
    to_member = "86" + MEMBER
    sms = wait_until(
        lambda: [p for p in smsc.submits() if p["dest"] == to_member], timeout=60, what="SMS"
    )
    assert "自查" in "".join(p["text"] for p in sms)
    # the summary counts the SMS that replaced the refused Telegram message, and its cost once
    # the SMSC's receipt is in (the local SMSC receipts on request)
    for part in sms:
        smsc.receipt(part["message_id"])
    summary = office.wait_for_edit(
        preview, lambda m: "公告发送完毕" in m.text and "回执送达 1" in m.text, timeout=60
    )
    # everyone else in the township without Telegram was reached by SMS as well (channel auto)
    texts = [p for p in smsc.submits() if "自查" in p["text"] or p.get("udh")]
    people = {p["dest"] for p in texts}
    telegram_refused = 1
    assert (
        f"共 {len(people) + telegram_refused} 条：送达 {len(people)} · 无法送达 1" in summary.text
    )
    assert (
        f"短信 {len(people)} 条（已发 {len(people)}，计费 {len(texts)} 条短信，回执送达 1）"
        in summary.text
    )
    # once: the fallback is not repeated by a later pass of the worker
    assert len([p for p in smsc.submits() if p["dest"] == to_member]) == len(sms)
    assert db_rows(
        bot,
        "SELECT active FROM account WHERE platform = 'telegram' AND chat_id = ?",
        str(BLOCKED_TG),
    ) == [(0,)]
