"""Process settings: one frozen object, read from the environment or ``.env``, validated once."""

from __future__ import annotations

import hashlib
import re
from functools import cached_property

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLIC_API = "https://api.telegram.org"


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
    #: days an invite link works (``pledgebot invite``); it works once in any case
    invite_ttl_days: int = Field(default=7, ge=1, le=365)

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
        return value or None

    @field_validator("webhook_url")
    @classmethod
    def _empty_none(cls, value: str | None) -> str | None:
        return value or None

    def require_token(self) -> str:
        """Return the bot token, or raise a clear error if it is missing or malformed."""
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", self.bot_token or ""):
            raise ValueError("BOT_TOKEN is missing or not of the form 123456:ABC…")
        return self.bot_token

    @cached_property
    def signing_key(self) -> bytes:
        """Return the key that signs button data (CALLBACK_SECRET, else derived from the token)."""
        base = self.callback_secret or f"pledgebot:{self.bot_token or 'offline'}"
        return hashlib.sha256(base.encode()).digest()


def load_settings(**overrides) -> Settings:
    """Read and validate the settings; keyword arguments win over the environment."""
    return Settings(**overrides)
