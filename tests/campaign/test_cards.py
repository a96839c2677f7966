"""Review and peer cards: one platform message in every language, whatever the pledge's size.

Cards for pledges with the longest items allowed (every field at its column's size) are built
after every criterion tick, in every state (open, choosing a reason, confirming, decided), and
rendered in zh_CN and en: each must fit in 4096 characters and offer 全文 when shortened.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from campaign import cards, fit, monthly, propose, review, supervise
from campaign.access import load_actor
from campaign.cards import CARD_TYPES
from campaign.monthly import MONTHLY_TYPES
from models import Pledge, ProgressReport
from models.callbacks import CallbackCodec
from models.errors import DomainError
from models.pledge import Criterion, OwnerKind, PledgeStatus, Review, Verdict
from models.progress import Progress
from models.reply import Reply
from templates import LOCALES, catalog
from tests.conftest import a_campaign, bind_everyone, seed_people

TODAY = date(2026, 3, 10)
CODEC = CallbackCodec(b"k", CARD_TYPES)
PHRASE = "组织本组党员群众开展花椒科学种植技术培训并上门指导，"


def longest(text: str, size: int) -> str:
    """Return a realistic text of exactly ``size`` characters."""
    return (PHRASE * (size // len(PHRASE) + 1))[:size]


def rendered(reply: Reply) -> dict[str, str]:
    return {loc: catalog().render(reply.template, loc, **reply.context) for loc in LOCALES}


def labels(reply: Reply, locale: str = "zh_CN") -> list[str]:
    cat = catalog()
    return [cat.render(b.label, locale, **b.context) for row in reply.buttons for b in row]


def assert_fits(reply: Reply) -> None:
    for locale, text in rendered(reply).items():
        assert fit.length(text) <= fit.TEXT_LIMIT, (locale, fit.length(text))
        assert "…" in text and catalog().render("review.full_button", locale) in labels(
            reply, locale
        )


@pytest.fixture
async def world(sqlite_store):
    people = await seed_people(sqlite_store)
    async with sqlite_store.write() as s:
        s.add(a_campaign(people, 2026))
        bind_everyone(s, people)
    return sqlite_store, people


async def actor(store, people, key):
    async with store.read() as s:
        return await load_actor(s, people.ids[key])


async def long_pledge(store, people, n: int, size: int | None = None) -> int:
    """Submit the member's pledge of ``n`` items, every field as long as allowed (or ``size``)."""
    me = await actor(store, people, "member")
    async with store.write() as s:
        (target,) = [t for t in await propose.targets(s, me) if t.owner is OwnerKind.MEMBER]
        pledge = await propose.open_draft(
            s, me, target, today=TODAY, render=lambda k: catalog().render(k)
        )
        for _ in range(n):
            item = await propose.add_item(s, me, pledge.id)
            for field, limit in propose.ITEM_FIELDS.items():
                text = longest(field + str(item.id), size or limit)
                await propose.set_item_field(s, me, pledge.id, item.id, field, text, year=2026)
            await propose.set_item_field(
                s, me, pledge.id, item.id, "deadline", "2026-11-30", year=2026
            )
            await propose.set_item_field(s, me, pledge.id, item.id, "vanguard", "serve", year=2026)
        await review.submit(s, me, pledge.id, today=TODAY, codec=CODEC)
        return pledge.id


async def card(store, people, pledge_id: int, **kw) -> Reply:
    async with store.read() as s:
        pledge = await s.get(Pledge, pledge_id)
        return await cards.review_card(s, CODEC, pledge, people.ids["secretary"], **kw)


@pytest.mark.parametrize("n", [1, 2, 4, 7, propose.MAX_ITEMS])
async def test_a_card_of_the_longest_pledge_fits_after_every_tick(world, n):
    store, people = world
    pid = await long_pledge(store, people, n)
    sec = await actor(store, people, "secretary")
    first = await card(store, people, pid)
    assert_fits(first)
    for criterion in [*Criterion, *list(Criterion)[:2]]:  # tick all five, untick two
        async with store.write() as s:
            await review.toggle_criterion(s, sec, pid, 1, criterion)
        ticked = await card(store, people, pid)
        assert_fits(ticked)
        assert len(labels(ticked)) == 5 + 2 + 1  # the criteria, 通过/退回修改, 全文
    assert_fits(await card(store, people, pid, choosing_reason=True))
    assert_fits(await card(store, people, pid, confirming=True))


