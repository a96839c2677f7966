"""Count what a member does and reads: a first pledge of N items, one change, a monthly report.

Drives the real core through the chat harness (tests/chat.py) on a fresh SQLite file and
counts taps (buttons pressed), messages typed (commands and text) and the messages and
characters the member receives. Usage: ``python bench/taps.py --items 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaign import review
from campaign.access import load_actor
from campaign.db import Store
from models import Category, Member, Pledge
from models.pledge import Verdict
from reminders.jobs import Jobs
from tests.chat import MEMBER, SECRETARY, ChatBot
from tests.conftest import a_campaign, seed_people

ITEMS = (
    {
        "content": "带领本组5户农户发展花椒种植",
        "goal": "年底前每户新栽花椒2亩，户均增收3000元",
        "measures": "联系镇农技站每季度来村培训1次，帮助联系收购商",
        "deadline": "12月底",
    },
    {
        "content": "为本组8户留守老人上门帮办代办",
        "goal": "每户每月上门1次，全年不少于96次",
        "measures": "建立联系卡，每月第一个周六上门，帮助代购、代缴、陪同就医",
        "deadline": "2026-11-30",
    },
)


class Counter:
    """What the member did and received since ``start``."""

    def __init__(self, bot: ChatBot) -> None:
        self.bot = bot
        self.start()

    def start(self) -> None:
        self.taps0 = self.bot.taps
        self.typed = 0
        self.sent0 = len(self.bot.messenger.sent)

    async def say(self, text: str) -> None:
        self.typed += 1
        await self.bot.say(MEMBER, text)

    async def cmd(self, name: str) -> None:
        self.typed += 1
        await self.bot.cmd(MEMBER, name)

    def figures(self) -> dict:
        received = [m for c, m in self.bot.messenger.sent[self.sent0 :] if c == MEMBER]
        return {
            "taps": self.bot.taps - self.taps0,
            "typed": self.typed,
            "received": len(received),
            "chars": sum(len(m.text) for m in received),
        }


async def run(items: int) -> dict:
    """Play the three stories and return their figures."""
    folder = Path(tempfile.mkdtemp())
    store = Store(f"sqlite:///{folder}/taps.db")
    await store.migrate()
    people = await seed_people(store)
    async with store.write() as s:
        s.add(a_campaign(people, 2026))
        member = await s.get(Member, people.ids["member"])
        member.category, member.post = Category.RURAL, "村文书"
        s.add(member)
    now = [datetime(2026, 4, 10, 2, tzinfo=UTC)]
    bot = ChatBot(store, people, lambda: now[0])
    await bot.bind(MEMBER)
    await bot.bind(SECRETARY)
    count = Counter(bot)
    out: dict = {"first_pledge": None}

    await count.cmd("pledge")
    await bot.press(MEMBER, "农村")
    await bot.press(MEMBER, "保持不变")
    for n in range(1, items + 1):
        if n > 1:
            await bot.press(MEMBER, "添加一条")
        item = ITEMS[(n - 1) % len(ITEMS)]
        for field in ("content", "goal", "measures", "deadline"):
            suffix = f"（{n}）" if n > len(ITEMS) and field == "content" else ""
            await count.say(item[field] + suffix)
        await bot.press(MEMBER, "带头争创佳绩")
    count.figures_before_submit = count.figures()
    count.start()
    await bot.press(MEMBER, "修改")
    await bot.press(MEMBER, f"{items}. ")
    await bot.press(MEMBER, "目标")
    await count.say("全年不少于100次，群众满意率90%以上")
    out["change_one_field"] = count.figures()
    count.start()
    await bot.press(MEMBER, "提交审核")
    if "仍然提交" in bot.labels(MEMBER):
        await bot.press(MEMBER, "仍然提交")
    submit = count.figures()
    out["first_pledge"] = {k: v + submit[k] for k, v in count.figures_before_submit.items()}

    async with store.write() as s:
        pledge = (await s.exec(Pledge.__table__.select())).first()
        secretary = await load_actor(s, people.ids["secretary"])
        await review.decide(s, secretary, pledge.id, 1, Verdict.APPROVE, codec=bot.core.codec)
    while await bot.worker.run_once():
        pass

    now[0] = datetime(2026, 5, 20, 2, tzinfo=UTC)
    count.start()
    await Jobs(store, bot.core.codec, clock=lambda: now[0]).tick(now[0])
    while await bot.worker.run_once():
        pass
    await bot.press(MEMBER, "全部按计划推进")
    out["monthly_on_track"] = count.figures()
    await store.dispose()
    return out


def main() -> None:
    """Print the figures and one line of JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2)
    args = parser.parse_args()
    figures = asyncio.run(run(args.items))
    for story, f in figures.items():
        print(
            f"{story}: {f['taps']} taps, {f['typed']} messages typed, "
            f"{f['received']} messages received ({f['chars']} characters)"
        )
    print(json.dumps({"items": args.items, **figures}))


if __name__ == "__main__":
    main()
