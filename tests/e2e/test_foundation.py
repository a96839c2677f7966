"""End to end: the real bot process, over HTTP, against the Bot API emulator.

Each test acts as Telegram users (``client.TelegramUser``), reads what the bot sent to their
chats, and checks the database file and the Bot API calls the proxy recorded.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from templates import catalog
from tests.e2e.conftest import (
    BotProcess,
    base_env,
    bot_command,
    free_port,
    make_invite,
    new_token,
    new_user_id,
    seeded_database,
)

pytestmark = pytest.mark.e2e

MEMBER = "13800000001"  # 张建国, 党员
SECRETARY = "13800000002"  # 李秀英, 党员、书记
PEER_A = "13800000003"  # 王志强, 党员
PEER_B = "13800000004"  # 刘桂兰, 党员
NOT_ON_ROSTER = "13912345678"
WEBHOOK_SECRET = "e2e-Webhook_secret-42"


def msg(key: str, locale: str = "zh_CN", **context) -> str:
    return catalog().render(key, locale, **context)


def db_rows(bot: BotProcess, sql: str, *args) -> list[tuple]:
    path = bot.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def account_of(bot: BotProcess, user_id: int) -> tuple | None:
    rows = db_rows(
        bot,
        "SELECT m.phone, a.locale FROM account a JOIN member m ON m.id = a.member_id "
        "WHERE a.platform = 'telegram' AND a.external_id = ?",
        str(user_id),
    )
    return rows[0] if rows else None


def wait_outbox_settled(bot: BotProcess, timeout: float = 5.0) -> None:
    """Wait until every queued message is marked sent.

    A crash between sending a message and marking it leaves the row leased to the dead
    process; the outbox sends it again once the lease runs out and holds the chat's later rows
    back until then (in order, at least once). The restart tests crash at a quiet moment, so
    that they test what survives a crash, not how long a lease is.
    """
    deadline = time.monotonic() + timeout
    while db_rows(bot, "SELECT count(*) FROM outbox WHERE status = 'pending'") != [(0,)]:
        assert time.monotonic() < deadline, "the outbox did not settle"
        time.sleep(0.03)


def bind(user, phone: str) -> None:
    user.share_contact(phone)
    user.wait_for_reply(msg("bind.done", name="", org="")[:4])
    user.wait_for_reply(lambda m: "/help" in m.text)  # the help that follows the welcome


# -- binding -------------------------------------------------------------------------------------


def test_unknown_person_is_refused_politely_and_not_bound(main_bot, user_of):
    user = user_of(main_bot)
    user.send_command("/start")
    intro = user.wait_for_reply()
    assert intro.text == msg("bind.intro")
    (button,) = intro.keyboard[0]
    assert button == {"text": msg("bind.share_button"), "request_contact": True}

    user.send_text("我想提交承诺")
    assert user.wait_for_reply().text == msg("bind.needed")

    user.share_contact(NOT_ON_ROSTER)
    assert user.wait_for_reply().text == msg("bind.not_on_roster")
    assert account_of(main_bot, user.user_id) is None


def test_member_binds_with_their_own_contact_only(main_bot, user_of):
    user = user_of(main_bot)
    user.share_contact(MEMBER, user_id=new_user_id())  # someone else's card
    assert user.wait_for_reply().text == msg("bind.not_own_contact")
    assert account_of(main_bot, user.user_id) is None

    user.share_contact(f"+86 {MEMBER[:3]}-{MEMBER[3:7]}-{MEMBER[7:]}")
    done = user.wait_for_reply()
    assert done.text.startswith(msg("bind.done", name="张建国", org="")[:12])
    # the menu keyboard replaces the share-contact button
    assert done.reply_markup["keyboard"][0][0] == {"text": msg("menu.btn.pledge")}
    assert account_of(main_bot, user.user_id) == (MEMBER, "zh_CN")


def test_member_binds_by_invite_once(main_bot, user_of):
    token = make_invite(main_bot.db_url, PEER_A)
    first = user_of(main_bot)
    first.send_command(f"/start inv_{token}")
    assert "王志强" in first.wait_for_reply().text
    assert account_of(main_bot, first.user_id) == (PEER_A, "zh_CN")

    second = user_of(main_bot)
    second.send_command(f"/start inv_{token}")
    assert second.wait_for_reply().text == msg("bind.invite_used")
    assert account_of(main_bot, second.user_id) is None


# -- help, menus, language -----------------------------------------------------------------------


@pytest.mark.both_runtimes
def test_help_and_menus_follow_the_role(main_bot, user_of, proxy):
    stranger, member, secretary = user_of(main_bot), user_of(main_bot), user_of(main_bot)
    mark = proxy.mark()
    bind(member, PEER_B)
    bind(secretary, SECRETARY)

    stranger.send_command("/help")
    member.send_command("/help")
    secretary.send_command("/help")
    stranger_help = stranger.wait_for_reply().text
    member_help = member.wait_for_reply().text
    secretary_help = secretary.wait_for_reply().text

    assert stranger_help.startswith("您还没有绑定身份") and "/start" in stranger_help
    assert member_help.startswith("您可以使用") and "/start" not in member_help
    roles = msg("role.member"), msg("role.secretary")
    assert f"您的角色：{roles[0]}" in member_help and roles[1] not in member_help
    assert f"您的角色：{roles[0]}、{roles[1]}" in secretary_help
    assert "/review" in secretary_help and "/review" not in member_help
    assert len({stranger_help, member_help, secretary_help}) == 3

    # binding set each person's own command menu, in their language, with no language code
    for user in (member, secretary):
        call = proxy.wait_for_call(
            "setMyCommands",
            token=main_bot.token,
            after=mark,
            where=lambda c, u=user: (
                c.params.get("scope") == {"type": "chat", "chat_id": u.chat_id}
            ),
        )
        assert "language_code" not in call.params
        commands = {c["command"]: c["description"] for c in call.params["commands"]}
        assert commands["help"] == msg("command.help")
        assert "start" not in commands

    # and at start-up the bot set the menus of people not bound yet and of groups
    defaults = [
        c.params
        for c in proxy.calls("setMyCommands", token=main_bot.token)
        if c.params.get("scope", {}).get("type") in ("default", "all_group_chats")
    ]
    found = {(p["scope"]["type"], p.get("language_code")) for p in defaults}
    assert {("default", None), ("default", "en"), ("all_group_chats", None)} <= found

    # Found: on the PTB runtime httpx logged every request's URL, the bot token in it, at INFO
    assert main_bot.token not in main_bot.log_path.read_text(errors="replace")


def test_lang_switches_the_language(main_bot, user_of, proxy):
    user = user_of(main_bot)
    bind(user, MEMBER)
    mark = proxy.mark()
    user.send_command("/lang en")
    assert user.wait_for_reply().text == msg("lang.switched", "en")
    user.send_command("/help")
    assert user.wait_for_reply().text.startswith("You can use:")
    assert account_of(main_bot, user.user_id) == (MEMBER, "en")
    # (the member's earlier account in this module, which lost the binding, gets a menu too)
    menu = proxy.wait_for_call(
        "setMyCommands",
        token=main_bot.token,
        after=mark,
        where=lambda c: (c.params.get("scope") or {}).get("chat_id") == user.chat_id,
    )
    assert menu.params["scope"] == {"type": "chat", "chat_id": user.chat_id}
    assert {c["command"]: c["description"] for c in menu.params["commands"]}["help"] == msg(
        "command.help", "en"
    )


def test_forged_buttons_change_nothing(main_bot, user_of, proxy):
    user = user_of(main_bot)
    bind(user, PEER_B)
    for data in ("totally-made-up", "lang:en:AAAAAAAA", "lang:en"):
        mark = proxy.mark()
        user.send_callback(data)
        answer = proxy.wait_for_call("answerCallbackQuery", token=main_bot.token, after=mark)
        assert answer.params.get("text") == msg("error.bad_button")
    user.expect_silence(0.3)
    assert account_of(main_bot, user.user_id) == (PEER_B, "zh_CN")


@pytest.mark.both_runtimes
def test_secretary_links_a_group_from_the_group(main_bot, user_of):
    secretary = user_of(main_bot)
    bind(secretary, SECRETARY)
    group_id = -(1_000_000_000_000 + secretary.user_id)
    in_group = user_of(
        main_bot,
        user_id=secretary.user_id,
        chat_id=group_id,
        chat_type="supergroup",
        chat_title="东江村党员群",
    )
    in_group.send_command("/bindgroup@TestNameBot")
    assert in_group.wait_for_reply().text == msg("group.linked", org="东江村党支部")
    rows = db_rows(main_bot, "SELECT title FROM grouplink WHERE chat_id = ?", str(group_id))
    assert rows == [("东江村党员群",)]
    in_group.send_command("/bindgroup@SomeOtherBot")  # meant for another bot in the group
    in_group.send_text("大家好")  # chatter in the group is not for the bot
    in_group.expect_silence(0.4)


# -- state survives a crash ----------------------------------------------------------------------


def test_restarted_bot_resumes_where_people_left_off(start_bot, user_of):
    bot = start_bot()
    member = user_of(bot)
    bind(member, MEMBER)
    member.send_command("/lang")
    chooser = member.wait_for_reply(msg("lang.choose"))
    stranger = user_of(bot)
    stranger.send_command("/lang en")  # not bound: the choice lives in the dialog state
    assert stranger.wait_for_reply().text == msg("lang.switched", "en")
    wait_outbox_settled(bot)

    bot.kill()  # SIGKILL: no chance to clean up
    bot.start()

    member.press("English", chooser)
    assert member.wait_for_reply().text == msg("lang.switched", "en")
    member.send_command("/help")
    help_text = member.wait_for_reply().text
    assert help_text.startswith("You can use:") and "Party member" in help_text  # still bound
    stranger.send_command("/start")
    assert stranger.wait_for_reply().text == msg("bind.intro", "en")

    assert bot.stop() == 0  # SIGTERM is a clean stop
    assert "stopped" in bot.log_tail(5)


def _pledge_dialog_available() -> bool:
    try:
        from campaign.setup import open_campaign  # noqa: F401
        from handlers.app import build_router
    except ImportError:
        return False
    return "pledge" in build_router().commands


def open_campaign_in(db_url: str) -> None:
    from datetime import date

    from campaign.db import Store
    from campaign.setup import open_campaign

    async def go() -> None:
        store = Store(db_url)
        try:
            async with store.write() as session:
                year = date.today().year
                await open_campaign(session, "陇南市", year, starts_on=date(year, 1, 1))
        finally:
            await store.dispose()

    asyncio.run(go())


@pytest.mark.skipif(not _pledge_dialog_available(), reason="the /pledge dialog is not wired yet")
def test_restarted_bot_resumes_a_half_finished_pledge(start_bot, user_of):
    bot = start_bot(prepare=open_campaign_in)
    member = user_of(bot)
    bind(member, MEMBER)
    member.send_command("/pledge")
    question = member.wait_for_reply(lambda m: bool(m.buttons))  # the first question
    wait_outbox_settled(bot)

    bot.kill()
    bot.start()

    member.send_command("/pledge")
    member.wait_for_reply(msg("pledge.resumed"))
    resumed = member.wait_for_reply(lambda m: bool(m.buttons))
    labels = [[b["text"] for b in row] for row in question.buttons]
    assert [[b["text"] for b in row] for row in resumed.buttons] == labels  # the same question
    # a button of the card sent before the crash still works: the dialog goes on
    member.press(question.buttons[0][0]["text"], question)
    after = member.wait_for_reply()
    refusals = {msg(k) for k in ("error.bad_button", "error.stale_card", "error.unexpected")}
    assert after.text not in refusals and after.text != question.text


# -- webhook mode --------------------------------------------------------------------------------


def _post(url: str, payload: dict, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _update(update_id: int, user_id: int, text: str) -> dict:
    message = {
        "message_id": update_id % 100_000,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "W"},
        "from": {"id": user_id, "is_bot": False, "first_name": "W", "language_code": "zh"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


@pytest.fixture(scope="module")
def webhook_bot(proxy, tmp_path_factory, runtime):
    """One bot in webhook mode for the webhook tests."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("webhook-bot")
    _, url = seeded_database(workdir)
    env = {
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/tg",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
    }
    bot = BotProcess(proxy, workdir, url, token=new_token(), env=env, runtime=runtime)
    bot.url = env["WEBHOOK_URL"]
    try:
        yield bot.start()
    finally:
        bot.stop()


