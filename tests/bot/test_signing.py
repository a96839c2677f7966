"""Button signing: no key in the code, a long enough secret, every bit the 64 bytes allow."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import typing

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.compose import build_services
from bot.settings import SIGNING_CONTEXT, Settings, SettingsError, load_settings
from campaign.cards import CARD_TYPES
from campaign.db import Store
from campaign.monthly import MONTHLY_TYPES
from handlers.app import build_router
from handlers.start import LangCb
from models.callbacks import (
    MAX_BODY_BYTES,
    MAX_BYTES,
    BadCallback,
    CallbackCodec,
    CallbackData,
    derive_key,
    signature_bits,
)

TOKEN = "123456:AAH-example-token_0123456789abcdef"
SECRET = "x" * 32


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("BOT_TOKEN", "CALLBACK_SECRET", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_hkdf_matches_rfc_5869():
    # RFC 5869, test case 3 (SHA-256, no salt, no info)
    okm = derive_key(b"\x0b" * 22, b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_key_is_derived_from_the_token_with_a_fixed_context():
    key = Settings(bot_token=TOKEN, _env_file=None).signing_key
    assert key == derive_key(TOKEN.encode(), SIGNING_CONTEXT)
    assert len(key) == 32
    # not the old construction (sha256 of a constant prefix), and not the token itself
    assert key != hashlib.sha256(f"pledgebot:{TOKEN}".encode()).digest()
    assert TOKEN.encode() not in key
    other = Settings(bot_token="123456:another-token", _env_file=None).signing_key
    assert other != key


def test_callback_secret_wins_over_the_token():
    with_secret = Settings(bot_token=TOKEN, callback_secret=SECRET, _env_file=None)
    assert with_secret.signing_key == derive_key(SECRET.encode(), SIGNING_CONTEXT)
    assert with_secret.signing_key != Settings(bot_token=TOKEN, _env_file=None).signing_key


def test_no_key_without_secret_or_token():
    # offline there is no key in the settings: the store makes its own (below)
    assert Settings(_env_file=None).signing_key is None


@pytest.mark.parametrize("secret", ["short", "x" * 31, "密" * 10])
def test_short_callback_secret_is_refused(secret):
    with pytest.raises(SettingsError) as info:
        load_settings(callback_secret=secret, _env_file=None)
    message = str(info.value)
    assert "CALLBACK_SECRET" in message and "32 bytes" in message


def test_a_32_byte_secret_is_enough():
    assert load_settings(callback_secret="密" * 11, _env_file=None).signing_key  # 33 bytes


def test_start_up_refuses_a_short_secret_with_one_clear_line(monkeypatch):
    monkeypatch.setenv("CALLBACK_SECRET", "too-short")
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code != 0
    assert "CALLBACK_SECRET must be at least 32 bytes" in result.output
    assert "Traceback" not in result.output


def _longest(cls: type[CallbackData]) -> CallbackData:
    """Return an instance of ``cls`` with every field as long as it can plausibly be."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if args else hint
        if hint is int:
            values[f.name] = 2**31 - 1  # the largest id PostgreSQL's integer holds
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            values[f.name] = max(hint, key=lambda m: len(str(m.value)))
        elif hint is bool:
            values[f.name] = True
        else:
            values[f.name] = "reopen"  # the longest action word the cards use
    return cls(**values)


def test_every_button_carries_at_least_64_signature_bits():
    types = list(dict.fromkeys([*build_router().callback_types(), *CARD_TYPES, *MONTHLY_TYPES]))
    codec = CallbackCodec(derive_key(b"k", SIGNING_CONTEXT), types)
    for cls in types:
        data = codec.encode(_longest(cls))
        assert len(data.encode()) <= MAX_BYTES
        assert signature_bits(data) >= 64, (cls.__name__, data)
        assert codec.decode(data) == _longest(cls)
    short = codec.encode(LangCb("en"))
    assert signature_bits(short) == 256  # a short body gets the whole MAC


def test_a_shortened_or_lengthened_signature_is_refused():
    codec = CallbackCodec(b"k" * 32, [LangCb])
    data = codec.encode(LangCb("en"))
    for forged in (data[:-1], data[:-20], data + "A"):
        with pytest.raises(BadCallback):
            codec.decode(forged)


def test_a_body_without_room_for_64_bits_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Wide(CallbackData):
        prefix = "w"
        a: str
        b: str
        c: str

    codec = CallbackCodec(b"k" * 32, [Wide])
    fits = Wide("a" * 16, "b" * 16, "c" * (MAX_BODY_BYTES - 36))  # exactly 52 bytes
    assert signature_bits(codec.encode(fits)) >= 64
    with pytest.raises(ValueError):
        codec.encode(Wide("a" * 16, "b" * 16, "c" * (MAX_BODY_BYTES - 35)))


async def test_offline_key_is_random_per_store_and_kept_across_restarts(store, tmp_path):
    settings = Settings(database_url=store.url, _env_file=None)
    first = await build_services(settings, migrate=False)
    data = first.core.codec.encode(LangCb("en"))
    await first.close()
    # the console started again on the same store signs and reads buttons alike
    again = await build_services(settings, migrate=False)
    try:
        assert again.core.codec.encode(LangCb("en")) == data
        assert again.core.codec.decode(data) == LangCb("en")
    finally:
        await again.close()
    # another store has a key of its own
    other_store = Store(f"sqlite:///{tmp_path}/other.db")
    await other_store.migrate()
    await other_store.dispose()
    other = await build_services(
        Settings(database_url=f"sqlite:///{tmp_path}/other.db", _env_file=None), migrate=False
    )
    try:
        with pytest.raises(BadCallback):
            other.core.codec.decode(data)
    finally:
        await other.close()