async def test_peers_and_the_decision_at_full_length_still_fit(world):
    store, people = world
    pid = await long_pledge(store, people, propose.MAX_ITEMS)
    peer = await actor(store, people, "peer")
    sec = await actor(store, people, "secretary")
    async with store.write() as s:
        await review.peer_opinion(
            s, peer, pid, 1, Verdict.SUGGEST, codec=CODEC, opinion=longest("p", 1000)
        )
        pledge = await s.get(Pledge, pid)
        peer_card = await cards.peer_card(s, CODEC, pledge, people.ids["peer"])
    assert_fits(peer_card)
    assert_fits(await card(store, people, pid))
    async with store.write() as s:
        await review.decide(
            s, sec, pid, 1, Verdict.RETURN, codec=CODEC, opinion=longest("r", 1000)
        )
    decided = await card(store, people, pid)
    assert_fits(decided)
    assert labels(decided) == ["📄 全文"]  # decided: nothing left to press but the full text
    assert "已退回修改：李书记" in rendered(decided)["zh_CN"]


async def test_a_short_pledge_is_shown_whole_without_a_full_text_button(world):
    store, people = world
    me = await actor(store, people, "member")
    async with store.write() as s:
        (target,) = [t for t in await propose.targets(s, me) if t.owner is OwnerKind.MEMBER]
        pledge = await propose.open_draft(s, me, target, today=TODAY, render=catalog().render)
        item = await propose.add_item(s, me, pledge.id)
        for field, value in [
            ("content", "帮助本村5户困难群众发展花椒种植"),
            ("goal", "年底前户均增收2000元"),
            ("measures", "联系县农技站开展3次技术培训，统一采购优质苗木"),
            ("deadline", "2026-11-30"),
        ]:
            await propose.set_item_field(s, me, pledge.id, item.id, field, value, year=2026)
        await review.submit(s, me, pledge.id, today=TODAY, codec=CODEC)
    shown = await card(store, people, pledge.id)
    text = rendered(shown)["zh_CN"]
    assert "帮助本村5户困难群众发展花椒种植" in text and "时限：2026年11月30日" in text
    assert "…" not in text and "📄 全文" not in labels(shown)
    assert "30 Nov 2026" in rendered(shown)["en"]


async def test_the_decision_time_is_the_campaigns_local_time(world):
    store, people = world
    pid = await long_pledge(store, people, 1)
    sec = await actor(store, people, "secretary")
    async with store.write() as s:
        await review.decide(s, sec, pid, 1, Verdict.APPROVE, codec=CODEC, confirmed=True)
        row = (await s.exec(select(Review).where(Review.pledge_id == pid))).one()
        # 17:05 UTC on 2 December is 01:05 on 3 December in Asia/Shanghai
        row.decided_at = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)
        s.add(row)
    texts = rendered(await card(store, people, pid))
    assert "✅ 已确认：李书记，2026年12月3日 01:05" in texts["zh_CN"]
    assert "3 Dec 2026 01:05" in texts["en"]
    assert "2026-12" not in texts["zh_CN"] + texts["en"]


async def test_approving_needs_the_five_criteria_and_returning_a_reason(world):
    store, people = world
    pid = await long_pledge(store, people, 1)
    sec = await actor(store, people, "secretary")
    for kw, key in [
        ({"verdict": Verdict.APPROVE}, "review.confirm_criteria"),
        ({"verdict": Verdict.RETURN}, "review.reason_required"),
        ({"verdict": Verdict.RETURN, "opinion": " 不行 "}, "review.reason_short"),
    ]:
        with pytest.raises(DomainError) as caught:
            async with store.write() as s:
                await review.decide(s, sec, pid, 1, codec=CODEC, **kw)
        assert caught.value.key == key
    async with store.write() as s:
        await review.toggle_criterion(s, sec, pid, 1, Criterion.SCIENTIFIC)
        await review.toggle_criterion(s, sec, pid, 1, Criterion.POST)
    # the reasons offered are the criteria not ticked as met
    reasons = await card(store, people, pid, choosing_reason=True)
    offered = [b.label for row in reasons.buttons for b in row if b.label.startswith("review.r")]
    assert offered == ["review.reason.adv", "review.reason.use", "review.reason.pub"]
    async with store.write() as s:
        await review.decide(
            s, sec, pid, 1, Verdict.RETURN, codec=CODEC, reasons=[Criterion.ADVANCED]
        )
        decision = (await s.exec(select(Review).where(Review.pledge_id == pid))).one()
    assert decision.reasons == ["adv"] and decision.criteria == ["sci", "post"]