@pytest.mark.both_runtimes
def test_webhook_checks_the_secret_and_runs_through_the_emulator(webhook_bot, user_of, proxy):
    bot = webhook_bot
    setup = proxy.calls("setWebhook", token=bot.token)[-1].params
    assert setup["url"] == bot.url and setup["secret_token"] == WEBHOOK_SECRET

    intruder = new_user_id()
    assert _post(bot.url, _update(880_001, intruder, "/start"), None) == 401
    assert _post(bot.url, _update(880_002, intruder, "/start"), "wrong-secret") == 401
    assert not db_rows(bot, "SELECT 1 FROM processedupdate WHERE update_id LIKE '88000%'")

    user = user_of(bot)
    assert _post(bot.url, _update(880_003, user.user_id, "/start"), WEBHOOK_SECRET) == 200
    assert user.wait_for_reply().text == msg("bind.intro")

    # a person writing through the emulator: it posts to the webhook (the proxy adds the secret)
    user.share_contact(SECRETARY)
    assert user.wait_for_reply().text.startswith("绑定成功")
    assert account_of(bot, user.user_id) == (SECRETARY, "zh_CN")
    assert not any(c.params.get("chat_id") == intruder for c in proxy.calls("sendMessage"))


@pytest.mark.both_runtimes
def test_webhook_redelivery_has_one_effect(webhook_bot, user_of, proxy):
    bot = webhook_bot
    user = user_of(bot)
    update = _update(990_001, user.user_id, "/help")
    assert _post(bot.url, update, WEBHOOK_SECRET) == 200
    assert _post(bot.url, update, WEBHOOK_SECRET) == 200  # Telegram retrying
    user.wait_for_reply()
    user.expect_silence(0.5)
    sent = [
        c
        for c in proxy.calls("sendMessage", token=bot.token)
        if c.params["chat_id"] == user.chat_id
    ]
    assert len(sent) == 1
    assert db_rows(bot, "SELECT count(*) FROM processedupdate WHERE update_id = '990001'") == [
        (1,)
    ]


@pytest.mark.both_runtimes
def test_webhook_mode_without_a_secret_refuses_to_start(tmp_path, runtime):
    env = base_env(
        BOT_TOKEN="123456:TEST-nosecret",
        TELEGRAM_API_BASE="http://127.0.0.1:9",
        DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
        WEBHOOK_URL="https://bot.example.org/tg",
        RUNTIME=runtime,
    )
    out = subprocess.run(
        [*bot_command(), "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "WEBHOOK_SECRET" in out.stderr
    assert "Traceback" not in out.stderr
