"""End to end: supervision that sees everything (S6), over Telegram.

The real ``pledgebot run`` process behind the Bot API emulator. 城关镇 gets two more branches
that have done nothing; the township's reviewer and the city office see them named in the
roll-up, before the pledging deadline and after it; the district office drills down to the
branch's ledger and who has not reported; a member's difficulty reaches the secretary.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from campaign.demo_data import TOWNSHIP
from models.org import Member, Org, OrgType, Role, RoleGrant
from tests.e2e.client import post_json
from tests.e2e.conftest import BotProcess
from tests.e2e.test_pledge_loop import (
    MEMBER,
    SECRETARY,
    TOWNSHIP_REVIEWER,
    WAIT,
    Store,
    bind,
    button_labels,
    db_write,
    published_pledge_and_held_calendar,
    with_store,
)

pytestmark = pytest.mark.e2e

COUNTY_OFFICE = "13800000006"  # 杨志军, 武都区创先办
CITY_OFFICE = "13800000007"  # 赵丽, 陇南市创先办
IDLE = ("西坪村党支部", "南山村党支部")


def idle_branches(db_url: str) -> None:
    """Add two branches under 城关镇, each with a secretary and two members, none started."""

    async def work(store: Store) -> None:
        async with store.write() as session:
            town = (await session.exec(select(Org).where(Org.full_name == TOWNSHIP))).one()
            phone = 13900000100
            for name in IDLE:
                org = Org(
                    name=name,
                    full_name=f"{TOWNSHIP}/{name}",
                    type=OrgType.VILLAGE,
                    parent_id=town.id,
                    depth=town.depth + 1,
                )
                session.add(org)
                await session.flush()
                org.path = f"{town.path}{org.id}/"
                for k in range(3):
                    phone += 1
                    person = Member(name=f"{name[:2]}党员{k}", phone=str(phone), org_id=org.id)
                    session.add(person)
                    await session.flush()
                    roles = [Role.MEMBER, Role.SECRETARY] if k == 0 else [Role.MEMBER]
                    for role in roles:
                        session.add(RoleGrant(member_id=person.id, role=role, org_id=org.id))

    with_store(db_url, work)


def prepare(db_url: str) -> None:
    published_pledge_and_held_calendar(db_url)
    idle_branches(db_url)


def test_the_roll_up_names_units_not_started_and_the_office_opens_a_branch_ledger(
    start_bot, user_of
):
    bot: BotProcess = start_bot(prepare=prepare)
    reviewer, city, county = user_of(bot), user_of(bot), user_of(bot)
    bind(reviewer, TOWNSHIP_REVIEWER)
    bind(city, CITY_OFFICE)
    bind(county, COUNTY_OFFICE)

    # Before the pledging deadline: where each unit stands in pledging, the idle ones named.
    reviewer.send_command("/summary")
    roll_up = reviewer.wait_for_reply(lambda m: m.text.startswith("【承诺进度汇总】城关镇"))
    assert "东江村党支部、西坪村党支部、南山村党支部" in roll_up.text
    assert "组织承诺（4 个单位）：未开始 4" in roll_up.text  # 城关镇 itself is a unit too
    city.send_command("/summary")
    roll_up = city.wait_for_reply(lambda m: m.text.startswith("【承诺进度汇总】陇南市"))
    assert "武都区/城关镇/西坪村党支部" in roll_up.text
    assert "武都区/城关镇/南山村党支部" in roll_up.text

    # After it: the month, with every unit expected and those with nothing published named.
    yesterday = date.today() - timedelta(days=1)
    db_write(bot, "UPDATE campaign SET pledge_deadline = ?", yesterday.isoformat())
    reviewer.send_command("/summary")
    roll_up = reviewer.wait_for_reply(lambda m: m.text.startswith("【月报汇总】城关镇"))
    assert "应报 4 个单位" in roll_up.text and "已确认上报 0 个" in roll_up.text
    assert "月报尚未上报：东江村党支部" in roll_up.text
    assert "尚无公示承诺（尚未开展）：城关镇、西坪村党支部、南山村党支部" in roll_up.text
    city.send_command("/summary")
    roll_up = city.wait_for_reply(lambda m: m.text.startswith("【月报汇总】陇南市"))
    assert "武都区/城关镇/西坪村党支部、武都区/城关镇/南山村党支部" in roll_up.text

    # The district office opens the branch's ledger, level by level: one command, two taps.
    county.send_command("/ledger")
    level = county.wait_for_reply(lambda m: m.text.startswith("【台账】武都区"))
    assert button_labels(level) == ["📂 城关镇"]
    county.press("📂 城关镇", level)
    level = county.wait_for_reply(lambda m: m.text.startswith("【台账】城关镇"))
    assert button_labels(level)[:3] == ["📂 东江村党支部", "📂 西坪村党支部", "📂 南山村党支部"]
    county.press("📂 东江村党支部", level)
    ledger = county.wait_for_reply(lambda m: m.text.startswith("【台账】东江村党支部"))
    assert "张建国" in ledger.text
    people = county.wait_for_reply(lambda m: "报送名单】东江村党支部" in m.text)
    assert "本月未报（1 人）：张建国" in people.text
    assert "尚无公示承诺：李秀英、王志强、刘桂兰" in people.text
    county.press("📂 西坪村党支部", level)
    county.wait_for_reply("西坪村党支部还没有已公示的承诺事项")
    people = county.wait_for_reply(lambda m: "报送名单】西坪村党支部" in m.text)
    assert "尚无公示承诺：西坪党员0、西坪党员1、西坪党员2" in people.text


@pytest.mark.both_runtimes
def test_a_difficulty_reason_and_a_photo_reach_the_secretary(start_bot, user_of, proxy):
    bot: BotProcess = start_bot(prepare=published_pledge_and_held_calendar)
    member, secretary = user_of(bot), user_of(bot)
    bind(member, MEMBER)
    bind(secretary, SECRETARY)
    member.send_command("/report")
    card = member.wait_for_reply(lambda m: m.text.startswith("【每月一报】"))
    member.press("☐2 有困难", card)
    member.wait_for_reply("遇到了什么困难")
    member.send_text("花椒苗木款未到位，推迟到下月采购")
    member.wait_for_reply("已记录困难原因")
    notice = secretary.wait_for_reply(lambda m: "【遇到困难】张建国" in m.text, WAIT)
    assert "花椒苗木款未到位，推迟到下月采购" in notice.text

    # The card completed, a photo as evidence reaches the secretary as a photo (sendPhoto).
    member.press("☐1 按计划", card)
    member.wait_for_reply("进度已报齐")
    mark = proxy.mark()
    photo = [{"file_id": "AgAD-e2e-photo", "file_unique_id": "u-e2e", "width": 8, "height": 6}]
    post_json(f"{member.url}/sendMessage", member._message(photo=photo, caption="培训现场"))
    member.wait_for_reply("照片已收到")
    sent = proxy.wait_for_call(
        "sendPhoto",
        token=bot.token,
        after=mark,
        where=lambda c: str(c.params.get("chat_id")) == str(secretary.chat_id),
    )
    assert sent.params["photo"] == "AgAD-e2e-photo" and "培训现场" in sent.params["caption"]

    secretary.send_command("/ledger")
    ledger = secretary.wait_for_reply(lambda m: m.text.startswith("【台账】东江村党支部"))
    assert "💬 花椒苗木款未到位" in ledger.text and "📷 佐证照片 1 张" in ledger.text
