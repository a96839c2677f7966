"""End to end: the real bot posts to WeCom, DingTalk and Feishu group robots.

The robots are the local stand-in (``tests/e2e/robots.py``): it checks signatures and the
timestamp window, enforces each robot's limits and answers with the services' error shapes. The
robots are linked with the real ``pledgebot group add``; ``pledgebot run`` delivers; one of the
pledges is approved by the secretary pressing 通过 on her review card in Telegram.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from campaign.demo_data import TOWNSHIP, VILLAGE_BRANCH
from models import Account, Campaign, JobRun, Member
from tests.e2e.client import TelegramUser
from tests.e2e.conftest import (
    MAIN_TOKEN,
    BotProcess,
    base_env,
    bot_command,
    new_token,
    new_user_id,
    seeded_database,
)
from tests.e2e.robots import REVOKED, TOO_FAST, RobotStandIn, dingtalk_expected
from tests.e2e.test_documents import published_branch_pledge
from tests.e2e.test_pledge_loop import (
    GOOD_ITEM,
    HELD_JOBS,
    MEMBER,
    PEER_A_ITEM,
    SECRETARY,
    WAIT,
    approve_confirming,
    bind,
    bot_codec,
    decide,
    draft_and_submit,
    open_campaign_today,
    this_month,
    with_store,
)

pytestmark = pytest.mark.e2e

PEER_A = "13800000003"  # 王志强, 东江村
OFFICE = "13800000006"  # 杨志军, 武都区创先办
OFFICE_TG = new_user_id()
RETRY_AFTER = 2.0


@pytest.fixture(scope="module")
def robot_api():
    stand_in = RobotStandIn().start()
    yield stand_in
    stand_in.stop()


def group_add(db_url: str, kind: str, org: str, webhook: str, secret: str = "") -> str:
    """Link a robot with ``pledgebot group add``; return its id."""
    args = ["group", "add", "--org", org, "--kind", kind, "--webhook", webhook]
    if secret:
        args += ["--secret", secret]
    out = subprocess.run(
        [*bot_command(), *args],
        env=base_env(DATABASE_URL=db_url, BOT_TOKEN=MAIN_TOKEN),
        cwd=str(Path(db_url.removeprefix("sqlite:///")).parent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert webhook not in out.stdout and "只能发出，不能接收" in out.stdout
    return re.search(r"编号 (r[0-9a-f]{12})", out.stdout).group(1)


def group_list(db_url: str) -> str:
    out = subprocess.run(
        [*bot_command(), "group", "list"],
        env=base_env(DATABASE_URL=db_url, BOT_TOKEN=MAIN_TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- publication: a signed DingTalk robot, a rate-limited Feishu one, a revoked WeCom one -------


@pytest.fixture(scope="module")
def publishing(proxy, emulator, robot_api, tmp_path_factory):
    """Two pledges of 东江村党支部 approved while three robots are linked to the branch."""
    workdir = tmp_path_factory.mktemp("robots-bot")
    _, url = seeded_database(workdir)
    codec = bot_codec()
    open_campaign_today(url, report_day=1, reminder_day=1, summary_day=1, send_hour=0)

    async def hold_and_bind_office(store: Any) -> None:
        async with store.write() as session:
            (camp,) = (await session.exec(select(Campaign))).all()
            for job in HELD_JOBS:
                session.add(JobRun(job=job, campaign_id=camp.id, period=this_month()))
            office = (await session.exec(select(Member).where(Member.phone == OFFICE))).one()
            session.add(
                Account(
                    platform="telegram",
                    external_id=str(OFFICE_TG),
                    chat_id=str(OFFICE_TG),
                    member_id=office.id,
                )
            )

    with_store(url, hold_and_bind_office)
    robots = {
        "dingtalk": robot_api.add("dingtalk", secret="SECding-e2e"),
        "feishu": robot_api.add("feishu", secret="feishu-e2e", rate_limit_next=1),
        "wecom": robot_api.add("wecom"),
    }
    robots["wecom"].revoked = True
    ids = {
        kind: group_add(url, kind, VILLAGE_BRANCH, r.webhook, r.secret)
        for kind, r in robots.items()
    }
    # 王志强's pledge is approved through the domain before the bot starts (its posts wait in
    # the outbox); 张建国's by the secretary pressing 通过 on her card in Telegram
    second = draft_and_submit(url, PEER_A, [PEER_A_ITEM], codec)
    decide(url, SECRETARY, second, 1, codec)
    process = BotProcess(
        proxy, workdir, url, token=new_token(), env={"ROBOT_RETRY_AFTER": str(RETRY_AFTER)}
    )
    try:
        process.start()
        secretary = TelegramUser(emulator, process.token, new_user_id(), first_name="李秀英")
        bind(secretary, SECRETARY)
        draft_and_submit(url, MEMBER, [GOOD_ITEM], codec)
        card = secretary.wait_for_reply(
            lambda m: m.text.startswith("【承诺审核】") and "张建国" in m.text, WAIT
        )
        approve_confirming(proxy, process, secretary, card)
        yield process, robots, ids
    finally:
        process.stop()


def posts_of(received, content: str) -> list:
    return [r for r in received if content in r.text]


def test_an_approved_pledge_of_a_dingtalk_linked_branch_reaches_the_robot_signed(
    publishing, robot_api
):
    _, robots, _ = publishing
    ding = robots["dingtalk"]
    got = robot_api.wait_for(
        ding, 2, timeout=30, where=lambda r: "留守老人" in r.text or "水渠" in r.text
    )
    assert len(posts_of(got, GOOD_ITEM["content"])) == 1
    assert len(posts_of(got, PEER_A_ITEM["content"])) == 1
    assert not ding.refused
    for r in got:
        assert r.query["sign"] == dingtalk_expected("SECding-e2e", r.query["timestamp"])
        assert abs(int(r.query["timestamp"]) / 1000 - r.at) < 60
        assert r.body["msgtype"] == "markdown"


def test_a_robot_that_answers_rate_limited_gets_the_message_later_exactly_once(
    publishing, robot_api
):
    _, robots, _ = publishing
    feishu = robots["feishu"]
    robot_api.wait_for(
        feishu, 2, timeout=30, where=lambda r: "留守老人" in r.text or "水渠" in r.text
    )
    time.sleep(RETRY_AFTER + 1)  # nothing more comes
    assert [r.answer for r in feishu.refused] == [TOO_FAST["feishu"]]
    assert len(posts_of(feishu.received, GOOD_ITEM["content"])) == 1
    assert len(posts_of(feishu.received, PEER_A_ITEM["content"])) == 1
    first_ok = min(r.at for r in feishu.received)
    assert first_ok - feishu.refused[0].at >= RETRY_AFTER - 0.1
    assert all(r.body["msg_type"] == "interactive" and r.body["sign"] for r in feishu.received)


def test_a_revoked_robot_is_reported_to_the_office_once(publishing, proxy):
    bot, robots, ids = publishing
    wecom_id = ids["wecom"]

    def notices() -> list[str]:
        return [
            c.params.get("text", "")
            for c in proxy.calls("sendMessage", token=bot.token)
            if str(c.params.get("chat_id")) == str(OFFICE_TG)
            and wecom_id in c.params.get("text", "")
        ]

    deadline = time.monotonic() + 30
    while not notices() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the second pledge's post to the same robot reports nothing more
    (notice,) = notices()
    assert "企业微信群机器人" in notice and "93000" in notice
    assert robots["wecom"].received == []
    assert REVOKED["wecom"]["errcode"] == 93000
    listed = group_list(bot.db_url)
    line = next(x for x in listed.splitlines() if wecom_id in x)
    assert "已失效" in line and robots["wecom"].token not in listed


# -- the quarterly bulletin of a WeCom-linked township, with its chart ---------------------------


def test_a_wecom_linked_townships_bulletin_arrives_with_its_chart(proxy, robot_api, tmp_path):
    _, url = seeded_database(tmp_path / "bulletin")
    published_branch_pledge(url)
    wecom = robot_api.add("wecom")
    group_add(url, "wecom", TOWNSHIP, wecom.webhook)
    process = BotProcess(proxy, tmp_path / "bulletin", url, token=new_token())
    try:
        process.start()
        got = robot_api.wait_for(wecom, 4, timeout=90)
    finally:
        process.stop()
    texts = [r.text for r in got]
    assert any("季度通报" in t for t in texts), texts
    images = [r for r in got if r.body.get("msgtype") == "image"]
    assert len(images) == 1 and images[0].image.startswith(b"\x89PNG")
    # the chart's caption comes first, then the image; the spreadsheet as a line
    index = got.index(images[0])
    assert got[index - 1].text.startswith("📊 城关镇")
    (sheet,) = [t for t in texts if ".xlsx" in t]
    assert sheet.startswith("📎") and "https://t.me/" in sheet
    assert not wecom.refused