async def test_a_revised_pledge_shows_its_items_earlier_reports(world):
    store, people = world
    pid = await long_pledge(store, people, 2, size=40)
    sec = await actor(store, people, "secretary")
    me = await actor(store, people, "member")
    async with store.write() as s:
        await review.decide(s, sec, pid, 1, Verdict.APPROVE, codec=CODEC, confirmed=True)
        items = await propose.items_of(s, pid)
        for month, status, note in [
            ("2026-05", Progress.ON_TRACK, ""),
            ("2026-06", Progress.BLOCKED, "资金未到位"),
        ]:
            s.add(
                ProgressReport(
                    item_id=items[0].id,
                    pledge_id=pid,
                    month=month,
                    status=Progress(status),
                    note=note,
                    reported_by=me.member_id,
                )
            )
        # A published pledge sent back for revision (the state machine's only way back is a
        # return; here the published pledge is put there directly).
        pledge = await s.get(Pledge, pid)
        pledge.status = PledgeStatus.RETURNED
        s.add(pledge)
    async with store.write() as s:
        (target,) = [t for t in await propose.targets(s, me) if t.owner is OwnerKind.MEMBER]
        revised = await propose.open_draft(s, me, target, today=TODAY, render=catalog().render)
        assert revised.version == 2
        await review.submit(s, me, pid, today=TODAY, codec=CODEC)
    shown = rendered(await card(store, people, pid))
    assert shown["zh_CN"].count("往期报送：") == 1  # only the first item has reports
    assert "往期报送：2026年5月🟢推进；2026年6月🟠困难（资金未到位）" in shown["zh_CN"]
    assert "Earlier reports: May 2026 🟢 on track; June 2026 🟠 blocked" in shown["en"]


async def test_a_monthly_card_of_the_longest_pledge_fits(world):
    store, people = world
    pid = await long_pledge(store, people, propose.MAX_ITEMS)
    sec = await actor(store, people, "secretary")
    async with store.write() as s:
        await review.decide(s, sec, pid, 1, Verdict.APPROVE, codec=CODEC, confirmed=True)
    codec = CallbackCodec(b"k", [*CARD_TYPES, *MONTHLY_TYPES])
    async with store.read() as s:
        pledge = await s.get(Pledge, pid)
        for template in ("report.card", "report.prompt", "report.reminder"):
            shown = await monthly.report_card(
                s, codec, pledge, "2026-05", today=date(2026, 5, 20), template=template
            )
            for locale, text in rendered(shown).items():
                assert fit.length(text) <= fit.TEXT_LIMIT, (template, locale)
                assert "…" in text and "10. " in text  # every item is there, shortened


async def test_a_publication_has_one_date_everywhere(world):
    """Found: one publication dated 12-02 in one place (UTC) and 12-03 in another (local)."""
    store, people = world
    pid = await long_pledge(store, people, 1, size=40)
    sec = await actor(store, people, "secretary")
    async with store.write() as s:
        await review.decide(s, sec, pid, 1, Verdict.APPROVE, codec=CODEC, confirmed=True)
        pledge = await s.get(Pledge, pid)
        pledge.published_at = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)  # 01:05 on 3 Dec local
        s.add(pledge)
    async with store.read() as s:
        pledge = await s.get(Pledge, pid)
        (row,) = await supervise.ledger(s, pledge.campaign_id, pledge.org_id, date(2026, 12, 3))
        letter = await cards.pledge_context(s, pledge, snapshot=True)
    assert row.registered == date(2026, 12, 3)
    letter["published_at"] = pledge.published_at.isoformat()
    assert "公示日期：2026年12月3日" in catalog().render("publish.letter", **letter)
    ledger = catalog().render(
        "ledger.text",
        org="东江村党支部",
        today="2026-12-03",
        part=1,
        parts=1,
        entries=[
            {
                "n": 1,
                "kind": "member",
                "owner": "张建国",
                "content": "x",
                "registered": row.registered.isoformat(),
                "deadline": None,
                "state": row.state,
                "done_on": None,
                "rect": False,
                "pause": None,
                "note": None,
                "photos": 0,
            }
        ],
        rectifiable=[],
    )
    assert "登记 2026年12月3日" in ledger
