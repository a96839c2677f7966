"""A member's channel: routing for each setting, the roster's 通知方式, the SMS wordings' length.

Routing runs on SQLite and PostgreSQL (the ``store`` fixture); the wordings are rendered with
long, realistic context and measured the way a gateway splits them (UCS-2 parts of 67
characters, GSM-7 parts of 153, one part up to 70 / 160).
"""

from __future__ import annotations

import csv
import math
import tomllib
from pathlib import Path

import pytest
from jinja2.exceptions import UndefinedError
from sqlmodel import select

import templates
from campaign import channels, outbox
from campaign.roster import HEADERS, import_roster
from models import Account, AuditEvent, Channel, ChannelBy, Member, Outbox
from models.reply import Button, Reply
from templates import LOCALES, catalog
from tests.conftest import seed_people

SIGNATURE = {"zh_CN": "【承诺通】", "en": "[PledgeBot]"}
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€")


def segments(text: str) -> int:
    """Count the parts a gateway sends: GSM-7 when every character is GSM, else UCS-2."""
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text):
        septets = len(text) + sum(c in GSM_EXTENDED for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


LONG_ITEM = "为本村第三、四、五组共计二十三户困难群众联系花椒和核桃销路，帮助其户均增收两千元以上"
LONG_CONTEXT = {
    "month": "2027-11",
    "owner": "武都区城关镇东江村党支部",
    "org": "武都区城关镇东江村党支部",
    "owing": 12,
    "items": [{"n": n, "content": LONG_ITEM} for n in range(12)],
    "content": LONG_ITEM,
    "item": LONG_ITEM,
    "deadline": "2027-12-31",
    "reason": "连续两个月未报送进度，群众反映花椒收购款迟迟没有兑现，需要尽快核实整改",
    "opener": "城关镇党委组织委员陈明",
    "opinion": "承诺事项过于笼统，没有量化指标和完成时限，请对照审诺标准逐项修改后重新提交",
    "by": "李秀英",
    "quarter": "2027Q4",
    "total": 25,
    "answered": 3,
    "name": "武都区城关镇东江村党支部书记李秀英",
    "grade": "excellent",
    "count": 12,
    "until": "2027-12-31",
}


def sms_keys() -> list[str]:
    return sorted(k for k in catalog().keys("zh_CN") if k.startswith("sms."))


def own_keys() -> set[str]:
    """Return the keys of this module's own SMS catalog (other modules add sms.* keys too)."""
    path = Path(templates.__file__).parent / "messages" / "zh_CN" / "sms.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = set()

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out.add(f"{prefix}{key}")

    walk(data, "")
    return out


def test_every_sms_wording_fits_two_segments_with_the_signature():
    cat = catalog()
    keys, mine = sms_keys(), own_keys()
    assert "sms.report.prompt" in mine and "sms.reply.help" in mine and mine <= set(keys)
    too_long, unmeasured = [], []
    for locale in LOCALES:
        for key in keys:
            for kind in ("member", "org"):
                try:
                    body = cat.render(key, locale, **LONG_CONTEXT, kind=kind)
                except UndefinedError:
                    assert key not in mine, key  # ours must render with the context above
                    unmeasured.append(key)  # another module's wording, with its own test
                    continue
                text = SIGNATURE[locale] + body
                if segments(text) > 2:
                    too_long.append((locale, key, kind, len(text), text))
    assert not too_long, too_long


def test_the_monthly_prompt_by_sms_says_how_to_answer():
    text = catalog().render("sms.report.prompt", "zh_CN", **LONG_CONTEXT, kind="member")
    assert "回复1" in text and "2+原因" in text and "3+日期" in text and "TD" in text
    assert "2027年11月" in text and "12项" in text


def test_a_reply_becomes_its_sms_wording_without_buttons_or_is_not_sent():
    card = Reply(
        "report.prompt", {"month": "2027-05"}, buttons=((Button("report.button.rest", "x"),),)
    )
    sms = channels.sms_reply(card)
    assert sms == Reply("sms.report.prompt", {"month": "2027-05"})
    assert channels.sms_reply(Reply("summary.card", {})) is None  # no SMS wording: not by SMS
    assert channels.sms_reply(Reply("report.prompt", {}, edit_message_id="5")) is None
    assert channels.sms_reply(Reply("report.prompt", {}, toast=True)) is None


@pytest.mark.parametrize(
    "text, code, rest",
    [
        ("1", "on_track", ""),
        ("１", "on_track", ""),
        (" 1。", "on_track", ""),
        ("2 路还没修通", "blocked", "路还没修通"),
        ("2+缺少资金", "blocked", "缺少资金"),
        ("2路还没修通", "blocked", "路还没修通"),
        ("有困难：缺少资金", "blocked", "缺少资金"),
        ("3 7月31日", "pause", "7月31日"),
        ("td", "opt_out", ""),
        ("TD退订", "opt_out", "退订"),
        ("恢复", "opt_in", ""),
        ("12", None, "12"),
        ("Thanks", None, "Thanks"),
        ("你好", None, "你好"),
        ("", None, ""),
    ],
)
def test_texted_codes_are_read(text, code, rest):
    assert channels.parse_sms(text) == (code, rest)


def test_channel_words_in_either_language():
    assert channels.parse_channel("短信") is Channel.SMS
    assert channels.parse_channel(" sms ") is Channel.SMS
    assert channels.parse_channel("微信群") is Channel.GROUP
    assert channels.parse_channel("自动") is Channel.AUTO
    assert channels.parse_channel("Telegram") is Channel.TELEGRAM
    assert channels.parse_channel("信鸽") is None


# --------------------------------------------------------------------------- routing


async def _routes(store, member_id):
    async with store.read() as s:
        return (await outbox.member_routes(s, [member_id]))[member_id]


async def _set(store, member_id, channel, by=ChannelBy.PERSON):
    async with store.write() as s:
        member = await s.get(Member, member_id)
        await channels.set_channel(s, member, channel, by=by, via="test")


async def test_routing_for_each_channel_setting(store):
    people = await seed_people(store)
    store.sms_enabled = True
    bound, unbound = people.ids["member"], people.ids["peer"]
    async with store.write() as s:
        s.add(Account(platform="telegram", external_id="u1", chat_id="c1", member_id=bound))
        s.add(Account(platform="telegram", external_id="u3", chat_id="c3", member_id=unbound))
        await s.flush()
        old = (await s.exec(select(Account).where(Account.external_id == "u3"))).one()
        old.active, old.locale = False, "en"  # ended: the person's language is still known
    tg = outbox.Route("telegram", "c1", "zh_CN")
    sms_bound = outbox.Route("sms", "13800000001", "zh_CN")
    sms_unbound = outbox.Route("sms", "13800000003", "en")

    # auto: Telegram when bound, SMS (in the person's language) when not
    assert await _routes(store, bound) == [tg]
    assert await _routes(store, unbound) == [sms_unbound]
    # sms: only SMS, even when bound
    await _set(store, bound, Channel.SMS)
    assert await _routes(store, bound) == [sms_bound]
    # telegram and the office's WeChat group: never SMS
    await _set(store, bound, Channel.TELEGRAM)
    assert await _routes(store, bound) == [tg]
    await _set(store, unbound, Channel.TELEGRAM)
    assert await _routes(store, unbound) == []
    await _set(store, unbound, Channel.GROUP, ChannelBy.OFFICE)
    assert await _routes(store, unbound) == []
    # none (opted out): nothing at all
    await _set(store, bound, Channel.NONE)
    assert await _routes(store, bound) == []
    await _set(store, unbound, Channel.AUTO)
    assert await _routes(store, unbound) == [sms_unbound]

    # SMS not enabled in this deployment: nobody is routed to SMS; a chosen SMS falls back
    store.sms_enabled = False
    assert await _routes(store, unbound) == []
    await _set(store, bound, Channel.SMS)
    assert await _routes(store, bound) == [tg]

    # someone no longer on the roster gets no SMS
    store.sms_enabled = True
    async with store.write() as s:
        (await s.get(Member, unbound)).active = False
    assert await _routes(store, unbound) == []

    async with store.read() as s:
        kinds = (await s.exec(select(AuditEvent.kind).order_by(AuditEvent.id))).all()
    assert kinds.count("channel.opted_out") == 1 and "channel.set" in kinds


async def test_notify_member_sends_the_sms_wording_once_and_skips_kinds_without_one(store):
    people = await seed_people(store)
    store.sms_enabled = True
    member = people.ids["member"]
    card = Reply(
        "report.prompt",
        {"month": "2027-05", "owing": 2, "kind": "member", "owner": "张建国"},
        buttons=((Button("report.button.rest", "x"),),),
    )
    async with store.write() as s:
        first = await outbox.notify_member(s, member, card, key="prompt:1")
        again = await outbox.notify_member(s, member, card, key="prompt:1")
        none = await outbox.notify_member(s, member, Reply("summary.card", {}), key="sum:1")
    assert len(first) == 1 and again == [] and none == []
    async with store.read() as s:
        row = (await s.exec(select(Outbox))).one()
    assert (row.platform, row.chat_id, row.dedup_key) == (
        "sms",
        "13800000001",
        "prompt:1:sms:13800000001",
    )
    assert row.payload["template"] == "sms.report.prompt" and "buttons" not in row.payload
    assert row.payload["context"]["owing"] == 2


# --------------------------------------------------------------------------- the roster


def _write(path, rows, channel_column: bool):
    header = (
        [*HEADERS.values()]
        if channel_column
        else [w for k, w in HEADERS.items() if k != "channel"]
    )
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row if channel_column else row[:-1])
    return path


