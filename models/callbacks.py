"""The one callback-data codec: typed, signed, at most 64 bytes, refusing what it cannot parse.

A button's data is ``prefix:field:field:…:sig``. Fields are ints, short ASCII tokens or
StrEnum values; ``sig`` is a truncated HMAC-SHA256 so that hand-made data is refused before any
handler sees it. Cards that act on a record carry its version, so a stale card is refused
by the domain (the pledge changed meanwhile), not by the codec.

The 64-byte budget (Telegram's limit on ``callback_data``) is split between the body and the
signature: ``body + ":" + sig`` is exactly 64 bytes, the signature taking all the room the body
leaves, up to the whole MAC (43 base64url characters, 256 bits) and never fewer than
``MIN_SIG_CHARS`` (11 characters, 66 bits). So a body may be at most 52 bytes; the longest body
the bot makes today (``pf:`` with three 10-digit ids and a field name) is 44 bytes, which leaves
19 characters (114 bits). The length of the signature follows from the body, so shortening it
does not help a forger. ``encode`` refuses a body that leaves less than ``MIN_SIG_CHARS``.

The key is never a constant of the code: see ``derive_key`` and the composition root.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import typing
from enum import Enum
from typing import Any, ClassVar, TypeVar

MAX_BYTES = 64
#: 6 bits per base64url character: 11 characters carry 66 bits, 43 the whole 256-bit MAC
MIN_SIG_CHARS = 11
MAX_SIG_CHARS = 43
#: the longest body that still leaves MIN_SIG_CHARS for the signature (and the ':' before it)
MAX_BODY_BYTES = MAX_BYTES - 1 - MIN_SIG_CHARS
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{0,24}")

C = TypeVar("C", bound="CallbackData")


class BadCallback(ValueError):
    """The data was not made by us, or was made for a type we no longer know."""


@dataclasses.dataclass(frozen=True)
class CallbackData:
    """Base of every typed callback. Subclasses are frozen dataclasses with a ``prefix``."""

    prefix: ClassVar[str] = ""


class CallbackCodec:
    """Pack and unpack typed callback data, signed with a secret.

    Args:
        secret: key of the HMAC; the same across processes of one deployment.
        types: every CallbackData subclass the bot uses; prefixes must be unique.
    """

    def __init__(self, secret: bytes, types: typing.Iterable[type[CallbackData]]) -> None:
        self._secret = secret
        self._types: dict[str, type[CallbackData]] = {}
        self._hints: dict[type[CallbackData], dict[str, Any]] = {}
        for cls in types:
            if not cls.prefix or ":" in cls.prefix:
                raise ValueError(f"{cls.__name__} needs a prefix without ':'")
            if cls.prefix in self._types:
                raise ValueError(f"prefix {cls.prefix!r} used twice")
            self._types[cls.prefix] = cls
            self._hints[cls] = typing.get_type_hints(cls)

    def encode(self, obj: CallbackData) -> str:
        """Return the packed, signed form of ``obj``.

        Raises:
            ValueError: the type is not registered, a field cannot be packed, or the result
                would exceed 64 bytes.
        """
        cls = type(obj)
        if self._types.get(cls.prefix) is not cls:
            raise ValueError(f"{cls.__name__} is not registered with this codec")
        parts = [cls.prefix]
        for f in dataclasses.fields(obj):
            parts.append(self._pack(getattr(obj, f.name)))
        body = ":".join(parts)
        if len(body.encode()) > MAX_BODY_BYTES:
            raise ValueError(
                f"callback body over {MAX_BODY_BYTES} bytes (no room for the signature): {body!r}"
            )
        return f"{body}:{self._sign(body)}"

    def decode(self, data: str) -> CallbackData:
        """Return the typed callback in ``data``.

        Raises:
            BadCallback: anything malformed, unsigned, forged or of an unknown type.
        """
        try:
            size = len(data.encode())
        except UnicodeEncodeError as exc:  # a lone surrogate: nothing we made
            raise BadCallback("encoding") from exc
        if not data or size > MAX_BYTES:
            raise BadCallback("size")
        body, sep, sig = data.rpartition(":")
        # compared as bytes: compare_digest refuses str with non-ASCII characters
        if (
            not sep
            or len(body.encode()) > MAX_BODY_BYTES
            or not hmac.compare_digest(sig.encode(), self._sign(body).encode())
        ):
            raise BadCallback("signature")
        prefix, *raw = body.split(":")
        cls = self._types.get(prefix)
        if cls is None:
            raise BadCallback("type")
        fields = dataclasses.fields(cls)
        if len(raw) != len(fields):
            raise BadCallback("arity")
        hints = self._hints[cls]
        values = {}
        for f, text in zip(fields, raw, strict=True):
            values[f.name] = self._unpack(hints[f.name], text)
        return cls(**values)

    def _sign(self, body: str) -> str:
        room = MAX_BYTES - 1 - len(body.encode())
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode()[: min(MAX_SIG_CHARS, room)]

    @staticmethod
    def _pack(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, int):
            return str(value)
        if value is None:
            return ""
        if isinstance(value, str) and _TOKEN.fullmatch(value):
            return value
        raise ValueError(f"cannot pack {value!r} into callback data")

    @staticmethod
    def _unpack(hint: Any, text: str) -> Any:
        optional = type(None) in typing.get_args(hint)
        if optional:
            if text == "":
                return None
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        try:
            if hint is bool:
                if text not in ("0", "1"):
                    raise BadCallback("bool")
                return text == "1"
            if hint is int:
                if not re.fullmatch(r"-?\d{1,18}", text):
                    raise BadCallback("int")
                return int(text)
            if isinstance(hint, type) and issubclass(hint, Enum):
                return hint(text)
            if hint is str:
                if not _TOKEN.fullmatch(text):
                    raise BadCallback("str")
                return text
        except ValueError as exc:
            raise BadCallback("value") from exc
        raise BadCallback("field type")


def signature_bits(data: str) -> int:
    """Return how many bits of MAC the signed ``data`` carries (6 per base64url character)."""
    return min(6 * len(data.rpartition(":")[2]), 8 * hashlib.sha256().digest_size)


def derive_key(material: bytes, context: bytes, length: int = 32) -> bytes:
    """Return a key derived from ``material`` for one purpose (HKDF-SHA256, RFC 5869).

    Args:
        material: the secret to derive from (a bot token, a configured secret).
        context: a fixed label of the purpose (HKDF's ``info``), so that the same material
            yields unrelated keys for unrelated uses.
        length: bytes of key wanted (at most 255 * 32).

    Returns:
        ``length`` bytes of key.
    """
    prk = hmac.new(b"\x00" * hashlib.sha256().digest_size, material, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + context + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]
