"""Properties of the text normalizer and the callback codec, over generated inputs."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from models.callbacks import BadCallback, CallbackCodec, CallbackData
from models.text import RefusedText, is_clean, is_forbidden, normalize, scrub, unsafe_chars

#: characters a hostile or careless client sends, mixed into ordinary text by the strategies
TRAPS = (
    "\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x7f\x85\x9b\u00ad\u034f\u061c\u115f\u180e\u200b\u200c"
    "\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2066\u2067\u2068"
    "\u2069\u3164\ufeff\ufff9\U000e0001\U000e0041\u0301\u0308\u1100\u1161\ud800\udc00\udfff"
)
texts = st.text(alphabet=st.one_of(st.characters(codec=None), st.sampled_from(TRAPS)), max_size=60)
ordinary = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=60,
)


def accepted(text: str) -> str | None:
    try:
        return normalize(text)
    except RefusedText:
        return None


@given(texts)
@example("a\u200b\u0301")
@example("\u202eevil\u202c.exe")
@example("\ud83d")
def test_normalize_is_idempotent_clean_and_nfc(text):
    out = accepted(text)
    if out is None:
        assert "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        return
    assert normalize(out) == out
    assert not [c for c in out if is_forbidden(c)]
    assert "\r" not in out
    assert unicodedata.is_normalized("NFC", out)
    assert is_clean(out)
    out.encode("utf-8")  # storable in any database


@given(ordinary)
def test_normalize_refuses_only_nul_and_surrogates(text):
    assert isinstance(normalize(text), str)


@given(texts)
def test_scrub_never_refuses_and_agrees_with_normalize(text):
    out = scrub(text)
    assert is_clean(out)
    if accepted(text) is not None:
        assert out == normalize(text)


def test_the_traps_named_in_the_issue():
    assert normalize("张\u200b\u200d\ufeff") == "张"
    assert normalize("\u200b\u200c\u2060").strip() == ""
    assert normalize("\u202e4202-21-9999") == "4202-21-9999"
    assert normalize("\x1b[31mred\x1b[0m") == "[31mred[0m"
    assert normalize("e\u0301") == "é"
    assert normalize("一\r\n二\u2028三\t四") == "一\n二\n三\t四"
    for bad in ("a\x00b", "\ud800", "x\udfffy"):
        with pytest.raises(RefusedText):
            normalize(bad)
    assert unsafe_chars("王\t五\u202e") == ["U+0009", "U+202E"]


# --------------------------------------------------------------------------- the callback codec


class Kind(StrEnum):
    A = "a"
    B = "bee"


@dataclass(frozen=True)
class SampleCb(CallbackData):
    prefix = "s"
    pledge_id: int
    version: int
    kind: Kind
    flag: bool
    token: str | None = None


codec = CallbackCodec(b"secret", [SampleCb])
tokens = st.from_regex(r"[A-Za-z0-9_.-]{0,12}", fullmatch=True)
samples = st.builds(
    SampleCb,
    pledge_id=st.integers(-(10**12), 10**12),
    version=st.integers(0, 10**6),
    kind=st.sampled_from(Kind),
    flag=st.booleans(),
    # an empty optional field reads back as None, by design of the packed form
    token=st.none() | tokens.filter(bool),
)


@given(samples)
def test_codec_round_trips(cb):
    data = codec.encode(cb)
    assert len(data.encode()) <= 64
    assert codec.decode(data) == cb


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(samples, st.data())
def test_any_mutation_of_a_signed_payload_is_refused(cb, data):
    packed = codec.encode(cb)
    i = data.draw(st.integers(0, len(packed)), label="at")
    how = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]), label="how")
    char = data.draw(st.one_of(st.characters(codec=None), st.sampled_from(TRAPS)), label="char")
    if how == "replace" and i < len(packed):
        forged = packed[:i] + char + packed[i + 1 :]
    elif how == "delete" and i < len(packed):
        forged = packed[:i] + packed[i + 1 :]
    elif how == "truncate":
        forged = packed[:i]
    else:
        forged = packed[:i] + char + packed[i:]
    assume(forged != packed)
    with pytest.raises(BadCallback):
        codec.decode(forged)


@given(st.text(alphabet=st.one_of(st.characters(codec=None), st.sampled_from(TRAPS))))
def test_anything_not_made_by_the_codec_is_refused_cleanly(data):
    with pytest.raises(BadCallback):
        codec.decode(data)
