"""Benchmark: one notice (公告) end to end through ``/notice``, with people talking meanwhile.

Binds N members in a store (a county → townships → village branches), then drives the real core
as the Telegram adapter does: the office sends ``/notice``, the text, taps 全体党员 on the
message the stand-in Bot API accepted, and taps 确认发送 on the preview. The real
``OutboxWorker`` delivers through the real aiogram ``TelegramMessenger`` to the stand-in Bot API
(``tests/tools/fake_bot_api.py``, a process of its own, enforcing Telegram's limits: 30 in any
second, 1 a second per chat with bursts of 4), while the running bot's progress loop
(``bot.notices.follow_notices``) edits the office's message in place. Every second a person
outside the county talks to the bot (a real event through ``Core.handle``, its replies sent
through the reply path ``deliver_ids``); their latency runs from the event to the stand-in
accepting the reply.

``--sms-share`` leaves that share of the members without Telegram, with SMS on (their channel
is automatic, so ``campaign.outbox.member_routes`` routes them to their roster phone); their
rows go to an SMS stand-in that accepts
``--sms-rate`` messages a second (refusing more with a retry-after, as a gateway throttles).

Prints figures, never asserts; the last line is one JSON object.

    python bench/notice.py --members 2000 [--sms-share 0.2] [--db sqlite|pg|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import sys
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bench.broadcast import open_store, percentile  # noqa: E402
from bot.delivery import DeliveryError, RenderedMenu, RenderedMessage  # noqa: E402
from bot.notices import follow_notices  # noqa: E402
from bot.outbox import OutboxWorker  # noqa: E402
from bot.ratelimit import Bucket, Limits, RateLimiter, telegram_limits  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram import TelegramMessenger, make_bot  # noqa: E402
from campaign import notices  # noqa: E402
from campaign.db import Store  # noqa: E402
from handlers.app import build_core  # noqa: E402
from handlers.events import ButtonPressed, CommandReceived, Sender, TextReceived  # noqa: E402
from handlers.notice import NoticeAudienceCb, NoticeConfirmCb  # noqa: E402
from models.dialog import Outbox  # noqa: E402
from models.notice import Notice  # noqa: E402
from models.org import Account, Member, Org, OrgType, Role, RoleGrant  # noqa: E402
from tests.tools.fake_bot_api import ApiLimits, FakeBotApiProcess  # noqa: E402

TOKEN = "123456:BENCH-notice"
CEILING = 30.0
OFFICE_CHAT = "9000001"
TALKERS = 30
PER_BRANCH = 40
BRANCHES_PER_TOWNSHIP = 25
MARK = "【公告】"


class SmsStandIn:
    """An SMS gateway stand-in: accepts ``rate`` messages a second, refuses more (retry after)."""

    platform = "sms"

    def __init__(self, rate: float, latency: float = 0.05) -> None:
        self.rate = rate
        self.latency = latency
        self.accepted: list[tuple[str, float]] = []
        self.throttled = 0
        self._window: deque[float] = deque()

    async def send(self, chat_id: str, message: RenderedMessage) -> str | None:
        await asyncio.sleep(self.latency)
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= math.floor(self.rate):
            self.throttled += 1
            raise DeliveryError("throttled", retry_after=1.0)
        self._window.append(now)
        self.accepted.append((chat_id, time.time()))
        return f"sms{len(self.accepted)}"

    async def edit(self, chat_id: str, message: RenderedMessage) -> None:
        raise DeliveryError("SMS cannot edit", permanent=True)

    async def set_commands(self, chat_id: str, menu: RenderedMenu) -> None:
        return None


async def seed(store: Store, members: int, sms_share: float) -> dict:
    """Create the tree, the office, N bound members and the people who talk meanwhile."""
    async with store.write() as s:

        async def org(name: str, parent: Org | None, typ: OrgType) -> Org:
            full = f"{parent.full_name}/{name}" if parent else name
            o = Org(
                name=name,
                full_name=full,
                type=typ,
                parent_id=parent.id if parent else None,
                depth=parent.depth + 1 if parent else 0,
            )
            s.add(o)
            await s.flush()
            o.path = f"{parent.path if parent else '/'}{o.id}/"
            return o

        city = await org("陇南市", None, OrgType.LEVEL)
        county = await org("武都区", city, OrgType.LEVEL)
        other = await org("成县", city, OrgType.LEVEL)
        branches: list[Org] = []
        needed = max(1, math.ceil(members / PER_BRANCH))
        for t in itertools.count(1):
            if len(branches) >= needed:
                break
            township = await org(f"第{t}镇", county, OrgType.ORGAN)
            for b in range(1, BRANCHES_PER_TOWNSHIP + 1):
                if len(branches) >= needed:
                    break
                branches.append(await org(f"第{t}镇第{b}村党支部", township, OrgType.VILLAGE))
        office = Member(name="创先办", phone="13900000000", org_id=county.id)
        s.add(office)
        await s.flush()
        s.add(RoleGrant(member_id=office.id, role=Role.OFFICE, org_id=county.id))
        s.add(
            Account(
                platform="telegram",
                external_id=OFFICE_CHAT,
                chat_id=OFFICE_CHAT,
                member_id=office.id,
            )
        )
        await s.flush()
        conn = await s.connection()
        on_sms = int(members * sms_share)
        people = [
            {
                "name": f"党员{i}",
                "phone": f"13{i:09d}",
                "org_id": branches[i // PER_BRANCH].id,
                "active": True,
            }
            for i in range(members)
        ]
        talkers = [
            {"name": f"群众{i}", "phone": f"15{i:09d}", "org_id": other.id, "active": True}
            for i in range(TALKERS)
        ]
        for start in range(0, len(people), 2000):
            await conn.execute(insert(Member.__table__), people[start : start + 2000])
        await conn.execute(insert(Member.__table__), talkers)
        rows = (
            await s.exec(select(Member.id, Member.phone).where(col(Member.id) != office.id))
        ).all()
        accounts, talker_chats = [], []
        for member_id, phone in rows:
            is_talker = phone.startswith("15")
            n = int(phone[2:])
            if is_talker:
                chat = str(20_000_000 + n)
                talker_chats.append(chat)
                platform = "telegram"
            elif int((n + 1) * sms_share) > int(n * sms_share):  # spread over the branches
                continue  # no Telegram: reached by SMS (channel auto, SMS on)
            else:
                chat, platform = str(10_000_000 + n), "telegram"
            accounts.append(
                {
                    "platform": platform,
                    "external_id": chat,
                    "chat_id": chat,
                    "member_id": member_id,
                    "locale": "zh_CN",
                    "active": True,
                }
            )
        for start in range(0, len(accounts), 2000):
            await conn.execute(insert(Account.__table__), accounts[start : start + 2000])
    return {"county": county.id, "talkers": talker_chats, "on_sms": on_sms}


async def main(args: argparse.Namespace) -> dict:
    api = FakeBotApiProcess(limits=ApiLimits(), latency=(args.latency[0], args.latency[1]))
    api.start()
    store, dispose = await open_store(args.db)
    store.sms_enabled = True  # as with SMS_GATEWAY set: members without Telegram get SMS
    settings = load_settings(bot_token=TOKEN, telegram_api_base=api.url)
    bot = make_bot(settings)
    http = ClientSession()
    try:
        seeded = await seed(store, args.members, args.sms_share)
        core = build_core(store, secret=b"bench-notice-secret-0123456789abcdef")
        sms = SmsStandIn(args.sms_rate)
        limiter = RateLimiter(
            {
                "telegram": telegram_limits(args.rate),
                "sms": Limits(overall=Bucket(args.sms_rate * 0.95, 1.0)),
            }
        )
        worker = OutboxWorker(
            store, {"telegram": TelegramMessenger(bot), "sms": sms}, limiter=limiter
        )
        print(
            f"{args.members} members bound ({seeded['on_sms']} on SMS only) under one county; "
            f"stand-in Bot API 30/s, 1/s a chat; SMS stand-in {args.sms_rate}/s; "
            f"store {store.url.split('://')[0]}",
            flush=True,
        )
        updates = itertools.count(1)
        office = Sender(platform="telegram", user_id=OFFICE_CHAT, chat_id=OFFICE_CHAT)

        async def event(e) -> None:
            handled = await core.handle(e)
            await worker.deliver_ids(handled.outbox_ids)

        async def last_message_id() -> str:
            async with store.read() as s:
                row = (
                    await s.exec(
                        select(Outbox.sent_message_id)
                        .where(
                            Outbox.chat_id == OFFICE_CHAT, col(Outbox.sent_message_id).is_not(None)
                        )
                        .order_by(col(Outbox.id).desc())
                    )
                ).first()
            return row

        stop = asyncio.Event()
        loop = asyncio.create_task(worker.run(stop))
        progress = asyncio.create_task(
            follow_notices(store, worker, stop, every=args.notice_every)
        )
        await event(CommandReceived(sender=office, command="notice", update_id=str(next(updates))))
        await event(
            TextReceived(
                sender=office,
                text="请各支部于本周五前完成承诺事项自查，按时报送本月进度。",
                update_id=str(next(updates)),
            )
        )
        audience = core.codec.encode(NoticeAudienceCb(seeded["county"], "members"))
        await event(
            ButtonPressed(
                sender=office,
                data=audience,
                message_id=await last_message_id(),
                update_id=str(next(updates)),
            )
        )
        preview_id = await last_message_id()
        confirm = core.codec.encode(NoticeConfirmCb("ok"))
        await api.reset(http)
        confirmed_wall = time.time()
        t0 = time.monotonic()
        await event(
            ButtonPressed(
                sender=office, data=confirm, message_id=preview_id, update_id=str(next(updates))
            )
        )
        confirm_seconds = time.monotonic() - t0
        async with store.read() as s:
            notice = (await s.exec(select(Notice))).one()
            expected = await notices.figures(s, notice)
        print(
            f"confirmed in {confirm_seconds:.2f}s: {expected['messages']} messages queued "
            f"(Telegram {expected['telegram']}, SMS {expected['sms']})",
            flush=True,
        )

        tasks: list[asyncio.Task] = []

        async def talk(n: int) -> None:
            chat = seeded["talkers"][n % len(seeded["talkers"])]
            who = Sender(platform="telegram", user_id=chat, chat_id=chat)
            asked_at = time.time()
            handled = await core.handle(
                TextReceived(sender=who, text="今天天气不错", update_id=f"talk-{n}")
            )
            latencies_pending.append((chat, asked_at))
            await worker.deliver_ids(handled.outbox_ids)

        latencies_pending: list[tuple[str, float]] = []
        for n in itertools.count():
            async with store.read() as s:
                figs = await notices.figures(s, await s.get(Notice, notice.id))
                finished = (await s.get(Notice, notice.id)).finished_at is not None
            if figs["done"] and finished:
                break
            if n and n % 10 == 0:
                print(f"  … sent {figs['sent']} / {figs['messages']}", flush=True)
            tasks.append(asyncio.create_task(talk(n)))
            await asyncio.sleep(args.reply_every)
        await asyncio.gather(*tasks)
        await asyncio.sleep(2 * args.notice_every + 1)  # the summary edit goes out
        stop.set()
        await loop
        await progress

        accepted = await api.accepted(http)
        stats = await api.stats(http)
        notice_tg = [a for a in accepted if a.text.startswith(MARK) and a.method == "sendMessage"]
        edits = [a for a in accepted if a.method == "editMessageText" and a.chat_id == OFFICE_CHAT]
        times = [a.at for a in notice_tg] + [at for _, at in sms.accepted]
        first, last = min(times), max(times)
        tg_first, tg_last = min(a.at for a in notice_tg), max(a.at for a in notice_tg)
        in_window = [a for a in accepted if tg_first <= a.at <= tg_last]
        tg_rate = (len(in_window) - 1) / (tg_last - tg_first) if tg_last > tg_first else 0.0
        talker_set = set(seeded["talkers"])
        latencies = []
        replies = sorted((a for a in accepted if a.chat_id in talker_set), key=lambda a: a.at)
        by_chat: dict[str, list[float]] = {}
        for a in replies:
            by_chat.setdefault(a.chat_id, []).append(a.at)
        for chat, at in latencies_pending:
            later = [t for t in by_chat.get(chat, []) if t >= at]
            if later:
                latencies.append(later[0] - at)
                by_chat[chat].remove(later[0])
        async with store.read() as s:
            final = await notices.figures(s, await s.get(Notice, notice.id))
        sms_seconds = (
            max(at for _, at in sms.accepted) - min(at for _, at in sms.accepted)
            if len(sms.accepted) > 1
            else 0.0
        )
        return {
            "members": args.members,
            "sms_share": args.sms_share,
            "messages": final["messages"],
            "sent": final["sent"],
            "dead": final["dead"],
            "pending": final["pending"],
            "telegram_delivered": len(notice_tg),
            "sms_delivered": len(sms.accepted),
            "duplicates": len(notice_tg) - len({a.chat_id for a in notice_tg}),
            "confirm_seconds": round(confirm_seconds, 2),
            "first_delivery_s": round(first - confirmed_wall, 2),
            "last_delivery_s": round(last - confirmed_wall, 2),
            "telegram_rate": round(tg_rate, 2),
            "fraction_of_ceiling": round(tg_rate / CEILING, 3),
            "429": stats["too_many"],
            "429_by_cause": stats["too_many_by_cause"],
            "sms_rate": round((len(sms.accepted) - 1) / sms_seconds, 2) if sms_seconds else None,
            "sms_throttled": sms.throttled,
            "progress_edits": len(edits),
            "summary_shown": bool(edits) and "公告发送完毕" in edits[-1].text,
            "replies": len(latencies),
            "reply_p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "reply_p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
            "reply_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "store": store.url.split("://")[0],
        }
    finally:
        await http.close()
        await bot.session.close()
        await dispose()
        api.stop()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--sms-share", type=float, default=0.0)
    parser.add_argument("--sms-rate", type=float, default=10.0, help="SMS_RATE: SMS a second")
    parser.add_argument("--db", default="sqlite", help="sqlite, pg, or a database URL")
    parser.add_argument("--rate", type=float, default=29.0, help="the worker's Telegram rate")
    parser.add_argument("--reply-every", type=float, default=1.0)
    parser.add_argument("--notice-every", type=float, default=3.0, help="NOTICE_EVERY")
    parser.add_argument("--latency", type=float, nargs=2, default=(0.02, 0.05))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    figures = asyncio.run(main(args))
    print(
        f"delivered {figures['sent']} of {figures['messages']} (dead {figures['dead']}): "
        f"Telegram {figures['telegram_delivered']} at {figures['telegram_rate']}/s = "
        f"{figures['fraction_of_ceiling']:.1%} of 30/s, {figures['429']} × 429, "
        f"{figures['duplicates']} duplicates; SMS {figures['sms_delivered']} at "
        f"{figures['sms_rate']}/s ({figures['sms_throttled']} throttled)",
        flush=True,
    )
    print(
        f"first delivery {figures['first_delivery_s']}s, last {figures['last_delivery_s']}s "
        f"after 确认 (queued in {figures['confirm_seconds']}s); "
        f"{figures['progress_edits']} progress edits, summary shown: {figures['summary_shown']}",
        flush=True,
    )
    print(
        f"replies to people talking meanwhile: {figures['replies']}, p50 "
        f"{figures['reply_p50_ms']} ms, p99 {figures['reply_p99_ms']} ms, max "
        f"{figures['reply_max_ms']} ms",
        flush=True,
    )
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    cli()
