"""End to end: the invite takeover and the group hijack, each refused; the office's tools.

The real ``pledgebot run`` process against the Bot API emulator (through the proxy, which also
says who administers which group), and the real ``pledgebot`` command line on the same store.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import MAIN_TOKEN, BotProcess, base_env, bot_command, make_invite
from tests.e2e.test_foundation import account_of, bind, db_rows, msg

pytestmark = pytest.mark.e2e

SECRETARY = "13800000002"  # 李秀英, secretary of 东江村党支部
COUNTY_OFFICE = "13800000006"  # 杨志军, 创先办 of 武都区


def cli(bot: BotProcess, *args: str) -> subprocess.CompletedProcess:
    """Run ``pledgebot ARGS`` on the bot's database, as the office would."""
    return subprocess.run(
        [*bot_command(), *args],
        env=base_env(DATABASE_URL=bot.db_url, BOT_TOKEN=MAIN_TOKEN, BOT_USERNAME="TestNameBot"),
        cwd=str(Path(bot.db_url.removeprefix("sqlite:///")).parent),
        capture_output=True,
        text=True,
        timeout=60,
    )


def active_external_ids(bot: BotProcess, phone: str) -> list[str]:
    rows = db_rows(
        bot,
        "SELECT a.external_id FROM account a JOIN member m ON m.id = a.member_id "
        "WHERE m.phone = ? AND a.active ORDER BY a.id",
        phone,
    )
    return [r[0] for r in rows]


def test_a_stranger_cannot_bind_with_an_invite_its_person_no_longer_needs(start_bot, user_of):
    bot = start_bot()
    token = make_invite(bot.db_url, SECRETARY)
    secretary, stranger = user_of(bot), user_of(bot)
    bind(secretary, SECRETARY)  # she binds by her contact; the link lies unused in a chat

    stranger.send_command(f"/start inv_{token}")
    assert stranger.wait_for_reply().text == msg("bind.invite_revoked")
    assert account_of(bot, stranger.user_id) is None
    stranger.send_command("/review")
    assert stranger.wait_for_reply().text == msg("bind.needed")
    assert active_external_ids(bot, SECRETARY) == [str(secretary.user_id)]
    acted = db_rows(
        bot, "SELECT count(*) FROM auditevent WHERE payload LIKE ?", f"%{stranger.user_id}%"
    )
    assert acted == [(0,)]

    # the office: a second link for someone bound is refused; --replace ends the old binding
    refused = cli(bot, "invite", SECRETARY)
    assert refused.returncode == 1
    assert "--replace" in refused.stderr
    shown = cli(bot, "accounts", SECRETARY)
    assert shown.returncode == 0 and str(secretary.user_id) in shown.stdout
    replaced = cli(bot, "invite", "--replace", SECRETARY)
    assert replaced.returncode == 0, replaced.stderr
    secretary.wait_for_reply(msg("account.ended_replaced"))
    new_phone = user_of(bot)
    new_token = replaced.stdout.strip().rsplit("inv_", 1)[1]
    new_phone.send_command(f"/start inv_{new_token}")
    assert "李秀英" in new_phone.wait_for_reply().text
    assert active_external_ids(bot, SECRETARY) == [str(new_phone.user_id)]

    unbound = cli(bot, "unbind", SECRETARY)
    assert unbound.returncode == 0, unbound.stderr
    new_phone.wait_for_reply(msg("account.ended_unbound"))
    assert active_external_ids(bot, SECRETARY) == []
    kinds = [r[0] for r in db_rows(bot, "SELECT kind FROM auditevent ORDER BY id")]
    assert kinds.count("account.unbound") == 2 and "account.listed" in kinds


@pytest.mark.both_runtimes
def test_a_linked_group_cannot_be_hijacked(main_bot, user_of, proxy):
    rows = db_rows(
        main_bot,
        "SELECT m.phone FROM member m JOIN rolegrant g ON g.member_id = m.id "
        "JOIN org o ON o.id = g.org_id WHERE g.role = 'secretary' "
        "AND o.full_name NOT LIKE '%东江村%' ORDER BY m.phone LIMIT 1",
    )
    assert rows, "the demo roster should have a secretary of another organization"
    other_phone = rows[0][0]
    secretary, other, office = user_of(main_bot), user_of(main_bot), user_of(main_bot)
    bind(secretary, SECRETARY)
    bind(other, other_phone)
    bind(office, COUNTY_OFFICE)
    group_id = -(1_000_000_000_000 + secretary.user_id)
    proxy.set_chat_admins(group_id, [secretary.user_id, other.user_id])

    def in_group(user):
        return user_of(
            main_bot,
            user_id=user.user_id,
            chat_id=group_id,
            chat_type="supergroup",
            chat_title="东江村党员群",
        )

    # each speaker joins the group's transcript right before speaking, to read what follows
    own = in_group(secretary)
    mark = proxy.mark()
    own.send_command("/bindgroup@TestNameBot")
    assert own.wait_for_reply().text == msg("group.linked", org="东江村党支部")
    asked = proxy.wait_for_call("getChatMember", token=main_bot.token, after=mark)
    assert asked.params["user_id"] == secretary.user_id

    def linked_org() -> list[tuple]:
        return db_rows(
            main_bot,
            "SELECT o.name FROM grouplink l JOIN org o ON o.id = l.org_id WHERE l.chat_id = ?",
            str(group_id),
        )

    rival = in_group(other)
    rival.send_command("/bindgroup")  # another organization's secretary, an admin of the group
    assert rival.wait_for_reply().text == msg("grouplink.linked_elsewhere", org="东江村党支部")
    assert linked_org() == [("东江村党支部",)]
    boss = in_group(office)
    boss.send_command("/bindgroup")  # the office above both, but not an admin of this group
    assert boss.wait_for_reply().text == msg("grouplink.not_admin")
    assert linked_org() == [("东江村党支部",)]

    proxy.set_chat_admins(group_id, [secretary.user_id, other.user_id, office.user_id])
    boss = in_group(office)
    boss.send_command("/bindgroup")
    assert boss.wait_for_reply().text == msg("group.linked", org="武都区")
    assert linked_org() == [("武都区",)]
    told = secretary.wait_for_reply("武都区").text
    assert told == msg(
        "grouplink.moved_away", group="东江村党员群", org="东江村党支部", to="武都区", by="杨志军"
    )
