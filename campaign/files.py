"""Keep generated files (attachments, charts) in the database for the outbox to deliver."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.files import StoredFile
from models.reply import Attachment, AttachmentKind
from templates import catalog

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PNG = "image/png"
MIME_BY_SUFFIX = {".xlsx": XLSX, ".docx": DOCX, ".png": PNG}
_UNSAFE_FILENAME = re.compile(r'[\\/:*?"<>|\s]+')


def file_name(locale: str, kind: int | str, **context) -> str:
    """Return the name of a generated file (``doc.file.<kind>``), safe on every file system."""
    safe = {k: _UNSAFE_FILENAME.sub("_", str(v)).strip("_") for k, v in context.items()}
    return catalog().render(f"doc.file.{kind}", locale, **safe)


async def keep(session: AsyncSession, name: str, data: bytes) -> Attachment:
    """Store a generated file and return the attachment that sends it.

    A PNG goes out as a photo, anything else as a document named ``name``.
    """
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    mime = MIME_BY_SUFFIX.get(suffix, "application/octet-stream")
    row = StoredFile(
        name=name,
        mime=mime,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
    )
    session.add(row)
    await session.flush()
    kind = AttachmentKind.PHOTO if mime == PNG else AttachmentKind.DOCUMENT
    return Attachment(kind=kind.value, stored=row.id, filename=name)


async def load(session: AsyncSession, file_id: int) -> StoredFile | None:
    """Return a stored file with its bytes, or None if it was purged."""
    return (await session.exec(select(StoredFile).where(StoredFile.id == file_id))).first()


async def purge_before(session: AsyncSession, before: datetime) -> int:
    """Delete files made before a time (their messages are long delivered); return how many."""
    result = await session.exec(delete(StoredFile).where(StoredFile.created_at < before))
    return result.rowcount or 0
