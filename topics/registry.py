"""A minimal Confluent Schema Registry REST client (urllib; no extra dependency)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from topics.errors import RegistryError, UnknownSchemaError

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryClient:
    """The three calls the codec needs. ``url`` may carry ``user:password@`` for basic auth."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"schema registry URL must be http(s)://host[:port]: {url!r}")
        self._auth: str | None = None
        if parts.username is not None:
            creds = f"{urllib.parse.unquote(parts.username)}:"
            creds += urllib.parse.unquote(parts.password or "")
            self._auth = "Basic " + base64.b64encode(creds.encode()).decode()
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        self.base = urllib.parse.urlunsplit(parts).rstrip("/")
        self.timeout = timeout

    def register(self, subject: str, schema: str) -> int:
        """POST /subjects/{subject}/versions: the schema's id (existing or new)."""
        body = self._call("POST", f"/subjects/{_q(subject)}/versions", {"schema": schema})
        return _int_field(body, "id")

    def lookup(self, subject: str, schema: str) -> int:
        """POST /subjects/{subject}: the id of an already-registered schema."""
        body = self._call("POST", f"/subjects/{_q(subject)}", {"schema": schema})
        return _int_field(body, "id")

    def schema_by_id(self, schema_id: int) -> str:
        """GET /schemas/ids/{id}: the schema text."""
        body = self._call("GET", f"/schemas/ids/{schema_id}", None)
        if body.get("schemaType", "AVRO") != "AVRO":
            raise UnknownSchemaError(f"registry schema id {schema_id} is {body['schemaType']}")
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise RegistryError(f"registry answer for id {schema_id} has no schema: {body!r:.200}")
        return schema

    def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", f"{_CONTENT_TYPE}, application/json")
        if data is not None:
            req.add_header("Content-Type", _CONTENT_TYPE)
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc)
            if exc.code == 404:
                raise UnknownSchemaError(f"schema registry {method} {path}: 404 {detail}") from None
            raise RegistryError(f"schema registry {method} {path}: {exc.code} {detail}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            raise RegistryError(f"schema registry at {self.base} unreachable: {exc}") from None
        try:
            body = json.loads(text)
        except ValueError:
            raise RegistryError(f"schema registry {method} {path}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise RegistryError(f"schema registry {method} {path}: unexpected answer {body!r:.200}")
        return body


def _q(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _int_field(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RegistryError(f"schema registry answer without an integer {key!r}: {body!r:.200}")
    return value


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return f"(error_code {body.get('error_code')}): {body.get('message')}"
    except Exception:
        return exc.reason if isinstance(exc.reason, str) else ""
