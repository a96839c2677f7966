"""The one ledger reader: chunks never change the rows, and the chat takes its first rows."""

from __future__ import annotations

from campaign import supervise
from models import Org
from tests.reports.conftest import TODAY, build_records


async def _all(store, rec, org_key, people):
    async with store.read() as s:
        org = await s.get(Org, people.orgs[org_key])
        return [r async for r in supervise.ledger_rows(s, rec.campaign.id, org.path, TODAY)]


async def test_chunks_of_any_size_give_the_same_rows(store, people, monkeypatch):
    rec = await build_records(store, people, member_items=25, org_items=4, plain=True)
    whole = await _all(store, rec, "county", people)
    monkeypatch.setattr(supervise, "LEDGER_CHUNK", 2)
    assert await _all(store, rec, "county", people) == whole
    # the branch's own pledge first, then its members' pledges, each item in its order
    assert [r.item_id for r in whole] == [i.id for i in rec.items]
    assert [r.kind for r in whole[:4]] == ["org"] * 4
    # the registered day is the campaign's local day (published 10:00 in Beijing on 20 April)
    assert {r.registered.isoformat() for r in whole} == {"2027-04-20"}


async def test_the_chat_ledger_is_the_first_rows_of_the_same_stream(store, people):
    rec = await build_records(store, people, member_items=12, org_items=2, plain=True)
    whole = await _all(store, rec, "village", people)
    async with store.read() as s:
        chat = await supervise.ledger(s, rec.campaign.id, people.orgs["village"], TODAY)
        first = await supervise.ledger(s, rec.campaign.id, people.orgs["village"], TODAY, limit=5)
    strip = [(r.item_id, r.state, r.months, r.note, r.lookback, r.registered) for r in whole]
    assert [
        (r.item_id, r.state, r.months, r.note, r.lookback, r.registered) for r in chat
    ] == strip
    assert [r.item_id for r in first] == [r.item_id for r in whole[:5]]
