"""The store: engines, sessions and transactions on SQLite (embedded) and PostgreSQL.

SQLite allows one writer at a time. Writers open their transaction with ``BEGIN IMMEDIATE`` so
they queue on the busy timeout instead of failing when a read transaction tries to upgrade; WAL
lets readers go on meanwhile. PostgreSQL needs none of this.

``is_unavailable`` tells "the store could not record this right now" (SQLite locked past its busy
timeout, PostgreSQL down, restarting or cutting the connection) from everything else, so that
callers can leave such work to be retried instead of reporting it as failed.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_MS = 30_000
#: SQLite's words for "another process holds the database" (sqlite3 gives no error codes)
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
#: PostgreSQL states that pass: connection exceptions (class 08), shutdown and start-up,
#: too many connections, serialization failure and deadlock
_PG_TRANSIENT = ("57P01", "57P02", "57P03", "53300", "40001", "40P01")
_NET_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


#: ``session.info`` key: whether this deployment sends SMS (``Store.sms_enabled``)
SMS_ENABLED = "sms_enabled"


class StoreUnavailable(Exception):
    """The store could not record a change right now; nothing was written, try again later."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([getattr(e, "orig", None), e.__cause__, e.__context__])


def is_unavailable(exc: BaseException) -> bool:
    """Return whether ``exc`` means the database could not be reached or written just now."""
    for e in _causes(exc):
        if isinstance(e, StoreUnavailable):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sa_exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if isinstance(e, OSError) and e.errno in _NET_ERRNOS:
            return True
        if isinstance(e, sqlite3.OperationalError) and any(
            words in str(e).lower() for words in _SQLITE_BUSY
        ):
            return True
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in _PG_TRANSIENT):
            return True
    return False


def normalize_url(url: str) -> str:
    """Return an async driver URL for a plain ``sqlite://`` or ``postgresql://`` URL."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _setup_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Take over transaction control from the driver (SQLAlchemy's documented recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Store:
    """One database: hands out read sessions and serialized write transactions.

    ``sms_enabled`` is a fact of the deployment the campaign must know when it routes messages
    (``campaign.channels``): the composition root sets it; every session carries it in
    ``session.info``.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _setup_sqlite(self.engine)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        #: members without Telegram (or who chose SMS) are reached by SMS
        self.sms_enabled = False

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Open a session for reading; nothing it does is committed."""
        async with self._sessions() as session:
            session.info[SMS_ENABLED] = self.sms_enabled
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """Open a write transaction: committed when the block ends, rolled back on error."""
        async with self._sessions() as session:
            session.info[SMS_ENABLED] = self.sms_enabled
            if self.is_sqlite:
                await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def migrate(self) -> None:
        """Bring the schema to the newest alembic revision."""
        await asyncio.to_thread(upgrade_schema, self.url)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def alembic_config(url: str):
    """Return an alembic Config for this project's migrations against ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Run ``alembic upgrade`` (blocking; call it off the event loop)."""
    from alembic import command

    if normalize_url(url).startswith("sqlite"):
        db_path = make_url(normalize_url(url)).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
