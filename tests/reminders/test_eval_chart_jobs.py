"""The close of 每季一评 posts each branch's results with its grade chart (a PNG kept as a file)
to the linked group and to the level above; without the documents port, text only."""

from __future__ import annotations

import io

from PIL import Image
from sqlmodel import col, select

from campaign import files
from models import Outbox, Side
from models.org import GroupLink
from reminders.jobs import Jobs
from reports.service import Reports
from tests.reminders.test_evaluate_jobs import CODEC, E, G, at, give, world  # noqa: F401


async def test_the_results_carry_the_grade_chart(world):  # noqa: F811
    store, people = world
    async with store.write() as s:
        s.add(
            GroupLink(
                platform="test",
                chat_id="-100777",
                org_id=people.orgs["village"],
                linked_by=people.ids["secretary"],
            )
        )
    jobs = Jobs(store, CODEC, documents=Reports())
    await jobs.tick(at(2027, 4, 1))
    await give(
        store,
        people,
        "2027Q1",
        lambda rater, rating, ev: None if rater == "m5" and rating.side is not Side.ORG else G,
    )
    await jobs.tick(at(2027, 4, 15))
    await jobs.tick(at(2027, 4, 15, 16))  # a re-run posts nothing twice
    async with store.read() as s:
        rows = (
            await s.exec(
                select(Outbox).where(
                    col(Outbox.dedup_key).like("eval:%:2027Q1:branch:%")
                    | col(Outbox.dedup_key).like("eval:%:2027Q1:upper:%")
                )
            )
        ).all()
        assert len(rows) == 2  # the group, the township reviewer
        group = next(r for r in rows if r.chat_id == "-100777")
        attachment = group.payload["attachment"]
        assert attachment["kind"] == "photo"
        assert attachment["filename"] == "评议等次分布_东江村党支部_2027年第1季度.png"
        ctx = group.payload["context"]
        assert ctx["kinds"]["member"] == {
            "excellent": 0, "good": 5, "fair": 0, "poor": 0, "pending": 0
        }  # fmt: skip
        stored = await files.load(s, attachment["stored"])
        image = Image.open(io.BytesIO(stored.content))
        assert image.format == "PNG" and image.size == (1080, 1350)
        upper = next(r for r in rows if r.chat_id != "-100777")
        assert upper.payload["attachment"]["stored"] == attachment["stored"]


async def test_without_documents_the_results_are_text(world):  # noqa: F811
    store, people = world
    await Jobs(store, CODEC).tick(at(2027, 4, 1))
    await give(store, people, "2027Q1", lambda rater, rating, ev: E)
    await Jobs(store, CODEC).tick(at(2027, 4, 15))
    async with store.read() as s:
        (row,) = (
            await s.exec(select(Outbox).where(col(Outbox.dedup_key).like("eval:%:upper:%")))
        ).all()
    assert row.payload.get("attachment") is None
    assert row.payload["context"]["counts"]["excellent"] == 6
