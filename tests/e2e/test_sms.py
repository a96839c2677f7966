"""e2e: SMS through the real ``pledgebot run`` and a local SMSC (npm ``smpp`` as a server).

Rows are queued the way the campaign queues them (outbox rows of platform "sms", chat id the
roster phone, an ``sms.*`` template); the bot delivers them over SMPP. Checked: a 300-character
Chinese notice arrives as UCS-2 parts of 67 characters with concatenation headers that join to
the signed text, its segments and receipt are recorded; an inbound "1" from a roster phone
reaches the core; quiet hours hold a row until 08:00 without spending an attempt (the bot runs
on a faked clock); the SMSC going away and coming back loses nothing; kill -9 in the middle of
a 5,000-recipient notice over SMS and Telegram loses nothing and repeats at most one batch.
The HTTP gateway: a send is signed and mapped; a forged callback changes nothing.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from sqlalchemy import insert

from bot.sms_http import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from campaign.db import Store
from campaign.sms_stats import segments_and_receipts
from models.base import utcnow
from models.dialog import Outbox, Priority
from models.reply import Reply
from templates import catalog
from tests.e2e.conftest import base_env, bot_command, faketime_lib, free_port
from tests.e2e.smsc import Smsc, smsc, wait_until  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

PHONE = "13800000001"  # 张建国 of the demo roster
SIGNATURE = catalog().render("sms.signature", "zh_CN")
HTTP_SECRET = "e2e-sms-http-secret"
#: the worker's claim size (bot/outbox.py default): what a kill may send twice
BATCH = 50


def sms_text(text: str, locale: str = "zh_CN") -> str:
    """Return what the SMS of the test template says for ``text``, signature first."""
    return catalog().render("sms.signature", locale) + catalog().render(
        "sms.gateway.test", locale, text=text
    )


def queue(db_url: str, rows: list[tuple[str, str, str]], key: str) -> None:
    """Queue (platform, chat id, text) rows as the campaign does, keyed ``key:i``."""

    async def run() -> None:
        store = Store(db_url)
        now = utcnow()
        values = []
        for i, (platform, chat_id, text) in enumerate(rows):
            template = "sms.gateway.test" if platform == "sms" else "demo.step"
            payload = {"locale": "zh_CN", **Reply(template, {"text": text}).to_payload()}
            values.append(
                {
                    "dedup_key": f"{key}:{i}",
                    "platform": platform,
                    "chat_id": chat_id,
                    "kind": "message",
                    "payload": payload,
                    "priority": Priority.BROADCAST,
                    "status": "pending",
                    "attempts": 0,
                    "not_before": now,
                    "created_at": now,
                }
            )
        try:
            for start in range(0, len(values), 2000):
                async with store.write() as session:
                    conn = await session.connection()
                    await conn.execute(insert(Outbox.__table__), values[start : start + 2000])
        finally:
            await store.dispose()

    asyncio.run(run())


def db_rows(db_url: str, sql: str, *args) -> list[tuple]:
    """Read the bot's SQLite database directly."""
    with sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30) as db:
        return db.execute(sql, args).fetchall()


def figures(db_url: str, ids: list[int]):
    """Return campaign.sms_stats' figures of these outbox rows."""

    async def run():
        store = Store(db_url)
        try:
            async with store.read() as session:
                return await segments_and_receipts(session, ids)
        finally:
            await store.dispose()

    return asyncio.run(run())


def joined(parts: list[dict]) -> str:
    """Join concatenated parts by their UDH (reference, total, number)."""
    return "".join(p["text"] for p in sorted(parts, key=lambda p: p["udh"][-2:]))


def sms_env(smsc: Smsc, **extra: str) -> dict[str, str]:  # noqa: F811
    return {"SMS_GATEWAY": smsc.url, "SMS_QUIET_HOURS": "", "SMS_RATE": "500", **extra}


