"""``pledgebot campaign set --weights …`` changes the grade rule as data; ``show`` prints it."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from sqlmodel import select

from bot.cli import main
from campaign.db import Store
from models import AuditEvent, Campaign
from tests.conftest import a_campaign, seed_people


def _setup(url: str) -> None:
    async def go():
        store = Store(url)
        await store.migrate()
        people = await seed_people(store)
        async with store.write() as s:
            s.add(a_campaign(people, 2027))
        await store.dispose()

    asyncio.run(go())


def _campaign(url: str) -> tuple[Campaign, list[str]]:
    async def go():
        store = Store(url)
        try:
            async with store.read() as s:
                camp = (await s.exec(select(Campaign))).one()
                kinds = list((await s.exec(select(AuditEvent.kind))).all())
                return camp, kinds
        finally:
            await store.dispose()

    return asyncio.run(go())


def test_weights_and_thresholds_are_set_shown_and_checked(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    _setup(url)
    shown = CliRunner().invoke(main, ["campaign", "show"])
    assert shown.exit_code == 0, shown.output
    assert "党员权重：自评10、互评20、组织评价40、评议员30" in shown.output
    assert "优秀≥90，良好≥80，一般≥65" in shown.output
    args = ["campaign", "set", "--year", "2027", "--root", "陇南市"]
    done = CliRunner().invoke(
        main,
        [
            *args,
            "--weights",
            "self=0,peer=20,org=50,evaluator=30",
            "--thresholds",
            "excellent=92",
            "--poll-days",
            "5",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "党员权重：自评0、互评20、组织评价50、评议员30" in done.output
    assert "优秀≥92" in done.output and "群众投票5天后关闭" in done.output
    camp, kinds = _campaign(url)
    assert camp.grade_rule["weights"]["member"]["org"] == 50
    assert camp.grade_rule["weights"]["org"] == {"self": 20, "upper": 50, "public": 30}
    assert "campaign.calendar" in kinds
    # Bad input gets a clear answer and changes nothing.
    for bad in (
        ["--weights", "self=ten"],
        ["--weights", "boss=10"],
        ["--thresholds", "good=95"],
        ["--org-weights", "self=-1"],
    ):
        result = CliRunner().invoke(main, [*args, *bad])
        assert result.exit_code != 0, bad
        assert "Traceback" not in result.output
        assert _campaign(url)[0].grade_rule == camp.grade_rule
    result = CliRunner().invoke(main, [*args, "--thresholds", "good=95"])
    assert "评定规则有误" in result.output
