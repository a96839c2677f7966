"""The local SMSC of the test suite (tests/e2e/smsc.js, the npm ``smpp`` package as a server).

Use the ``smsc`` fixture: it starts the SMSC on a free port and yields an ``Smsc`` that reads
what was submitted and sends inbound SMS and receipts through the SMSC's control port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    E2E,
    _die_with_parent,
    _ensure_emulator_installed,
    _stop,
    free_port,
    wait_for_port,
)


class Smsc:
    """A running local SMSC and its control port."""

    def __init__(self, smpp_port: int, control_port: int, proc: subprocess.Popen) -> None:
        self.port = smpp_port
        self.control = f"http://127.0.0.1:{control_port}"
        self.proc = proc

    @property
    def url(self) -> str:
        """Return SMS_GATEWAY for a bot that uses this SMSC."""
        return f"smpp://pledgebot:secret@127.0.0.1:{self.port}"

    def _call(self, path: str, body: dict | None = None) -> dict | list:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.control + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def submits(self) -> list[dict]:
        """Return every submit_sm so far."""
        return list(self._call("/submits"))

    def binds(self) -> dict:
        """Return {binds, bound, listening}."""
        return dict(self._call("/binds"))

    def wait_bound(self, timeout: float = 20.0) -> None:
        """Wait until a client is bound."""
        deadline = time.monotonic() + timeout
        while self.binds()["bound"] < 1:
            if time.monotonic() > deadline:
                raise AssertionError("nobody bound to the SMSC")
            time.sleep(0.05)

    def mo(self, phone: str, text: str, parts: int = 1) -> list:
        """Send an inbound SMS from ``phone`` (86 in front, as networks do); return statuses."""
        return list(
            self._call("/mo", {"from": "86" + phone, "text": text, "parts": parts})["statuses"]
        )

    def receipt(self, message_id: str, stat: str = "DELIVRD") -> list:
        """Send a delivery receipt for ``message_id``."""
        return list(self._call("/receipt", {"message_id": message_id, "stat": stat})["statuses"])

    def stop(self) -> None:
        """Close the SMPP port and every session."""
        self._call("/stop", {})

    def start(self) -> None:
        """Listen on the same port again."""
        self._call("/start", {})

    def throttle(self, count: int) -> None:
        """Answer the next ``count`` submits with ESME_RTHROTTLED."""
        self._call("/throttle", {"count": count})


def wait_until(check, timeout: float = 30.0, what: str = "condition"):
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[Smsc]:
    """Run a local SMSC; yield it."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the SMSC of the tests")
    _ensure_emulator_installed()
    if not (E2E / "node_modules" / "smpp").exists():
        pytest.fail("run: npm --prefix tests/e2e ci (the smpp package is missing)")
    smpp_port, control_port = free_port(), free_port()
    log_path = tmp_path / "smsc.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [node, str(E2E / "smsc.js"), str(smpp_port), str(control_port)],
            cwd=E2E,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        wait_for_port(control_port, 15, alive=lambda: proc.poll() is None)
        wait_for_port(smpp_port, 15, alive=lambda: proc.poll() is None)
        yield Smsc(smpp_port, control_port, proc)
    finally:
        _stop(proc)
