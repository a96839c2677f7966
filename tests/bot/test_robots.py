"""Group robots (WeCom, DingTalk, Feishu): signing, rendering, sealing, limits and answers.

The robots are the local stand-in of ``tests/e2e/robots.py`` (it checks signatures and their
timestamp window, enforces the per-robot limits and answers with the real error shapes); the
store is a real database; the outbox worker is the real one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from urllib.parse import quote_plus

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import select

from bot.delivery import DeliveryError, RenderedButton, RenderedMessage
from bot.outbox import OutboxWorker
from bot.ratelimit import ROBOT_LIMITS, RateLimiter, robot_limits
from bot.robots import (
    Robots,
    dingtalk_sign,
    feishu_sign,
    judge,
    render,
    signed_request,
)
from campaign import grouplink, outbox
from campaign import robots as campaign_robots
from models import GroupLink, Outbox, OutboxStatus, RobotHook
from models.errors import DomainError
from models.reply import Reply
from tests.bot.test_outbox import Clock
from tests.bot.test_ratelimit import FakeTime, max_in_window
from tests.conftest import bind_everyone, seed_people
from tests.e2e.robots import TOO_FAST, RobotStandIn

KEY = bytes(range(32))
VILLAGE = "陇南市/武都区/城关镇/东江村党支部"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def stand_in():
    s = RobotStandIn().start()
    yield s
    s.stop()


# -- signing: known vectors, computed step by step here ----------------------------------------


def test_dingtalk_signature_is_the_url_encoded_base64_hmac_of_timestamp_and_secret():
    secret, ts = "SECabc123", 1700000000000
    mac = hmac.new(b"SECabc123", b"1700000000000\nSECabc123", hashlib.sha256).digest()
    assert base64.b64encode(mac).decode() == "N5P09a4+p1AMJIJWnIvQd2Yxw9+fu/oEBnPrjCcsLXk="
    assert dingtalk_sign(secret, ts) == "N5P09a4%2Bp1AMJIJWnIvQd2Yxw9%2Bfu%2FoEBnPrjCcsLXk%3D"
    assert dingtalk_sign(secret, ts) == quote_plus(base64.b64encode(mac).decode())


def test_feishu_signature_is_the_base64_hmac_keyed_with_timestamp_and_secret():
    mac = hmac.new(b"1700000000\nSECabc123", b"", hashlib.sha256).digest()
    assert feishu_sign("SECabc123", 1700000000) == base64.b64encode(mac).decode()
    assert feishu_sign("SECabc123", 1700000000) == "UqhI0v4zAkSwI4hNYBuHQvnrAqshA0UaeBGHCUMPX70="


def test_signed_requests_carry_the_signature_where_each_robot_wants_it():
    body = {"msgtype": "markdown"}
    url, same = signed_request("dingtalk", "https://x/robot/send?access_token=t", "S", body, 1.5)
    assert url.endswith(f"&timestamp=1500&sign={dingtalk_sign('S', 1500)}") and same == body
    url, signed = signed_request("feishu", "https://x/hook/t", "S", body, 1.5)
    assert url == "https://x/hook/t"
    assert signed == {"timestamp": "1", "sign": feishu_sign("S", 1), **body}
    assert signed_request("wecom", "https://x?key=k", "", body, 1.5) == ("https://x?key=k", body)
    assert signed_request("dingtalk", "https://x?t=1", "", body, 1.5)[0] == "https://x?t=1"


# -- rendering -------------------------------------------------------------------------------


def test_wecom_sends_a_chart_as_an_image_with_its_md5_and_documents_as_a_line():
    chart = RenderedMessage("通报图表", attachment={"kind": "photo", "data": PNG})
    md, image = render("wecom", chart)
    assert md == {"msgtype": "markdown", "markdown": {"content": "通报图表"}}
    assert base64.b64decode(image["image"]["base64"]) == PNG
    assert image["image"]["md5"] == hashlib.md5(PNG).hexdigest()
    doc = RenderedMessage(
        "附件5", attachment={"kind": "document", "data": b"x", "filename": "a.xlsx"}
    )
    (only,) = render("wecom", doc, bot_username="TestNameBot")
    assert "a.xlsx" in only["markdown"]["content"]
    assert "https://t.me/TestNameBot" in only["markdown"]["content"]


def test_dingtalk_and_feishu_fall_back_to_text_for_a_chart():
    chart = RenderedMessage(
        "通报图表", attachment={"kind": "photo", "data": PNG, "filename": "c.png"}
    )
    (ding,) = render("dingtalk", chart)
    assert ding["msgtype"] == "markdown" and "c.png" in ding["markdown"]["text"]
    assert ding["markdown"]["title"] == "通报图表"
    (fei,) = render("feishu", chart)
    assert fei["msg_type"] == "interactive"
    assert "c.png" in fei["card"]["elements"][0]["text"]["content"]


def test_buttons_with_links_become_links_and_others_are_dropped():
    message = RenderedMessage(
        "公示",
        buttons=((RenderedButton("打印", data="p:1"), RenderedButton("查看", url="https://e/x")),),
    )
    (body,) = render("wecom", message)
    assert body["markdown"]["content"] == "公示\n\n[查看](https://e/x)"


def test_long_texts_are_split_within_the_robots_sizes():
    long = "\n".join(["党员承诺事项：为群众办实事办好事" * 3] * 200)
    bodies = render("wecom", RenderedMessage(long))
    assert len(bodies) > 1
    assert all(len(b["markdown"]["content"].encode()) <= 4096 for b in bodies)
    emoji = render("wecom", RenderedMessage("🎉" * 3000))
    assert len(emoji) > 2 and all(len(b["markdown"]["content"].encode()) <= 4096 for b in emoji)
    assert "".join(b["markdown"]["content"] for b in emoji) == "🎉" * 3000


def test_answers_are_read_as_the_services_mean_them():
    assert judge("wecom", 200, {"errcode": 0, "errmsg": "ok"}).ok
    assert judge("wecom", 200, TOO_FAST["wecom"]).rate_limited
    assert judge("dingtalk", 200, {"errcode": 130101, "errmsg": "send too fast"}).rate_limited
    assert judge("feishu", 200, {"code": 9499, "msg": "too many request"}).rate_limited
    assert judge("feishu", 429, None).rate_limited
    assert judge("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"}).broken
    assert judge("dingtalk", 200, {"errcode": 310000, "errmsg": "sign not match"}).broken
    assert judge("dingtalk", 200, {"errcode": 300001, "errmsg": "token is not exist"}).broken
    assert judge("feishu", 200, {"code": 19021, "msg": "sign match fail"}).broken
    refused = judge("wecom", 200, {"errcode": 40058, "errmsg": "too long"})
    assert not refused.ok and not refused.broken and not refused.rate_limited
    assert judge("feishu", 200, {"StatusCode": 0, "code": 0, "msg": "success"}).ok


# -- the limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "windows"), [("wecom", [(60, 20)]), ("feishu", [(1, 5), (60, 100)])]
)
async def test_a_robot_never_gets_more_than_its_limits(kind, windows):
    clock = FakeTime()
    lim = RateLimiter({kind: robot_limits(kind)}, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(130):
        await lim.acquire(kind, "r1")
        times.append(clock())
    for window, most in windows:
        assert max_in_window(times, window) <= most
    # another robot of the same kind is not held up by the first one
    start = clock()
    await lim.acquire(kind, "r2")
    assert clock() - start < 1.0


async def test_a_rate_limited_robot_pauses_only_itself():
    clock = FakeTime()
    lim = RateLimiter(ROBOT_LIMITS, clock=clock, sleep=clock.sleep)
    await lim.acquire("wecom", "r1")
    assert lim.penalize("wecom", "r1", 60) is False
    start = clock()
    await lim.acquire("wecom", "r2")
    assert clock() == start


# -- sealing and the links ---------------------------------------------------------------------


async def test_webhooks_are_sealed_at_rest_and_shown_masked(sqlite_store):
    await seed_people(sqlite_store)
    url = "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789TOKEN"
    async with sqlite_store.write() as s:
        link = await campaign_robots.add(
            s, org_path=VILLAGE, kind="dingtalk", webhook=url, secret="SECret-9", key=KEY
        )
    assert link.hint == "https://oapi.dingtalk.com/…OKEN" and link.signed
    async with sqlite_store.read() as s:
        raw = (await s.exec(text("SELECT * FROM robothook"))).all()
        dump = json.dumps([list(map(str, r)) for r in raw])
        assert "abcdef0123456789" not in dump and "SECret-9" not in dump
        hook = await campaign_robots.hook(s, link.chat_id, KEY)
        assert (hook.url, hook.secret) == (url, "SECret-9")
        with pytest.raises(DomainError) as wrong:
            await campaign_robots.hook(s, link.chat_id, bytes(32))
        assert wrong.value.key == "robot.unreadable"
        (listed,) = await campaign_robots.links(s)
        assert listed.hint == link.hint and listed.org == VILLAGE


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"kind": "slack", "webhook": "https://x/y"}, "robot.bad_kind"),
        ({"kind": "wecom", "webhook": "ftp://x/y"}, "robot.bad_url"),
        ({"kind": "wecom", "webhook": "https://x/ y"}, "robot.bad_url"),
        ({"kind": "wecom", "webhook": "https://x/y", "secret": "a b"}, "robot.bad_secret"),
        ({"kind": "wecom", "webhook": "https://x/y", "org_path": "陇南市/没有"}, "robot.no_org"),
    ],
)
async def test_bad_robots_are_refused_and_change_nothing(sqlite_store, kwargs, key):
    await seed_people(sqlite_store)
    args = {"org_path": VILLAGE, "secret": "", "key": KEY, **kwargs}
    with pytest.raises(DomainError) as refused:
        async with sqlite_store.write() as s:
            await campaign_robots.add(s, **args)
    assert refused.value.key == key
    async with sqlite_store.read() as s:
        assert (await s.exec(select(GroupLink))).all() == []
        assert (await s.exec(select(RobotHook))).all() == []


async def test_one_robot_is_not_linked_twice(sqlite_store):
    await seed_people(sqlite_store)
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=same-robot-0001"
    async with sqlite_store.write() as s:
        first = await campaign_robots.add(
            s, org_path=VILLAGE, kind="wecom", webhook=url, secret="", key=KEY
        )
    with pytest.raises(DomainError) as twice:
        async with sqlite_store.write() as s:
            await campaign_robots.add(
                s, org_path="陇南市/武都区", kind="wecom", webhook=f" {url} ", secret="", key=KEY
            )
    assert twice.value.key == "robot.duplicate" and twice.value.context["id"] == first.chat_id
    async with sqlite_store.read() as s:
        assert len((await s.exec(select(RobotHook))).all()) == 1


async def test_groups_of_takes_robots_but_not_for_polls_nor_when_broken(store):
    people = await seed_people(store)
    village = people.orgs["village"]
    async with store.write() as s:
        s.add(GroupLink(platform="telegram", chat_id="-100", org_id=village, linked_by=None))
        robot = await campaign_robots.add(
            s, org_path=VILLAGE, kind="wecom", webhook="https://q/send?key=k", secret="", key=KEY
        )
    async with store.write() as s:
        assert [g.platform for g in await grouplink.groups_of(s, village)] == ["telegram", "wecom"]
        assert [g.platform for g in await grouplink.groups_of(s, [village], polls=True)] == [
            "telegram"
        ]
        county_path = "/".join([""] + [str(people.orgs[k]) for k in ("city", "county")]) + "/"
        assert len(await grouplink.groups_of(s, under=county_path)) == 2
        assert await grouplink.groups_of(s, people.orgs["township"]) == []
        assert await campaign_robots.mark_broken(s, robot.chat_id, "wecom 93000: invalid")
    async with store.write() as s:
        assert [g.platform for g in await grouplink.groups_of(s, village)] == ["telegram"]


# -- the messengers against the stand-in --------------------------------------------------------


async def _linked(store, stand_in, kind, *, secret="", **robot_kw):
    robot = stand_in.add(kind, secret=secret, **robot_kw)
    async with store.write() as s:
        link = await campaign_robots.add(
            s, org_path=VILLAGE, kind=kind, webhook=robot.webhook, secret=secret, key=KEY
        )
    return robot, link.chat_id


@pytest.mark.parametrize(
    ("kind", "secret"), [("wecom", ""), ("dingtalk", "SEC1"), ("feishu", "f")]
)
async def test_each_robot_takes_a_signed_message(sqlite_store, stand_in, kind, secret):
    await seed_people(sqlite_store)
    robot, chat_id = await _linked(sqlite_store, stand_in, kind, secret=secret)
    robots = Robots(sqlite_store, key=KEY)
    try:
        await robots.messengers()[kind].send(chat_id, RenderedMessage("【公示】张建国的承诺"))
    finally:
        await robots.close()
    (got,) = stand_in.wait_for(robot, 1, timeout=5)
    assert "张建国" in got.text and not robot.refused


async def test_a_stale_signature_marks_the_link_broken_and_tells_the_office_once(
    sqlite_store, stand_in
):
    people = await seed_people(sqlite_store)
    async with sqlite_store.write() as s:
        bind_everyone(s, people)
    robot, chat_id = await _linked(sqlite_store, stand_in, "dingtalk", secret="SEC2")
    late = Robots(sqlite_store, key=KEY, clock=lambda: time.time() - 2 * 3600)
    messenger = late.messengers()["dingtalk"]
    try:
        for _ in range(2):
            with pytest.raises(DeliveryError) as failed:
                await messenger.send(chat_id, RenderedMessage("公示"))
            assert failed.value.permanent and failed.value.retry_after is None
    finally:
        await late.close()
    assert len(robot.refused) == 1 and not robot.received  # the second was not even tried
    async with sqlite_store.read() as s:
        notices = (await s.exec(select(Outbox).where(Outbox.chat_id == "office"))).all()
        (hook,) = (await s.exec(select(RobotHook))).all()
    assert len(notices) == 1 and notices[0].payload["template"] == "robot.broken_notice"
    assert hook.broken_at is not None and "310000" in hook.broken_reason


async def test_a_revoked_robot_is_reported_once_and_its_rows_die(sqlite_store, stand_in):
    people = await seed_people(sqlite_store)
    async with sqlite_store.write() as s:
        bind_everyone(s, people)
    robot, chat_id = await _linked(sqlite_store, stand_in, "feishu")
    robot.revoked = True
    async with sqlite_store.write() as s:
        for n in range(3):
            await outbox.enqueue(
                s,
                platform="feishu",
                chat_id=chat_id,
                reply=Reply("robot.test_message"),
                locale="zh_CN",
                key=f"post:{n}",
            )
    robots = Robots(sqlite_store, key=KEY)
    worker = OutboxWorker(sqlite_store, robots.messengers(), limiter=RateLimiter(ROBOT_LIMITS))
    try:
        await worker.run_once()
    finally:
        await robots.close()
    async with sqlite_store.read() as s:
        rows = (await s.exec(select(Outbox).where(Outbox.platform == "feishu"))).all()
        notices = (await s.exec(select(Outbox).where(Outbox.chat_id == "office"))).all()
    assert {r.status for r in rows} == {OutboxStatus.DEAD}
    assert len(notices) == 1


async def test_a_rate_limited_robot_gets_the_message_later_exactly_once(sqlite_store, stand_in):
    await seed_people(sqlite_store)
    robot, chat_id = await _linked(sqlite_store, stand_in, "wecom", rate_limit_next=1)
    async with sqlite_store.write() as s:
        await outbox.enqueue(
            s,
            platform="wecom",
            chat_id=chat_id,
            reply=Reply("robot.test_message"),
            locale="zh_CN",
            key="once",
        )
    clock = Clock()
    robots = Robots(sqlite_store, key=KEY, retry_after=0.3)  # the limiter waits in real time
    worker = OutboxWorker(
        sqlite_store, robots.messengers(), clock=clock, limiter=RateLimiter(ROBOT_LIMITS)
    )
    try:
        await worker.run_once()
        assert robot.received == [] and len(robot.refused) == 1
        assert await worker.run_once() == 0  # held for retry_after
        clock.now += timedelta(seconds=1)
        await worker.run_once()
        await worker.run_once()
    finally:
        await robots.close()
    assert len(robot.received) == 1 and "测试消息" in robot.received[0].text
    async with sqlite_store.read() as s:
        (row,) = (await s.exec(select(Outbox))).all()
    assert row.status == OutboxStatus.SENT


async def test_a_robot_behind_a_failing_gateway_is_retried_and_the_url_never_logged(
    sqlite_store, stand_in, caplog
):
    await seed_people(sqlite_store)
    robot, chat_id = await _linked(sqlite_store, stand_in, "dingtalk", secret="S9")
    robot.server_error_next = 1
    async with sqlite_store.write() as s:
        await outbox.enqueue(
            s,
            platform="dingtalk",
            chat_id=chat_id,
            reply=Reply("robot.test_message"),
            locale="zh_CN",
            key="gw",
        )
    clock = Clock()
    robots = Robots(sqlite_store, key=KEY)
    worker = OutboxWorker(
        sqlite_store, robots.messengers(), clock=clock, limiter=RateLimiter(ROBOT_LIMITS)
    )
    try:
        await worker.run_once()
        async with sqlite_store.read() as s:
            (failed,) = (await s.exec(select(Outbox))).all()
        assert failed.status == OutboxStatus.PENDING and "502" in failed.last_error
        assert robot.token not in failed.last_error
        clock.now += timedelta(seconds=5)
        await worker.run_once()
    finally:
        await robots.close()
    assert len(robot.received) == 1
    async with sqlite_store.read() as s:
        (row,) = (await s.exec(select(Outbox))).all()
        (hook,) = (await s.exec(select(RobotHook))).all()
    assert row.status == OutboxStatus.SENT and row.attempts == 2 and hook.broken_at is None
    assert robot.token not in caplog.text


def test_the_stand_in_enforces_twenty_a_minute(stand_in):
    robot = stand_in.add("dingtalk")
    stand_in_answers = [
        stand_in._answer(robot, "dingtalk", {"msgtype": "text"}, {}) for _ in range(21)
    ]
    assert stand_in_answers[-1] == TOO_FAST["dingtalk"]
    assert all(a["errcode"] == 0 for a in stand_in_answers[:20])


# -- the command line ------------------------------------------------------------------------


def test_group_add_list_test_remove_from_the_command_line(tmp_path, stand_in):
    from bot.cli import main

    db = f"sqlite:///{tmp_path}/cli.db"

    async def seed():
        from campaign.db import Store

        store = Store(db)
        await store.migrate()
        await seed_people(store)
        await store.dispose()

    asyncio.run(seed())
    robot = stand_in.add("dingtalk", secret="SEC3")
    env = {"DATABASE_URL": db, "CALLBACK_SECRET": "c" * 40, "BOT_TOKEN": ""}
    run = CliRunner().invoke
    added = run(
        main,
        [
            "group",
            "add",
            "--org",
            VILLAGE,
            "--kind",
            "dingtalk",
            "--webhook",
            robot.webhook,
            "--secret",
            "SEC3",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "只能发出，不能接收" in added.output and robot.token not in added.output
    listed = run(main, ["group", "list"], env=env)
    assert "钉钉群机器人" in listed.output and robot.token not in listed.output
    robot_id = listed.output.split()[0]
    tested = run(main, ["group", "test", robot_id], env=env)
    assert tested.exit_code == 0 and '"errcode": 0' in tested.output
    assert "测试消息" in robot.received[0].text
    refused = run(
        main, ["group", "add", "--org", VILLAGE, "--kind", "wecom", "--webhook", "x"], env=env
    )
    assert refused.exit_code == 1 and "Webhook" in refused.output
    removed = run(main, ["group", "remove", robot_id], env=env)
    assert removed.exit_code == 0 and robot_id in removed.output
    assert "还没有群机器人" in run(main, ["group", "list"], env=env).output
    assert run(main, ["group", "test", robot_id], env=env).exit_code == 1


async def test_a_limit_hit_between_the_caption_and_the_chart_posts_the_caption_once(
    sqlite_store, stand_in
):
    """Found: a WeCom chart is two posts (caption, image); when the image was rate limited, the
    retry posted the caption again."""
    await seed_people(sqlite_store)
    robot, chat_id = await _linked(sqlite_store, stand_in, "wecom", rate_limit_after=1)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    message = RenderedMessage(
        "【季度通报】城关镇",
        attachment={"kind": "photo", "data": png, "filename": "chart.png"},
        outbox_id=41,
    )
    robots = Robots(sqlite_store, key=KEY, retry_after=0.3)
    try:
        wecom = robots.messengers()["wecom"]
        with pytest.raises(DeliveryError) as refused:
            await wecom.send(chat_id, message)
        assert refused.value.retry_after == 0.3
        await wecom.send(chat_id, message)  # the worker's retry of the same row
    finally:
        await robots.close()
    kinds = [r.body["msgtype"] for r in robot.received]
    assert kinds == ["markdown", "image"]  # the caption once, then the chart
