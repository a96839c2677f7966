"""The callback codec: typed, signed, at most 64 bytes, refusing what it cannot parse."""

from dataclasses import dataclass
from enum import StrEnum

import pytest

from handlers.callbacks import BadCallback, CallbackCodec, CallbackData


class Verdict(StrEnum):
    APPROVE = "ok"
    RETURN = "back"


@dataclass(frozen=True)
class ReviewCb(CallbackData):
    prefix = "rv"
    pledge_id: int
    version: int
    verdict: Verdict
    note: str | None = None


@dataclass(frozen=True)
class FlagCb(CallbackData):
    prefix = "fl"
    on: bool


codec = CallbackCodec(b"k", [ReviewCb, FlagCb])


def test_round_trip():
    for cb in (
        ReviewCb(123456789, 7, Verdict.RETURN),
        ReviewCb(1, 1, Verdict.APPROVE, "q1"),
        FlagCb(True),
    ):
        data = codec.encode(cb)
        assert len(data.encode()) <= 64
        assert codec.decode(data) == cb


@pytest.mark.parametrize(
    "data",
    [
        "",
        "rv:1:1:ok:",
        "rv:1:1:ok::AAAAAAAA",
        "zz:1:abcdefgh",
        "x" * 65,
        "rv:1:1:maybe::" + "A" * 8,
    ],
)
def test_refuses_malformed(data):
    with pytest.raises(BadCallback):
        codec.decode(data)


def test_refuses_forged_signature_and_tampered_fields():
    good = codec.encode(ReviewCb(5, 2, Verdict.APPROVE))
    tampered = good.replace("rv:5:", "rv:6:")
    with pytest.raises(BadCallback):
        codec.decode(tampered)
    other = CallbackCodec(b"other", [ReviewCb, FlagCb]).encode(ReviewCb(5, 2, Verdict.APPROVE))
    with pytest.raises(BadCallback):
        codec.decode(other)


def test_refuses_what_would_not_fit():
    with pytest.raises(ValueError):
        codec.encode(ReviewCb(1, 1, Verdict.APPROVE, "a" * 40))
    with pytest.raises(ValueError):
        codec.encode(ReviewCb(1, 1, Verdict.APPROVE, "中文"))


def test_prefixes_are_unique():
    @dataclass(frozen=True)
    class Clash(CallbackData):
        prefix = "rv"
        x: int

    with pytest.raises(ValueError):
        CallbackCodec(b"k", [ReviewCb, Clash])
