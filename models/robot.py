"""Group robots: the webhook of a WeCom, DingTalk or Feishu group robot an organization posts to.

A robot link is a ``GroupLink`` (platform ``wecom`` | ``dingtalk`` | ``feishu``, ``chat_id`` an id
made for the link) plus one ``RobotHook`` row holding the webhook URL and the signing secret,
encrypted (``campaign.robots`` seals them; the key comes from the composition root). A robot is
outbound only: nothing said in its group reaches the bot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.base import UtcDateTime, utcnow

#: the robot platforms, in the order the CLI lists them
ROBOT_KINDS = ("wecom", "dingtalk", "feishu")


class RobotHook(SQLModel, table=True):
    """The sealed webhook of one robot link.

    Attributes:
        platform: ``wecom``, ``dingtalk`` or ``feishu`` (as the GroupLink's).
        chat_id: the GroupLink's ``chat_id``.
        webhook: the webhook URL, sealed (Fernet); never stored or printed in clear.
        secret: the signing secret (DingTalk 加签, Feishu 签名校验), sealed; "" when none.
        hint: a masked form of the URL for lists (scheme, host, the last 4 characters).
        fingerprint: a keyed hash of the URL, so that one robot is not linked twice.
        broken_at: when the robot answered that it is revoked or that our signature is bad;
            a broken link receives nothing until it is added again.
        broken_reason: what the robot said then (its error code and message).
    """

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64, unique=True)
    webhook: str = Field(sa_column=Column(Text(), nullable=False))
    secret: str = Field(default="", sa_column=Column(Text(), nullable=False))
    hint: str = Field(default="", max_length=128)
    fingerprint: str = Field(default="", max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    broken_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    broken_reason: str = Field(default="", max_length=256)