VILLAGE = "陇南市/武都区/城关镇/东江村党支部"
ROWS = [
    [VILLAGE, "村", "张建国", "13800000001", "农村", "村文书", "党员", "", "短信"],
    [VILLAGE, "村", "李秀英", "13800000002", "农村", "书记", "党员、书记", "", ""],
    [VILLAGE, "村", "王强", "13800000003", "农村", "", "党员", "", "微信群"],
    [VILLAGE, "村", "赵刚", "13800000004", "农村", "", "党员", "", "Telegram"],
]


async def _channels(store):
    async with store.read() as s:
        rows = (await s.exec(select(Member.phone, Member.channel, Member.channel_by))).all()
    return {phone[-1]: (channel, by) for phone, channel, by in rows}


async def test_roster_column_sets_the_channel_and_old_rosters_stay_valid(store, tmp_path):
    result = await import_roster(store, _write(tmp_path / "a.csv", ROWS, True))
    assert result.ok, result.errors
    assert await _channels(store) == {
        "1": (Channel.SMS, ChannelBy.OFFICE),
        "2": (Channel.AUTO, ChannelBy.DEFAULT),
        "3": (Channel.GROUP, ChannelBy.OFFICE),
        "4": (Channel.TELEGRAM, ChannelBy.OFFICE),
    }
    # the person's own choice (here: opting out) outlives the office's next file
    await _set(store, (await _member_id(store, "13800000004")), Channel.NONE)
    # a roster without the column changes nobody's setting
    result = await import_roster(store, _write(tmp_path / "b.csv", ROWS, False))
    assert result.ok and result.unchanged == 4
    assert (await _channels(store))["1"] == (Channel.SMS, ChannelBy.OFFICE)
    # with the column, the office's changes apply, the person's choice stays
    changed = [[*r[:-1], "自动"] for r in ROWS]
    result = await import_roster(store, _write(tmp_path / "c.csv", changed, True))
    assert result.ok and result.updated == 2
    assert await _channels(store) == {
        "1": (Channel.AUTO, ChannelBy.DEFAULT),
        "2": (Channel.AUTO, ChannelBy.DEFAULT),
        "3": (Channel.AUTO, ChannelBy.DEFAULT),
        "4": (Channel.NONE, ChannelBy.PERSON),
    }


async def _member_id(store, phone):
    async with store.read() as s:
        return (await s.exec(select(Member.id).where(Member.phone == phone))).one()


async def test_a_bad_channel_word_rejects_the_file(store, tmp_path):
    bad = [*ROWS[:1], [*ROWS[1][:-1], "信鸽"], [*ROWS[2][:-1], "不接收"]]
    result = await import_roster(store, _write(tmp_path / "bad.csv", bad, True))
    assert not result.ok
    assert [(e.row, e.column, e.reason_key) for e in result.errors] == [
        (3, "通知方式", "roster.error.channel_invalid"),
        (4, "通知方式", "roster.error.channel_invalid"),
    ]
    text = catalog().render(result.errors[0].reason_key, "zh_CN", **result.errors[0].context)
    assert "信鸽" in text and "短信" in text and "微信群" in text
    async with store.read() as s:
        assert (await s.exec(select(Member))).all() == []
