"""Process settings: one frozen object, read from the environment or ``.env``, validated once."""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.callbacks import derive_key

PUBLIC_API = "https://api.telegram.org"
#: the HTTP SMS gateways' field names (SMS_HTTP_PROVIDER)
PROVIDERS = Path(__file__).with_name("sms_providers.toml")
#: the shortest CALLBACK_SECRET accepted, in bytes
CALLBACK_SECRET_MIN = 32
#: HKDF contexts: the same secret gives unrelated keys for unrelated purposes
SIGNING_CONTEXT = b"pledgebot/v1/callback-data/hmac-sha256"
ROBOT_CONTEXT = b"pledgebot/v1/robot-webhooks/fernet"


class SettingsError(ValueError):
    """The settings cannot work; the message names the setting and says why, for the operator."""


class Settings(BaseSettings):
    """Everything a process needs to know about where it runs (SPEC: process settings)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    bot_token: str = ""
    telegram_api_base: str = PUBLIC_API
    database_url: str = "sqlite:///./pledgebot.db"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8080
    bot_username: str | None = None
    callback_secret: str | None = None
    default_locale: str = "zh_CN"
    runtime: str = "aiogram"
    #: messages per second this process may send to Telegram in all (its share when several
    #: delivery workers serve one bot: 29 / n)
    telegram_rate: float = 29.0
    log_level: str = "INFO"
    #: reach members without Telegram (or who chose SMS) by SMS to their roster number; the
    #: SMS gateway (SMS_GATEWAY) must deliver platform "sms" (campaign/channels.py)
    sms_enabled: bool = False
    #: seconds between two edits of a notice's progress message (NOTICE_EVERY)
    notice_every: float = Field(default=3.0, gt=0, le=600)
    #: days an invite link works (``pledgebot invite``); it works once in any case
    invite_ttl_days: int = Field(default=7, ge=1, le=365)
    #: seconds to hold a group robot's message after it says "rate limited" (WeCom, DingTalk
    #: and Feishu answers carry no Retry-After; their quotas are per minute)
    robot_retry_after: float = Field(default=60.0, gt=0, le=3600)
    #: the SMS gateway: ``smpp://user:pass@host:2775`` or ``https://…`` (unset: no SMS)
    sms_gateway: str | None = None
    #: SMS segments per second this process hands the gateway (a 5-part message counts 5)
    sms_rate: float = Field(default=10.0, gt=0, le=1000)
    #: no SMS goes out in these local hours of the campaign ("" to send at any hour)
    sms_quiet_hours: str = "21:00-08:00"
    #: the key that signs requests to the HTTP gateway and its callbacks (HMAC-SHA256)
    sms_http_secret: str | None = None
    #: the field names of the HTTP gateway (bot/sms_providers.toml): generic, aliyun, tencent
    sms_http_provider: str = "generic"
    #: the sender address (SMPP source_addr) or sign name the gateway expects, if any
    sms_source: str = ""
    #: SMPP submits that may await their answer at once
    sms_window: int = Field(default=10, ge=1, le=100)
    #: where the HTTP gateway posts inbound SMS and receipts (unset: no callback server)
    sms_callback_host: str = "127.0.0.1"
    sms_callback_port: int | None = None

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
        return value or None

    @field_validator("callback_secret")
    @classmethod
    def _check_callback_secret(cls, value: str | None) -> str | None:
        if value and len(value.encode()) < CALLBACK_SECRET_MIN:
            raise ValueError(
                f"CALLBACK_SECRET must be at least {CALLBACK_SECRET_MIN} bytes (it has "
                f"{len(value.encode())}); make one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value or None

    @field_validator("sms_gateway")
    @classmethod
    def _check_sms_gateway(cls, value: str | None) -> str | None:
        if value and not re.match(r"(smpp|https?)://[^/]", value):
            raise ValueError("SMS_GATEWAY must be smpp://user:pass@host:port or an http(s) URL")
        return value or None

    @field_validator("sms_quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        value = (value or "").strip()
        if value and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d-([01]?\d|2[0-3]):[0-5]\d", value):
            raise ValueError('SMS_QUIET_HOURS must look like "21:00-08:00" (or be empty)')
        return value

    @field_validator("webhook_url")
    @classmethod
    def _empty_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _check_sms_http(self) -> Settings:
        if self.sms_gateway and self.sms_gateway.startswith("http"):
            if not self.sms_http_secret:
                raise ValueError("SMS_HTTP_SECRET is required with an HTTP SMS_GATEWAY")
            providers = tomllib.loads(PROVIDERS.read_text(encoding="utf-8"))
            if self.sms_http_provider not in providers:
                raise ValueError(
                    f"SMS_HTTP_PROVIDER must be one of {', '.join(providers)} "
                    f"(bot/{PROVIDERS.name})"
                )
        return self

    def require_token(self) -> str:
        """Return the bot token, or raise a clear error if it is missing or malformed."""
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", self.bot_token or ""):
            raise ValueError("BOT_TOKEN is missing or not of the form 123456:ABC…")
        return self.bot_token

    @cached_property
    def signing_key(self) -> bytes | None:
        """Return the key that signs button data, or None offline (the store keeps one then).

        The key is derived (HKDF-SHA256 with a fixed context) from CALLBACK_SECRET when set,
        else from BOT_TOKEN, so every process of one deployment signs alike and nothing in the
        code is a key.
        """
        material = self.callback_secret or self.bot_token
        if not material:
            return None
        return derive_key(material.encode(), SIGNING_CONTEXT)

    @cached_property
    def robot_key(self) -> bytes | None:
        """Return the key that seals group robots' webhooks, or None offline (store key then).

        Derived like ``signing_key`` (CALLBACK_SECRET, else BOT_TOKEN) with another context; a
        deployment that changes both must add its robots again.
        """
        material = self.callback_secret or self.bot_token
        if not material:
            return None
        return derive_key(material.encode(), ROBOT_CONTEXT)


def load_settings(**overrides) -> Settings:
    """Read and validate the settings; keyword arguments win over the environment.

    Raises:
        SettingsError: a setting is malformed (one line per bad setting, naming it).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err.get("loc", ())).upper() or "settings"
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            lines.append(msg if msg.startswith(name) else f"{name}: {msg}")
        raise SettingsError("; ".join(lines)) from None
