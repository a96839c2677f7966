"""e2e: an update the store cannot record is not lost, not doubled and not apologised for.

The real ``pledgebot run`` process, through the emulator and the proxy (which keeps unconfirmed
updates and redelivers refused webhook posts, as Telegram does). SQLite: this test process holds
the bot's write lock for 40 s (longer than the bot's 30 s busy timeout) while a person writes,
in polling and in webhook mode. PostgreSQL: the bot reaches its database through a TCP relay the
test cuts and restores, as a restarting server would look.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest

from bot.settings import Settings
from handlers.callbacks import CallbackCodec
from handlers.start import LangCb
from templates import catalog
from tests.conftest import PG_HOST, PG_PORT, PG_USER, _pg_admin, pg_available
from tests.e2e.conftest import (
    CALLBACK_SECRET,
    BotProcess,
    _seed,
    free_port,
    new_token,
    seeded_database,
)

pytestmark = pytest.mark.e2e

HOLD_SECONDS = 40  # the figure: longer than SQLite's 30 s busy timeout
WEBHOOK_SECRET = "e2e-never-lose-secret"
SWITCHED = catalog().render("lang.switched", "en")
APOLOGIES = {catalog().render("error.unexpected", loc) for loc in ("zh_CN", "en")}


def codec() -> CallbackCodec:
    """Sign buttons as the bot under test does (same CALLBACK_SECRET)."""
    key = Settings(callback_secret=CALLBACK_SECRET, _env_file=None).signing_key
    return CallbackCodec(key, [LangCb])


def sent_to(proxy, bot: BotProcess, chat_id: int) -> list[str]:
    """Return the texts the bot sent to one chat, every send counted."""
    return [
        c.params.get("text", "")
        for c in proxy.calls("sendMessage", token=bot.token)
        if c.params.get("chat_id") == chat_id
    ]


def wait_until(what, timeout: float, bot: BotProcess, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}\n{bot.log_tail(40)}\n{bot.proxy.webhook_answers}")
        time.sleep(0.1)


def processed(db_path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return [r[0] for r in conn.execute("SELECT update_id FROM processedupdate")]


def three_updates(user) -> None:
    """A text, a command and a pressed button, as a person sends them."""
    user.send_text("你好")
    user.send_command("/help")
    user.send_callback(codec().encode(LangCb("en")))


def check_each_handled_once(proxy, bot: BotProcess, user, expected: int) -> list[str]:
    """Wait for one reply per update; then no more, no apology, every button answered once."""
    wait_until(
        lambda: len(sent_to(proxy, bot, user.chat_id)) >= expected,
        20,
        bot,
        f"fewer than {expected} replies to {user.chat_id}: {sent_to(proxy, bot, user.chat_id)}",
    )
    time.sleep(1.5)  # then nothing more may come
    texts = sent_to(proxy, bot, user.chat_id)
    assert len(texts) == expected, texts
    assert not APOLOGIES & set(texts), texts
    answers = proxy.calls("answerCallbackQuery", token=bot.token)
    assert len(answers) == 1, [a.params for a in answers]
    assert texts.count(SWITCHED) == 1, texts
    return texts


def test_sqlite_write_lock_held_40s_loses_and_doubles_nothing(proxy, user_of, tmp_path, runtime):
    """One bot polling, one on a webhook, both locked out of their stores for the same 40 s."""
    port = free_port()
    envs = {
        "polling": {},
        "webhook": {
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/tg",
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WEBHOOK_PORT": str(port),
        },
    }
    bots: dict[str, BotProcess] = {}
    paths: dict[str, Path] = {}
    holders: list[sqlite3.Connection] = []
    try:
        mark = proxy.mark()
        for mode, env in envs.items():
            paths[mode], url = seeded_database(tmp_path / mode)
            bots[mode] = BotProcess(
                proxy, paths[mode].parent, url, token=new_token(), env=env, runtime=runtime
            )
            bots[mode].start(wait=False)
        for bot in bots.values():
            bot.wait_ready(mark)
        users = {mode: user_of(bot) for mode, bot in bots.items()}
        for path in paths.values():
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            holders.append(holder)
        held_at = time.monotonic()
        for mode in bots:
            three_updates(users[mode])
        # past the bots' 30 s busy timeout: they met the lock, and nobody was told anything
        time.sleep(max(0.0, 35 - (time.monotonic() - held_at)))
        for mode, bot in bots.items():
            told = sent_to(proxy, bot, users[mode].chat_id)
            assert told == [], f"{mode}: the person was told something while waiting: {told}"
        time.sleep(max(0.0, HOLD_SECONDS - (time.monotonic() - held_at)))
        for holder in holders:
            holder.execute("ROLLBACK")
        for mode, bot in bots.items():
            check_each_handled_once(proxy, bot, users[mode], expected=3)
            assert len(processed(paths[mode])) == 3
            assert "not recorded" in bot.log_path.read_text()  # the lock was met, not missed
        answers = [s for t, _, s in proxy.webhook_answers if t == bots["webhook"].token]
        assert 503 in answers  # refused while locked, so the relay (Telegram) sent it again
        for bot in bots.values():
            bot.stop()
            assert "Traceback" not in bot.log_path.read_text()
    finally:
        for holder in holders:
            holder.close()
        for bot in bots.values():
            bot.stop()


# -- PostgreSQL restarting -----------------------------------------------------------------------


class CuttableRelay:
    """A TCP relay to PostgreSQL: ``cut()`` drops every connection and refuses new ones.

    ``cut_at_next_commit(down_for)`` waits for the next ``COMMIT`` any connection sends (asyncpg
    sends it as a plain query), passes it on, then cuts: PostgreSQL may or may not have
    committed, and the bot cannot know which; it comes back ``down_for`` seconds later.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.target = host, port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._down_for: float | None = None
        self.cuts_at_commit = 0

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> CuttableRelay:
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """Look like PostgreSQL going down: connections reset, new ones refused."""
        self._run(self._cut())

    def cut_at_next_commit(self, down_for: float) -> None:
        """Cut right after the next COMMIT passes; restore ``down_for`` seconds later."""
        self._down_for = down_for

    def restore(self) -> None:
        """Look like PostgreSQL back up."""
        self._run(self._listen())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src, dst: asyncio.StreamWriter, from_bot: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                    if from_bot and self._down_for is not None and b"COMMIT" in data:
                        down_for, self._down_for = self._down_for, None
                        self.cuts_at_commit += 1
                        await self._cut()
                        self._loop.call_later(
                            down_for, lambda: self._loop.create_task(self._listen())
                        )
            with contextlib.suppress(Exception):
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        self._writers -= {writer, up_writer}


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database with the demo roster; dropped afterwards."""
    if not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    name = f"pb_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name}"))
    try:
        asyncio.run(_seed(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"))
        yield name
    finally:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def pg_processed(name: str) -> list[str]:
    async def go() -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=name)
        try:
            return [r[0] for r in await conn.fetch("SELECT update_id FROM processedupdate")]
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.mark.both_runtimes
def test_postgresql_restarting_under_traffic_loses_and_doubles_nothing(
    pg_database, proxy, user_of, tmp_path, runtime
):
    relay = CuttableRelay(PG_HOST, PG_PORT).start()
    url = f"postgresql://{PG_USER}@127.0.0.1:{relay.port}/{pg_database}"
    bot = BotProcess(proxy, tmp_path, url, token=new_token(), runtime=runtime)
    try:
        bot.start()
        user = user_of(bot)
        user.send_command("/start")
        wait_until(lambda: sent_to(proxy, bot, user.chat_id), 10, bot, "no answer to /start")

        relay.cut()  # PostgreSQL goes down with the bot's connections open
        three_updates(user)
        wait_until(
            lambda: "not recorded" in bot.log_tail(200), 15, bot, "the bot never met the outage"
        )
        assert len(sent_to(proxy, bot, user.chat_id)) == 1
        relay.restore()
        wait_until(lambda: len(sent_to(proxy, bot, user.chat_id)) >= 4, 20, bot, "not caught up")

        # and again in the middle of a burst, right after a COMMIT left for the server
        relay.cut_at_next_commit(down_for=1.5)
        for n in range(4):
            user.send_text(f"第{n}条")
        wait_until(lambda: relay.cuts_at_commit == 1, 10, bot, "no COMMIT was cut")
        check_each_handled_once(proxy, bot, user, expected=1 + 3 + 4)
        ids = pg_processed(pg_database)
        assert len(ids) == len(set(ids)) == 8
        bot.stop()
    finally:
        bot.stop()
        relay.stop()
