"""End to end: the real bot process runs the calendar; restarts send nothing twice.

The bot is not running on the report day and is started after it: its scheduler catches the
prompt up once. It is then killed right after sending and started again: its calendar ticks
again at start, finds the run recorded, and sends nothing a second time.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlmodel import select

from models import Account, Campaign, JobRun, Member
from tests.e2e.conftest import new_user_id
from tests.e2e.test_pledge_loop import (
    GOOD_ITEM,
    MEMBER,
    SECOND_ITEM,
    SECRETARY,
    WAIT,
    bot_codec,
    db_rows,
    db_write,
    decide,
    draft_and_submit,
    open_campaign_today,
    this_month,
    with_store,
)

pytestmark = pytest.mark.e2e

MEMBER_TG = new_user_id()


def published_pledge_bound_member(db_url: str) -> None:
    """A campaign whose report day has passed, 张建国's pledge published, his chat bound."""
    codec = bot_codec()
    open_campaign_today(db_url, report_day=1, reminder_day=1, summary_day=1, send_hour=0)
    pledge_id = draft_and_submit(db_url, MEMBER, [GOOD_ITEM, SECOND_ITEM], codec)
    decide(db_url, SECRETARY, pledge_id, 1, codec)

    async def bind_and_hold(store: Any) -> None:
        async with store.write() as session:
            (camp,) = (await session.exec(select(Campaign))).all()
            member = (await session.exec(select(Member).where(Member.phone == MEMBER))).one()
            session.add(
                Account(
                    platform="telegram",
                    external_id=str(MEMBER_TG),
                    chat_id=str(MEMBER_TG),
                    member_id=member.id,
                )
            )
            # Only the prompt is let run: the reminder and the summary are held.
            for job in ("remind", "summary"):
                session.add(JobRun(job=job, campaign_id=camp.id, period=this_month()))

    with_store(db_url, bind_and_hold)


def prompts_in_chat(user) -> list[str]:
    return [m.text for m in user.bot_messages() if m.text.startswith("【每月一报】")]


@pytest.mark.both_runtimes
def test_prompt_is_caught_up_once_and_a_restart_sends_nothing_twice(start_bot, user_of):
    bot = start_bot(prepare=published_pledge_bound_member)
    member = user_of(bot, MEMBER_TG)
    prompt = member.wait_for_reply(lambda m: m.text.startswith("【每月一报】"), WAIT)
    month = this_month()  # shown the Chinese way: 2026年12月, never 2026-12
    assert f"{int(month[:4])}年{int(month[5:])}月" in prompt.text and month not in prompt.text
    # the send is marked before the crash: "restarted right after sending"
    deadline = time.monotonic() + WAIT
    while db_rows(bot, "SELECT count(*) FROM outbox WHERE status = 'pending'") != [(0,)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert db_rows(bot, "SELECT count(*) FROM outbox WHERE dedup_key LIKE 'prompt:%'") == [(1,)]

    bot.kill()
    # Let the reminder go too, so that the restarted calendar's tick shows up in the chat.
    db_write(bot, "DELETE FROM jobrun WHERE job = 'remind'")
    bot.start()  # its scheduler ticks at once on start
    member.wait_for_reply(lambda m: m.text.startswith("温馨提醒"), WAIT)
    assert len(prompts_in_chat(member)) == 1
    assert db_rows(bot, "SELECT count(*) FROM outbox WHERE dedup_key LIKE 'prompt:%'") == [(1,)]
    assert db_rows(bot, "SELECT job, period, queued FROM jobrun WHERE job = 'prompt'") == [
        ("prompt", this_month(), 1)
    ]
