"""A PTB transport that answers Bot API calls as Telegram would and records them (test code).

PTB's ``Bot`` is real; only the HTTP layer (``BaseRequest.do_request``) is replaced, so the
parameters recorded are what PTB would put on the wire, JSON decoded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from telegram.request import BaseRequest, RequestData

TOKEN = "123456:PTB-test-token"


class RecordingRequest(BaseRequest):
    """Answer every call at once; ``failures[method] = (status, description, parameters)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.files: list[tuple[str, str, bytes]] = []  # (method, filename, bytes)
        self.failures: dict[str, tuple[int, str, dict[str, Any] | None] | Exception] = {}
        self.pending: list[dict[str, Any]] = []  # updates getUpdates hands out
        self.offsets: list[int | None] = []
        self._ids = itertools.count(100)

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Return the parameters of every call of ``method``, oldest first."""
        return [p for m, p in self.requests if m == method]

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = {}
        if request_data is not None:
            for key, value in request_data.json_parameters.items():
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    params[key] = value
            if request_data.contains_files:
                for part in request_data.multipart_data.values():
                    filename, content = part[0], part[1]
                    self.files.append((name, filename, content))
        if name == "getUpdates":
            return await self._updates(params)
        self.requests.append((name, params))
        failure = self.failures.get(name)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            status, description, parameters = failure
            body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
            if parameters:
                body["parameters"] = parameters
            return status, json.dumps(body).encode()
        return 200, json.dumps({"ok": True, "result": self._result(name, params)}).encode()

    async def _updates(self, params: dict[str, Any]) -> tuple[int, bytes]:
        offset = params.get("offset")
        self.offsets.append(offset)
        if offset is not None:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        if not self.pending:
            await asyncio.sleep(0.05)
        return 200, json.dumps({"ok": True, "result": self.pending}).encode()

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name == "getMe":
            return {"id": 123456, "is_bot": True, "first_name": "Bot", "username": "PledgeBot"}
        if name == "getChatMember":
            user = {"id": int(params["user_id"]), "is_bot": False, "first_name": "U"}
            return {"status": "member", "user": user}
        if name in ("sendMessage", "sendPhoto", "sendDocument", "editMessageText", "sendPoll"):
            chat_id = int(params.get("chat_id", 0))
            message: dict[str, Any] = {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            }
            if "text" in params:
                message["text"] = params["text"]
            if name == "sendPoll":
                message["poll"] = {
                    "id": f"poll{message['message_id']}",
                    "question": params["question"],
                    "options": [
                        {
                            "persistent_id": str(i),
                            "text": o["text"] if isinstance(o, dict) else o,
                            "voter_count": 0,
                        }
                        for i, o in enumerate(params["options"])
                    ],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                    "allows_revoting": True,
                    "members_only": False,
                }
            return message
        return True
