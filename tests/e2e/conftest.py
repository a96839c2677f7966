"""Fixtures of the e2e suite: the emulator, the proxy, seeded databases and real bot processes.

The bot runs as it does in production (``pledgebot run`` in a subprocess) against the
telegram-test-api emulator, through ``proxy.BotApiProxy`` which papers over the emulator's
defects and records every Bot API call. Each bot process gets its own token (the emulator keeps
one queue per token) and its own SQLite file with the demo roster imported.

Both Telegram runtimes (``RUNTIME=aiogram`` and ``RUNTIME=ptb``) run the suite. By default every
test runs on aiogram (its id ends in ``[aiogram]``) and the tests marked ``both_runtimes`` (one or two per file, chosen so that
every kind of update and every kind of reply crosses the PTB runtime) run on both;
``E2E_RUNTIMES=all`` runs every test on both, ``E2E_RUNTIMES=ptb`` every test on PTB only.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.client import TelegramUser
from tests.e2e.proxy import BotApiProxy

ROOT = Path(__file__).resolve().parents[2]
E2E = Path(__file__).resolve().parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
MAIN_TOKEN = "123456:TEST-token"
CALLBACK_SECRET = "e2e-callback-secret-0123456789-abcdefgh"
STARTUP_TIMEOUT = 30.0

#: the RUNTIME settings the suite runs the bot with
RUNTIMES = ("aiogram", "ptb")

_user_ids = itertools.count(700_001)
_tokens = itertools.count(1)


def faketime_lib() -> str | None:
    """Return libfaketime's path: the system's, or the copy ``make test`` unpacked, or None."""
    import glob

    for pattern in (
        "/usr/lib/*/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        str(E2E / ".faketime/usr/lib/*/faketime/libfaketime.so.1"),
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, alive=lambda: True) -> None:
    """Wait until something listens on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the process exited before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def new_token() -> str:
    """Return a Bot API token of the right shape, unique in this test session."""
    return f"{200000 + next(_tokens)}:TEST-token"


def new_user_id() -> int:
    """Return a Telegram user id no other test uses."""
    return next(_user_ids)


