"""The voice server's way to the gateway: sign in, then ``POST .../voice`` with the text.

Blocking (stdlib ``urllib``); the server calls it from a thread. A 401 (the token expired)
signs in again once. The password is never logged."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class GatewayError(RuntimeError):
    pass


class GatewayClient:
    def __init__(self, base_url: str, home: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.home = home
        self.username = username
        self._password = password
        self._token: str | None = None
        self._lock = threading.Lock()

    def _call(self, path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.base_url + path, json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
        except (urllib.error.URLError, OSError) as exc:
            raise GatewayError(f"the gateway at {self.base_url} is unreachable: {exc}") from None

    def _sign_in(self) -> str:
        status, body = self._call(
            "/v1/auth/token", {"username": self.username, "password": self._password}, None
        )
        if status != 200:
            raise GatewayError(
                f"signing in as {self.username!r} failed ({status}): check "
                "HOMESTREAM_VOICE_USERNAME / HOMESTREAM_VOICE_PASSWORD"
            )
        return str(body["access_token"])

    def voice(self, text: str, session_id: str | None = None) -> dict[str, Any]:
        """The gateway's answer to ``text`` (the route's reply)."""
        path = f"/v1/homes/{urllib.parse.quote(self.home)}/voice"
        body: dict[str, Any] = {"text": text[:1000]}
        if session_id:
            body["session_id"] = session_id[:128]
        for attempt in (1, 2):
            with self._lock:
                if self._token is None:
                    self._token = self._sign_in()
                token = self._token
            status, reply = self._call(path, body, token)
            if status == 401 and attempt == 1:
                with self._lock:
                    self._token = None
                continue
            if status != 200:
                message = (reply or {}).get("error", {}).get("message", "")
                raise GatewayError(f"the gateway answered {status}: {message}")
            return dict(reply)
        raise GatewayError("the gateway refused the token twice")
