import itertools
import re
from pathlib import Path

import pytest

from models.errors import DomainError
from models.pledge import TRANSITIONS, PledgeEvent, PledgeStatus, apply

DIAGRAM = Path(__file__).resolve().parents[2] / "models" / "pledge.mmd"
EDGE = re.compile(r"^\s*(\w+)\s*-->\s*(\w+)\s*:\s*(\w+)\s*$")

ALL_PAIRS = list(itertools.product(PledgeStatus, PledgeEvent))
REFUSED = [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS))
def test_allowed_transition(state, event):
    assert apply(state, event) is TRANSITIONS[(state, event)]


def test_the_loop_of_review():
    state = PledgeStatus.DRAFT
    for event in ("submit", "return", "revise", "submit", "approve", "publish"):
        state = apply(state, PledgeEvent(event))
    assert state is PledgeStatus.PUBLISHED


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_refused_transition(state, event):
    with pytest.raises(DomainError) as caught:
        apply(state, event)
    assert caught.value.key == "error.pledge_wrong_state"
    assert caught.value.context == {"state": state.value, "event": event.value}


def test_every_pair_is_either_allowed_or_refused():
    assert len(TRANSITIONS) + len(REFUSED) == len(PledgeStatus) * len(PledgeEvent)
    assert REFUSED, "a table allowing everything would not be a state machine"


def test_published_is_final():
    assert not [event for (state, event) in TRANSITIONS if state is PledgeStatus.PUBLISHED]


def test_diagram_draws_exactly_the_table():
    lines = DIAGRAM.read_text(encoding="utf-8").splitlines()
    assert "stateDiagram-v2" in [ln.strip() for ln in lines]
    edges = set()
    for line in lines:
        if "-->" not in line or line.strip().startswith("[*]"):
            continue
        m = EDGE.match(line)
        assert m, f"not an `A --> B : event` line: {line!r}"
        edge = (PledgeStatus(m[1]), PledgeEvent(m[3]), PledgeStatus(m[2]))
        assert edge not in edges, f"drawn twice: {line!r}"
        edges.add(edge)
    assert edges == {(s, e, to) for (s, e), to in TRANSITIONS.items()}


def test_diagram_starts_at_draft():
    starts = [
        ln.split("-->")[1].strip() for ln in DIAGRAM.read_text().splitlines() if "[*] -->" in ln
    ]
    assert starts == [PledgeStatus.DRAFT.value]