def bot_command() -> list[str]:
    """Return the command line of ``pledgebot`` (the console script, or the same in Python)."""
    script = VENV_BIN / "pledgebot"
    if script.exists():
        return [str(script)]
    return [PYTHON, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def base_env(**extra: str) -> dict[str, str]:
    """Return the environment of a bot process: ours, without any settings leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "WEBHOOK_", "TELEGRAM_", "DATABASE_", "CALLBACK_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        CALLBACK_SECRET=CALLBACK_SECRET,
    )
    env.update(extra)
    return env


# -- which runtime -------------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test on the runtimes ``E2E_RUNTIMES`` names (see the module's docstring)."""
    if "runtime" not in metafunc.fixturenames:
        return
    choice = os.environ.get("E2E_RUNTIMES", "").strip().lower()
    if choice == "all":
        values = list(RUNTIMES)
    elif choice in RUNTIMES:
        values = [choice]
    elif metafunc.definition.get_closest_marker("both_runtimes") is not None:
        values = list(RUNTIMES)
    else:
        # parametrised all the same, so that the aiogram tests of a module share its bot
        values = [RUNTIMES[0]]
    metafunc.parametrize("runtime", values, indirect=True, scope="module")


@pytest.fixture(scope="module")
def runtime(request: pytest.FixtureRequest) -> str:
    """Return the RUNTIME the bot processes of this test run with (aiogram unless told)."""
    return getattr(request, "param", RUNTIMES[0])


# -- the emulator and the proxy ------------------------------------------------------------------


def _ensure_emulator_installed() -> None:
    if (E2E / "node_modules" / "telegram-test-api").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed for the e2e tests (node and the telegram-test-api package)")
    subprocess.run(
        [npm, "--prefix", str(E2E), "ci", "--no-audit", "--no-fund"], check=True, timeout=300
    )


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Iterator[str]:
    """Run the telegram-test-api emulator; yield its base URL."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the e2e tests")
    _ensure_emulator_installed()
    port = free_port()
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [node, str(E2E / "emulator.js"), str(port)],
            cwd=E2E,
            stdin=subprocess.PIPE,  # the emulator exits when this closes
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        wait_for_port(port, 15, alive=lambda: proc.poll() is None)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def proxy(emulator: str) -> Iterator[BotApiProxy]:
    """Run the fixing, recording Bot API proxy in front of the emulator."""
    p = BotApiProxy(emulator).start()
    try:
        yield p
    finally:
        p.stop()


# -- databases -----------------------------------------------------------------------------------


async def _seed(url: str) -> None:
    from campaign.db import Store
    from campaign.demo_data import load_demo

    store = Store(url)
    try:
        await store.migrate()
        result = await load_demo(store, 12)  # the fixed cast (phones 13800000001…) and more
        assert not result.errors, result.errors
    finally:
        await store.dispose()


def seeded_database(directory: Path) -> tuple[Path, str]:
    """Create a migrated SQLite database with the demo roster; return its path and URL."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "e2e.db"
    url = f"sqlite:///{path}"
    asyncio.run(_seed(url))
    return path, url


def make_invite(db_url: str, phone: str) -> str:
    """Return a fresh invite token for ``phone``, made by ``pledgebot invite PHONE``."""
    out = subprocess.run(
        [*bot_command(), "invite", phone],
        env=base_env(DATABASE_URL=db_url, BOT_TOKEN=MAIN_TOKEN, BOT_USERNAME="TestNameBot"),
        cwd=str(Path(db_url.removeprefix("sqlite:///")).parent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    match = re.search(r"https://t\.me/TestNameBot\?start=inv_([A-Za-z0-9_-]+)", out.stdout)
    assert match, f"no invite link in: {out.stdout!r}"
    return match.group(1)


# -- bot processes -------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Have the kernel SIGTERM this child when the test run dies (Linux), so none outlives it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class BotProcess:
    """The real bot, ``pledgebot run``, in a subprocess."""

    def __init__(
        self,
        proxy: BotApiProxy,
        workdir: Path,
        db_url: str,
        *,
        token: str,
        env: dict[str, str] | None = None,
        runtime: str = RUNTIMES[0],
    ) -> None:
        self.proxy = proxy
        self.runtime = runtime
        self.workdir = workdir
        self.db_url = db_url
        self.token = token
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"bot-{token.split(':')[0]}.log"
        self.webhook_port: int | None = None
        if "WEBHOOK_PORT" in self.extra_env:
            self.webhook_port = int(self.extra_env["WEBHOOK_PORT"])

    @property
    def env(self) -> dict[str, str]:
        return base_env(
            BOT_TOKEN=self.token,
            TELEGRAM_API_BASE=self.proxy.url,
            DATABASE_URL=self.db_url,
            RUNTIME=self.runtime,
            **self.extra_env,
        )

    def start(self, *, wait: bool = True) -> BotProcess:
        """Start the process and, by default, wait until it takes updates."""
        mark = self.proxy.mark()
        with self.log_path.open("a") as log:
            log.write(f"\n--- start {time.strftime('%X')} ({self.runtime}) ---\n")
            log.flush()
            self.proc = subprocess.Popen(
                [*bot_command(), "run"],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        if wait:
            self.wait_ready(mark)
        return self

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the bot exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_ready(self, mark: int, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until the bot polls (or has set its webhook and listens)."""
        method = "setWebhook" if self.webhook_port else "getUpdates"
        deadline = time.monotonic() + timeout
        while not self.proxy.calls(method, token=self.token, after=mark):
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)
        if self.webhook_port:
            wait_for_port(self.webhook_port, 5, alive=lambda: self.proc.poll() is None)

    def stop(self) -> int:
        """Stop with SIGTERM (SIGKILL if it hangs); return the exit code."""
        if self.proc is not None:
            _stop(self.proc)
            return self.proc.returncode
        return 0

    def kill(self) -> None:
        """Kill with SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        """Return the end of the bot's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture
def start_bot(proxy: BotApiProxy, tmp_path: Path, runtime: str):
    """Return a factory of bot processes (each on a fresh seeded database); stops them all.

    ``prepare(database_url)`` runs on the seeded database before the bot starts.
    """
    started: list[BotProcess] = []

    def start(
        *,
        env: dict[str, str] | None = None,
        wait: bool = True,
        prepare: Callable[[str], None] | None = None,
    ) -> BotProcess:
        workdir = tmp_path / f"bot{len(started)}"
        _, url = seeded_database(workdir)
        if prepare is not None:
            prepare(url)
        process = BotProcess(proxy, workdir, url, token=new_token(), env=env, runtime=runtime)
        started.append(process)
        return process.start(wait=wait)

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def main_bot(proxy: BotApiProxy, tmp_path_factory, runtime: str) -> Iterator[BotProcess]:
    """One polling bot for a whole test module, on its own seeded database."""
    workdir = tmp_path_factory.mktemp("main-bot")
    _, url = seeded_database(workdir)
    # one token per runtime: a module may run a bot of each, one after the other
    token = MAIN_TOKEN if runtime == RUNTIMES[0] else new_token()
    process = BotProcess(proxy, workdir, url, token=token, runtime=runtime)
    try:
        process.start()
        yield process
    finally:
        process.stop()


@pytest.fixture
def user_of(emulator: str):
    """Return a factory of Telegram users of a given bot."""

    def make(bot: BotProcess, user_id: int | None = None, **kwargs) -> TelegramUser:
        return TelegramUser(emulator, bot.token, user_id or new_user_id(), **kwargs)

    return make
