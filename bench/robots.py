"""Benchmark: a bulletin burst to many group robots (WeCom, DingTalk, Feishu) under their limits.

Links ``--robots N`` robots (the three kinds in turn) to one organization, queues ``--messages
M`` group messages to each, and delivers them with the real ``OutboxWorker``, the real robot
messengers and the robot limits, to the local stand-in of the three APIs
(``tests/e2e/robots.py``), which checks every signature and enforces 20 a minute per WeCom or
DingTalk robot and 5 a second / 100 a minute per Feishu robot. Also times rendering and signing
alone. Prints figures, never asserts; the last line is one JSON object.

    python bench/robots.py --robots 60 --messages 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.delivery import RenderedMessage  # noqa: E402
from bot.outbox import OutboxWorker  # noqa: E402
from bot.ratelimit import ROBOT_LIMITS, RateLimiter  # noqa: E402
from bot.robots import Robots, render, signed_request  # noqa: E402
from campaign import outbox  # noqa: E402
from campaign import robots as campaign_robots  # noqa: E402
from campaign.db import Store  # noqa: E402
from models import Org, OrgType, OutboxStatus  # noqa: E402
from models.reply import Reply  # noqa: E402
from tests.e2e.robots import LIMITS, RobotStandIn  # noqa: E402

KEY = bytes(range(32))
KINDS = ("wecom", "dingtalk", "feishu")


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def main(n_robots: int, n_messages: int) -> dict:
    stand_in = RobotStandIn().start()
    tmp = tempfile.mkdtemp()
    store = Store(f"sqlite:///{tmp}/bench.db")
    await store.migrate()
    try:
        async with store.write() as s:
            org = Org(name="城关镇", full_name="城关镇", type=OrgType.LEVEL, depth=0)
            s.add(org)
            await s.flush()
            org.path = f"/{org.id}/"
            robots = []
            for i in range(n_robots):
                kind = KINDS[i % 3]
                robot = stand_in.add(kind, secret="" if kind == "wecom" else f"SEC{i}")
                link = await campaign_robots.add(
                    s,
                    org_path="城关镇",
                    kind=kind,
                    webhook=robot.webhook,
                    secret=robot.secret,
                    key=KEY,
                )
                robots.append((robot, link.chat_id))
            for robot, chat_id in robots:
                for m in range(n_messages):
                    await outbox.enqueue(
                        s,
                        platform=robot.kind,
                        chat_id=chat_id,
                        reply=Reply("robot.test_message"),
                        locale="zh_CN",
                        key=f"{chat_id}:{m}",
                    )
        total = n_robots * n_messages

        # rendering and signing alone
        message = RenderedMessage("【季度通报】" + "东江村党支部承诺事项进展顺利。\n" * 40)
        t0 = time.perf_counter()
        reps = 2000
        for i in range(reps):
            kind = KINDS[i % 3]
            for body in render(kind, message):
                signed_request(kind, "https://x/robot/send?access_token=t", "SEC", body, 1e9)
        render_us = (time.perf_counter() - t0) / reps * 1e6

        messengers = Robots(store, key=KEY, retry_after=5.0)
        worker = OutboxWorker(store, messengers.messengers(), limiter=RateLimiter(ROBOT_LIMITS))
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(worker.run(stop, idle=0.2))
        while sum(len(r.received) for r, _ in robots) < total:
            if time.perf_counter() - started > 600:
                break
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - started
        stop.set()
        await task
        await messengers.close()
        async with store.read() as s:
            from sqlmodel import func, select

            from models import Outbox

            sent = (
                await s.exec(select(func.count()).where(Outbox.status == OutboxStatus.SENT))
            ).one()
        refused = sum(len(r.refused) for r, _ in robots)
        worst = {}
        for kind in KINDS:
            for window, most in LIMITS[kind]:
                seen = max(
                    (
                        max_in_window([x.at for x in r.received], window)
                        for r, _ in robots
                        if r.kind == kind
                    ),
                    default=0,
                )
                worst[f"{kind}_max_per_{int(window)}s"] = seen
                worst[f"{kind}_limit_per_{int(window)}s"] = most
        result = {
            "bench": "robots",
            "robots": n_robots,
            "messages_per_robot": n_messages,
            "delivered": sum(len(r.received) for r, _ in robots),
            "marked_sent": sent,
            "refused_by_robots": refused,
            "wall_s": round(wall, 2),
            "render_sign_us": round(render_us, 1),
            **worst,
        }
        print(f"robots: {n_robots} ({n_messages} messages each, {total} in all)")
        print(f"delivered {result['delivered']} in {wall:.1f}s; refused by the robots: {refused}")
        print(f"render + sign one message: {render_us:.0f} µs")
        for k, v in worst.items():
            print(f"  {k}: {v}")
        return result
    finally:
        await store.dispose()
        stand_in.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=60)
    parser.add_argument("--messages", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.robots, args.messages))))
