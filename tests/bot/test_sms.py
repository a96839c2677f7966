"""The SMS door in-process: segments, quiet hours, masking, the SMPP and HTTP gateways.

The SMPP gateway talks to the local SMSC of the test suite (tests/e2e/smsc.js); the HTTP
gateway to a stand-in provider (aiohttp) that checks the HMAC signature and the field names.
Inbound SMS go to a real core on a real database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import pytest
from aiohttp import ClientSession, web

from bot.delivery import DeliveryError, RenderedButton, RenderedMessage
from bot.settings import SettingsError, load_settings
from bot.sms import (
    MaskPhones,
    QuietHours,
    Recorder,
    SmsInbound,
    SmsMessenger,
    decode,
    mask,
    segment,
    split_udh,
)
from bot.sms_http import (
    CALLBACK_PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HttpGateway,
    Mapping,
    sign,
    verify,
)
from bot.sms_smpp import SmppGateway
from campaign.sms_stats import segments_and_receipts
from handlers.app import build_core
from models.dialog import ProcessedUpdate
from models.sms import SmsSent
from tests.e2e.conftest import free_port
from tests.e2e.smsc import smsc  # noqa: F401  (the fixture)

PHONE = "13800000001"
SECRET = "sms-http-secret-for-tests"


# -- segments -----------------------------------------------------------------------------------


def test_a_300_character_chinese_text_takes_five_ucs2_parts_with_headers():
    text = "承诺" * 150
    seg = segment(text, ref=0x2A)
    assert seg.count == 5 and seg.data_coding == 8 and seg.esm_class == 0x40
    for number, part in enumerate(seg.parts, 1):
        header, body = split_udh(part)
        assert header == (0x2A, 5, number)
        assert part[:6] == bytes((5, 0, 3, 0x2A, 5, number))
        assert len(body) <= 134  # 67 UCS-2 characters
    assert "".join(decode(split_udh(p)[1], 8) for p in seg.parts) == text


def test_short_texts_are_one_sms_and_gsm_text_takes_153_per_part():
    assert segment("承" * 70).count == 1
    assert segment("承" * 71).count == 2
    assert segment("a" * 160).count == 1 and segment("a" * 160).data_coding == 0
    long = segment("a" * 161)
    assert long.count == 2 and len(split_udh(long.parts[0])[1]) == 153


def test_a_character_outside_the_bmp_is_never_cut():
    text = "承" * 66 + "😀" + "诺" * 10
    seg = segment(text)
    assert "".join(decode(split_udh(p)[1], 8) for p in seg.parts) == text


# -- quiet hours --------------------------------------------------------------------------------


def test_quiet_hours_run_across_midnight_in_the_campaigns_timezone():
    quiet = QuietHours.parse("21:00-08:00", "Asia/Shanghai")
    assert quiet is not None
    # 20:59 in Shanghai: not quiet; 21:00: quiet until 08:00 the next day (00:00 UTC)
    assert quiet.hold_until(datetime(2027, 4, 1, 12, 59, tzinfo=UTC)) is None
    assert quiet.hold_until(datetime(2027, 4, 1, 13, 0, tzinfo=UTC)) == datetime(
        2027, 4, 2, 0, 0, tzinfo=UTC
    )
    # 03:00 in Shanghai: the same morning
    assert quiet.hold_until(datetime(2027, 4, 1, 19, 0, tzinfo=UTC)) == datetime(
        2027, 4, 2, 0, 0, tzinfo=UTC
    )
    assert quiet.hold_until(datetime(2027, 4, 2, 0, 0, tzinfo=UTC)) is None
    assert QuietHours.parse("") is None


def test_sms_settings_are_checked():
    with pytest.raises(SettingsError, match="SMS_QUIET_HOURS"):
        load_settings(sms_quiet_hours="9pm", _env_file=None)
    with pytest.raises(SettingsError, match="SMS_GATEWAY"):
        load_settings(sms_gateway="ftp://x", _env_file=None)
    with pytest.raises(SettingsError, match="SMS_HTTP_SECRET"):
        load_settings(sms_gateway="https://sms.example/send", _env_file=None)
    with pytest.raises(SettingsError, match="SMS_HTTP_PROVIDER"):
        load_settings(
            sms_gateway="https://sms.example/send",
            sms_http_secret="s",
            sms_http_provider="nobody",
            _env_file=None,
        )
    ok = load_settings(sms_gateway="smpp://u:p@h:2775", _env_file=None)
    assert ok.sms_quiet_hours == "21:00-08:00"


# -- masking ------------------------------------------------------------------------------------


def test_phone_numbers_are_masked_in_every_log_record(caplog):
    assert mask("to 13800000001 and +8613912345678, order 2027040100001") == (
        "to 138****0001 and 139****5678, order 2027040100001"
    )
    logger = logging.getLogger("tests.sms.mask")
    caplog.handler.addFilter(MaskPhones())
    with caplog.at_level(logging.INFO):
        logger.info("sms from %s", "13800000001")
    assert "13800000001" not in caplog.text and "138****0001" in caplog.text


# -- the messenger ------------------------------------------------------------------------------


async def _bound(gateway: SmppGateway) -> None:
    for _ in range(400):
        if gateway.bound:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not bound")


async def test_the_messenger_signs_holds_at_night_and_refuses_bad_numbers(store, smsc):  # noqa: F811
    gateway = SmppGateway("127.0.0.1", smsc.port, "pledgebot", "secret")
    await gateway.start(None)
    await _bound(gateway)
    night = datetime(2027, 4, 1, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    now = [night]
    messenger = SmsMessenger(
        gateway,
        Recorder(store),
        quiet=QuietHours.parse("21:00-08:00", "Asia/Shanghai"),
        clock=lambda: now[0],
    )
    message = RenderedMessage(
        text="请报进度", buttons=((RenderedButton("按钮", data="x"),),), locale="en", outbox_id=7
    )
    assert messenger.cost(message) == 1  # SMS_RATE counts segments
    assert messenger.cost(RenderedMessage(text="承" * 300)) == 5
    with pytest.raises(DeliveryError) as held:
        await messenger.send(PHONE, message)
    assert held.value.hold_until == datetime(2027, 4, 2, 0, 0, tzinfo=UTC)
    assert await asyncio.to_thread(smsc.submits) == []
    now[0] = datetime(2027, 4, 2, 0, 0, tzinfo=UTC)
    try:
        message_id = await messenger.send(PHONE, message)
        (sent,) = await asyncio.to_thread(smsc.submits)
        assert message_id == f"smpp:{sent['message_id']}"
        assert sent["text"] == "[PledgeBot]请报进度"  # signed; no button text
        with pytest.raises(DeliveryError) as bad:
            await messenger.send("12345", message)
        assert bad.value.permanent
    finally:
        await gateway.stop()
    await messenger.recorder.flush()
    async with store.read() as session:
        figures = await segments_and_receipts(session, [7])
    assert figures.messages == 1 and figures.segments == 1 and figures.waiting == 1


# -- SMPP ---------------------------------------------------------------------------------------


async def core_and_inbound(store):
    core = build_core(store, secret=b"k" * 32)
    return core, SmsInbound(core, store)


async def test_smpp_submits_receipts_inbound_and_throttling(store, smsc):  # noqa: F811
    _, inbound = await core_and_inbound(store)
    gateway = SmppGateway("127.0.0.1", smsc.port, "pledgebot", "secret", window=4)
    await gateway.start(inbound)
    try:
        await _bound(gateway)
        accepted = await gateway.submit(PHONE, "承诺" * 40, ref=9)
        assert [a.part for a in accepted] == [1, 2]
        parts = await asyncio.to_thread(smsc.submits)
        assert [p["udh"] for p in parts] == ["0003090201", "0003090202"]
        assert "".join(p["text"] for p in parts) == "承诺" * 40

        # a receipt before the sender's row is written, then the row: both kept
        assert await asyncio.to_thread(smsc.receipt, parts[0]["message_id"]) == [0]
        recorder = Recorder(store)
        from campaign.sms_stats import Submitted

        recorder.add([Submitted(a.message_id, 11, a.segments, a.part) for a in accepted])
        await recorder.flush()
        assert await asyncio.to_thread(smsc.receipt, parts[1]["message_id"], "UNDELIV") == [0]
        async with store.read() as session:
            figures = await segments_and_receipts(session, [11])
            row = await session.get(SmsSent, accepted[0].message_id)
        assert row is not None and row.outbox_id == 11 and row.receipt_state == "DELIVRD"
        assert figures.segments == 2 and figures.failed == 1

        # an inbound SMS reaches the core once, however often the SMSC delivers it
        assert await asyncio.to_thread(smsc.mo, PHONE, "1") == [0]
        assert await asyncio.to_thread(smsc.mo, PHONE, "1") == [0]
        async with store.read() as session:
            processed = await session.exec(
                ProcessedUpdate.__table__.select().where(ProcessedUpdate.platform == "sms")
            )
            assert len(processed.all()) == 1

        # throttled by the SMSC: a retry later, not a failure
        await asyncio.to_thread(smsc.throttle, 1)
        with pytest.raises(DeliveryError) as throttled:
            await gateway.submit(PHONE, "hello", ref=1)
        assert throttled.value.retry_after == 1.0 and not throttled.value.permanent
    finally:
        await gateway.stop()


# -- HTTP ---------------------------------------------------------------------------------------


class Provider:
    """A stand-in HTTP SMS provider: checks the signature, keeps what it was sent."""

    def __init__(self, answer: dict) -> None:
        self.answer = answer
        self.received: list[dict] = []
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            SECRET,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            time.time(),
        ):
            self.refused += 1
            return web.Response(status=403)
        self.received.append(json.loads(body))
        return web.json_response(self.answer)


async def _serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/send", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/send"


@pytest.mark.parametrize(
    ("provider", "answer", "phone_field", "text_field", "wanted_phone", "wanted_text", "mid"),
    [
        ("generic", {"id": "g1"}, "to", "text", PHONE, "【承诺通】好", "g1"),
        (
            "aliyun",
            {"Code": "OK", "BizId": "a1"},
            "PhoneNumbers",
            "TemplateParam",
            PHONE,
            json.dumps({"content": "【承诺通】好"}, ensure_ascii=False),
            "a1",
        ),
        (
            "tencent",
            {"Response": {"SendStatusSet": [{"SerialNo": "t1", "Code": "Ok"}]}},
            "PhoneNumberSet",
            "TemplateParamSet",
            ["+86" + PHONE],
            ["【承诺通】好"],
            "t1",
        ),
    ],
)
async def test_an_http_send_is_signed_and_mapped(
    provider, answer, phone_field, text_field, wanted_phone, wanted_text, mid
):
    stand_in = Provider(answer)
    runner, url = await _serve(stand_in.handle)
    gateway = HttpGateway(url, SECRET, Mapping.named(provider), source="承诺通")
    try:
        await gateway.start(None)
        accepted = await gateway.submit(PHONE, "【承诺通】好", ref=0)
        assert [(a.message_id, a.segments) for a in accepted] == [(f"http:{mid}", 1)]
        (body,) = stand_in.received
        assert body[phone_field] == wanted_phone and body[text_field] == wanted_text
        # a gateway with the wrong secret is refused by the provider: retried, not sent
        wrong = HttpGateway(url, "not-the-secret", Mapping.named(provider))
        await wrong.start(None)
        try:
            with pytest.raises(DeliveryError):
                await wrong.submit(PHONE, "x", ref=0)
        finally:
            await wrong.stop()
        assert stand_in.refused == 1
    finally:
        await gateway.stop()
        await runner.cleanup()


async def test_http_throttling_and_a_refused_number():
    answers = iter(
        [
            web.json_response({}, status=429, headers={"Retry-After": "7"}),
            web.json_response({"Code": "isv.MOBILE_NUMBER_ILLEGAL"}),
            web.json_response({}, status=502),
        ]
    )

    async def handle(request: web.Request) -> web.Response:
        return next(answers)

    runner, url = await _serve(handle)
    gateway = HttpGateway(url, SECRET, Mapping.named("aliyun"))
    await gateway.start(None)
    try:
        with pytest.raises(DeliveryError) as throttled:
            await gateway.submit(PHONE, "x", ref=0)
        assert throttled.value.retry_after == 7.0
        with pytest.raises(DeliveryError) as bad:
            await gateway.submit(PHONE, "x", ref=0)
        assert bad.value.permanent
        with pytest.raises(ConnectionError):  # a network fault: retried with backoff
            await gateway.submit(PHONE, "x", ref=0)
    finally:
        await gateway.stop()
        await runner.cleanup()


async def test_a_forged_callback_changes_nothing_and_a_signed_one_reaches_the_core(store):
    _, inbound = await core_and_inbound(store)
    port = free_port()
    gateway = HttpGateway(
        "http://127.0.0.1:9/unused", SECRET, Mapping.named("generic"), callback_port=port
    )
    await gateway.start(inbound)
    url = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    mo = json.dumps({"type": "mo", "id": "mo-1", "from": "8613800000001", "text": "1"}).encode()
    receipt = json.dumps({"type": "receipt", "id": "x9", "status": "DELIVRD"}).encode()
    try:
        async with ClientSession() as http:
            stamp = str(int(time.time()))
            forged = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign("guess", stamp, mo)}
            async with http.post(url, data=mo, headers=forged) as resp:
                assert resp.status == 403
            stale = str(int(time.time()) - 3600)
            old = {TIMESTAMP_HEADER: stale, SIGNATURE_HEADER: sign(SECRET, stale, mo)}
            async with http.post(url, data=mo, headers=old) as resp:
                assert resp.status == 403
            async with store.read() as session:
                rows = await session.exec(ProcessedUpdate.__table__.select())
                assert [r for r in rows.all() if r.platform == "sms"] == []
                assert await session.get(SmsSent, "http:x9") is None
            for body in (mo, mo, receipt):
                good = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body)}
                async with http.post(url, data=body, headers=good) as resp:
                    assert resp.status == 200
        async with store.read() as session:
            rows = await session.exec(ProcessedUpdate.__table__.select())
            assert [r.update_id for r in rows.all() if r.platform == "sms"] == ["sms:http:mo-1"]
            row = await session.get(SmsSent, "http:x9")
            assert row is not None and row.status == "delivered"
    finally:
        await gateway.stop()