def test_a_long_chinese_notice_arrives_as_joined_ucs2_segments(start_bot, smsc):  # noqa: F811
    bot = start_bot(env=sms_env(smsc))
    smsc.wait_bound()
    text = ("各位党员：本月公开承诺践诺情况已汇总，请按时登录承诺通报告进度。" * 10)[:300]
    # queued by the operator's command, as a campaign queues its notices
    done = subprocess.run(
        [*bot_command(), "sms-test", PHONE, text],
        env=base_env(DATABASE_URL=bot.db_url, SMS_GATEWAY=smsc.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert PHONE not in done.stdout and "138****0001" in done.stdout
    parts = wait_until(lambda: smsc.submits(), what="the SMS parts")
    wanted = sms_text(text)
    want_parts = -(-len(wanted) // 67)
    parts = wait_until(lambda: len(s := smsc.submits()) >= want_parts and s, what="all parts")
    assert len(parts) == want_parts
    ref = parts[0]["udh"][4:6]
    for number, part in enumerate(parts, 1):
        assert part["dest"] == "86" + PHONE
        assert part["data_coding"] == 8  # UCS-2
        assert part["esm_class"] & 0x40  # UDH indicator
        # IE 00 (8-bit reference), length 3, reference, total, number
        assert part["udh"] == f"0003{ref}{want_parts:02x}{number:02x}"
        assert len(part["text"]) <= 67
    assert joined(parts) == wanted
    assert wanted.startswith(SIGNATURE)

    ((row_id, message_id),) = wait_until(
        lambda: db_rows(
            bot.db_url,
            "select id, sent_message_id from outbox where platform='sms' and status='sent'",
        ),
        what="the row marked sent",
    )
    assert message_id == f"smpp:{parts[0]['message_id']}"
    for part in parts:
        assert smsc.receipt(part["message_id"]) == [0]
    found = wait_until(
        lambda: (f := figures(bot.db_url, [row_id])).delivered == 1 and f, what="receipts"
    )
    assert found.segments == want_parts and found.messages == 1 and found.waiting == 0
    log = bot.log_path.read_text()
    assert PHONE not in log and "138****0001" in log  # numbers masked in the log


def test_an_sms_from_a_roster_phone_reaches_the_core(start_bot, smsc):  # noqa: F811
    bot = start_bot(env=sms_env(smsc))
    smsc.wait_bound()
    assert smsc.mo(PHONE, "1") == [0]
    processed = db_rows(bot.db_url, "select update_id from processedupdate where platform = 'sms'")
    assert len(processed) == 1 and processed[0][0].startswith("sms:")
    # the same SMS delivered again by the SMSC is recognised: nothing more happens
    before = db_rows(bot.db_url, "select count(*) from outbox where platform = 'sms'")
    assert smsc.mo(PHONE, "1") == [0]
    assert db_rows(bot.db_url, "select count(*) from processedupdate where platform='sms'") == [
        (1,)
    ]
    assert db_rows(bot.db_url, "select count(*) from outbox where platform = 'sms'") == before
    # a long inbound SMS in three concatenated parts reaches the core as one text
    assert smsc.mo(PHONE, "我已经完成了本月承诺事项，群众反映良好。" * 6, parts=3) == [0, 0, 0]
    assert db_rows(bot.db_url, "select count(*) from processedupdate where platform='sms'") == [
        (2,)
    ]
    assert PHONE not in bot.log_path.read_text()


def test_quiet_hours_hold_an_sms_until_eight(start_bot, smsc):  # noqa: F811
    lib = faketime_lib()
    if lib is None:
        pytest.skip("libfaketime is not installed (Debian package faketime)")
    # 21:30 in Shanghai (the campaign's timezone): quiet until 08:00 the next morning
    env = sms_env(
        smsc,
        SMS_QUIET_HOURS="21:00-08:00",
        LD_PRELOAD=lib,
        FAKETIME="@2027-04-01 13:30:00",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        TZ="UTC",
    )
    bot = start_bot(env=env)
    smsc.wait_bound()
    queue(bot.db_url, [("sms", PHONE, "早上好")], "quiet")
    held = wait_until(
        lambda: db_rows(
            bot.db_url,
            "select not_before, attempts, status from outbox"
            " where platform = 'sms' and not_before > '2027-01-01 00:00:00'",
        ),
        timeout=30,
        what="the row held",
    )
    ((not_before, attempts, status),) = held
    assert not_before.startswith("2027-04-02 00:00:00")  # 08:00 in Shanghai
    assert attempts == 0 and status == "pending"  # held, no attempt spent
    time.sleep(1)
    assert smsc.submits() == []
    # the next morning, a little before eight: it goes out at eight, once
    bot.stop()
    bot.extra_env["FAKETIME"] = "@2027-04-01 23:59:50"
    bot.start()
    parts = wait_until(lambda: smsc.submits(), timeout=60, what="the SMS at 08:00")
    assert [p["text"] for p in parts] == [sms_text("早上好")]
    ((sent_at, attempts),) = wait_until(
        lambda: db_rows(
            bot.db_url, "select sent_at, attempts from outbox where platform='sms' and sent_at"
        ),
        what="the row marked sent",
    )
    assert sent_at >= "2027-04-02 00:00:00" and attempts == 1


def test_the_smsc_going_away_and_back_loses_nothing(start_bot, smsc):  # noqa: F811
    bot = start_bot(env=sms_env(smsc, SMS_RATE="20"))
    smsc.wait_bound()
    phones = [f"1390000{i:04d}" for i in range(60)]
    queue(bot.db_url, [("sms", p, f"第{i}号") for i, p in enumerate(phones)], "away")
    wait_until(lambda: len(smsc.submits()) >= 10, what="the first sends")
    smsc.stop()
    time.sleep(3)
    smsc.start()
    wait_until(
        lambda: (
            db_rows(bot.db_url, "select count(*) from outbox where status='sent'")[0][0]
            == len(phones)
        ),
        timeout=90,
        what="every row sent",
    )
    got = Counter(s["dest"] for s in smsc.submits())
    assert set(got) == {"86" + p for p in phones}
    assert db_rows(bot.db_url, "select count(*) from outbox where status != 'sent'") == [(0,)]
    assert smsc.binds()["binds"] >= 2


def test_kill_9_in_a_5000_recipient_notice_over_sms_and_telegram(start_bot, smsc, proxy):  # noqa: F811
    n_sms, n_tg = 4000, 1000
    bot = start_bot(env=sms_env(smsc, SMS_RATE="1000", TELEGRAM_RATE="1000"))
    smsc.wait_bound()
    rows = [("sms", f"139{i:08d}", f"n{i}") for i in range(n_sms)]
    rows += [("telegram", str(9_000_000 + i), f"t{i}") for i in range(n_tg)]
    mark = proxy.mark()
    queue(bot.db_url, rows, "kill")
    wait_until(lambda: len(smsc.submits()) >= n_sms // 4, timeout=120, what="a quarter sent")
    bot.kill()
    killed_at = len(smsc.submits())
    bot.start()
    wait_until(
        lambda: (
            db_rows(bot.db_url, "select count(*) from outbox where status='sent'")[0][0]
            >= len(rows)
        ),
        timeout=240,
        what="every row sent",
    )
    sms = Counter(s["dest"] for s in smsc.submits())
    tg = Counter(
        c.params.get("chat_id") for c in proxy.calls("sendMessage", token=bot.token, after=mark)
    )
    assert set(sms) == {"86" + chat for p, chat, _ in rows if p == "sms"}
    assert {str(k) for k in tg} == {chat for p, chat, _ in rows if p == "telegram"}
    twice = sum(v - 1 for v in sms.values()) + sum(v - 1 for v in tg.values())
    print(f"killed after {killed_at} SMS; {twice} sent twice")
    assert twice <= BATCH
    assert db_rows(bot.db_url, "select count(*) from outbox where status != 'sent'") == [(0,)]


class _Provider(http.server.BaseHTTPRequestHandler):
    """A stand-in HTTP SMS provider (generic fields) that checks the HMAC signature."""

    received: list[dict] = []
    refused: list[int] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = verify(
            HTTP_SECRET,
            self.headers.get(TIMESTAMP_HEADER, ""),
            body,
            self.headers.get(SIGNATURE_HEADER, ""),
            time.time(),
        )
        if not ok:
            self.refused.append(1)
            self.send_response(403)
            self.end_headers()
            return
        self.received.append(json.loads(body))
        answer = json.dumps({"id": f"h{len(self.received)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def _post(url: str, body: bytes, secret: str) -> int:
    stamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(secret, stamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_http_gateway_signs_and_maps_and_refuses_a_forged_callback(start_bot):
    _Provider.received, _Provider.refused = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback_port = free_port()
    try:
        bot = start_bot(
            env={
                "SMS_GATEWAY": f"http://127.0.0.1:{server.server_port}/send",
                "SMS_HTTP_SECRET": HTTP_SECRET,
                "SMS_SOURCE": "承诺通",
                "SMS_QUIET_HOURS": "",
                "SMS_CALLBACK_PORT": str(callback_port),
            }
        )
        queue(bot.db_url, [("sms", PHONE, "请于月底前报告进度")], "http")
        (body,) = wait_until(lambda: _Provider.received, what="the signed request")
        assert body == {"to": PHONE, "text": sms_text("请于月底前报告进度"), "sign": "承诺通"}
        assert _Provider.refused == []
        url = f"http://127.0.0.1:{callback_port}/sms/callback"
        mo = json.dumps({"type": "mo", "id": "m-1", "from": PHONE, "text": "1"}).encode()
        assert _post(url, mo, "forged-secret") == 403
        time.sleep(0.5)
        assert db_rows(bot.db_url, "select * from processedupdate where platform='sms'") == []
        assert _post(url, mo, HTTP_SECRET) == 200
        assert db_rows(
            bot.db_url, "select update_id from processedupdate where platform='sms'"
        ) == [("sms:http:m-1",)]
    finally:
        server.shutdown()
