"""Device shadows with AWS IoT Device Shadow semantics, as pure functions.

No I/O, no clock: callers pass ``now`` (epoch seconds). The stream applies every
`/update` request and every hub state report through :func:`apply_update` /
:func:`apply_report` and publishes the payloads the result carries.

Where homestream differs from AWS (CONTRACT.md section 4):

* An accepted update that changes nothing is a *no-op*: the version, metadata and
  timestamp stay as they were, and no delta/documents message is produced. AWS bumps
  the version on every accepted update; replays would then never converge.
* Metadata timestamps move only for leaves whose value changed (the same no-op rule,
  per leaf).
* Numbers compare by value (``1 == 1.0``); booleans are not numbers (``true != 1``).

Limits, counted the way AWS counts them:

* Size: a request whose compact UTF-8 JSON (``separators=(",", ":")``,
  ``ensure_ascii=False``) exceeds 8192 bytes is rejected 413; a raw ``bytes``/``str``
  payload is first measured as received, then like a dict once parsed. The resulting
  shadow is also limited to 8192 bytes, measured as the compact JSON of
  ``{"state": {"desired": ..., "reported": ...}}`` (empty sections left out), i.e. the
  update that would recreate it; metadata does not count, as in AWS.
* Depth: ``state.desired`` and ``state.reported`` may each be at most 6 levels deep,
  where the section object itself is level 1 and every nested object or array adds a
  level (scalars add none). So ``{"desired": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}``
  (a leaf six keys down) is the deepest allowed, and ``{..."f": {}}`` or ``{..."f": [1]}``
  is one too deep. This matches AWS's error text ("maximum is 6"), its Greengrass shadow
  manager (six keys down accepted, seven rejected) and the older AWS quota page (five
  levels *below* the section object). See :func:`depth`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MAX_DOCUMENT_BYTES: Final = 8192
MAX_DEPTH: Final = 6
MAX_CLIENT_TOKEN_BYTES: Final = 64
SECTIONS: Final = ("desired", "reported")

# A request of at most 8192 bytes cannot hold more values than this, so a walk that
# meets more (a cyclic or huge Python object) can stop early with a 413.
_MAX_NODES: Final = MAX_DOCUMENT_BYTES + 1
# A stored document's metadata has about two nodes per leaf on top of the state.
_MAX_STORED_NODES: Final = 4 * _MAX_NODES
# Walks stop this deep: far beyond the 6 levels allowed, and far below the recursion limit.
_MAX_WALK_DEPTH: Final = 64
# Values leave through Kafka/Avro (long) and PostgreSQL (bigint): keep integers in 64 bits.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1

# AWS's own wording (device-shadow-error-messages), so AWS clients keep working.
MSG_INVALID_JSON: Final = "Invalid JSON"
MSG_MISSING_STATE: Final = "Missing required node: state"
MSG_STATE_NOT_OBJECT: Final = "State node must be an object"
MSG_DESIRED_NOT_OBJECT: Final = "Desired node must be an object"
MSG_REPORTED_NOT_OBJECT: Final = "Reported node must be an object"
MSG_INVALID_VERSION: Final = "Invalid version"
MSG_INVALID_CLIENT_TOKEN: Final = "Invalid clientToken"
MSG_TOO_DEEP: Final = f"JSON contains too many levels of nesting; maximum is {MAX_DEPTH}"
MSG_INVALID_NODE: Final = "State contains an invalid node"
MSG_VERSION_CONFLICT: Final = "Version conflict"
MSG_TOO_LARGE: Final = "The payload exceeds the maximum size allowed"
MSG_ENCODING: Final = "Unsupported documented encoding; supported encoding is UTF-8"
MSG_INTERNAL: Final = "Internal service failure"

JsonObject = dict[str, Any]


class _Missing:
    """Marks an absent key, which is not the same as a JSON null."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


@dataclass(frozen=True)
class ShadowError:
    """An AWS shadow error: an HTTP-like ``code`` and a human-readable ``message``."""

    code: int
    message: str

    def payload(self, now: int, client_token: str | None = None) -> JsonObject:
        """The AWS error document (`/update/rejected`, `/get/rejected`)."""
        out: JsonObject = {"code": self.code, "message": self.message, "timestamp": now}
        if client_token is not None:
            out["clientToken"] = client_token
        return out


@dataclass(frozen=True)
class Shadow:
    """One device's shadow. Treat its dicts as read-only: a new shadow shares unchanged
    subtrees with the one it came from (payloads and documents handed out are copies)."""

    desired: JsonObject = field(default_factory=dict)
    reported: JsonObject = field(default_factory=dict)
    metadata: JsonObject = field(default_factory=lambda: {"desired": {}, "reported": {}})
    version: int = 0
    timestamp: int = 0

    @classmethod
    def empty(cls, now: int = 0) -> Shadow:
        """A shadow that has never accepted a change (version 0)."""
        return cls(timestamp=now)

    @property
    def exists(self) -> bool:
        """False until the first accepted change: AWS would answer a get with 404."""
        return self.version > 0

    @property
    def delta(self) -> JsonObject:
        """The desired leaves that differ from reported."""
        return delta(self.desired, self.reported)

    def to_document(self) -> JsonObject:
        """The AWS get/accepted shape: state (with delta when non-empty), metadata, version,
        timestamp. Empty sections are left out, as AWS does."""
        doc = self._snapshot()
        d = self.delta
        if d:
            doc["state"]["delta"] = _clone(d)
        doc["timestamp"] = self.timestamp
        return doc

    @classmethod
    def from_document(cls, doc: Any) -> Shadow:
        """Rebuild a shadow from :meth:`to_document` output (``state.delta`` is ignored: it is
        derived). Raises ValueError on a document that is not such a shape."""
        if not isinstance(doc, Mapping):
            raise ValueError("a shadow document must be a JSON object")
        state = _object_or_empty(doc.get("state"), "state")
        meta = _object_or_empty(doc.get("metadata"), "metadata")
        sections = {s: _object_or_empty(state.get(s), f"state.{s}") for s in SECTIONS}
        metas = {s: _object_or_empty(meta.get(s), f"metadata.{s}") for s in SECTIONS}
        version, timestamp = doc.get("version", 0), doc.get("timestamp", 0)
        if not _is_int(version) or version < 0:
            raise ValueError("version must be a non-negative integer")
        if not _is_int(timestamp):
            raise ValueError("timestamp must be an integer")
        for name, value in (("state", sections), ("metadata", metas)):
            err = _check_json(value, (name,), max_nodes=_MAX_STORED_NODES)
            if err is not None:
                raise ValueError(err.message)
        return cls(
            desired=_clone(sections["desired"]),
            reported=_clone(sections["reported"]),
            metadata=_clone(metas),
            version=int(version),
            timestamp=int(timestamp),
        )

    def _snapshot(self) -> JsonObject:
        """State, metadata and version, the shape of `/update/documents` previous/current."""
        state = {s: _clone(getattr(self, s)) for s in SECTIONS if getattr(self, s)}
        meta = {s: _clone(self.metadata.get(s, {})) for s in SECTIONS if getattr(self, s)}
        return {"state": state, "metadata": meta, "version": self.version}


# Builds one of an update's AWS payloads: "accepted", "delta" or "documents".
_Payloads = Callable[[str], "JsonObject | None"]


@dataclass(frozen=True)
class UpdateResult:
    """What one update did, and every payload the stream may publish for it.

    The AWS payloads (``accepted_response``, ``delta_message``, ``documents_message``)
    are built when first read: a device report needs none of them but the delta, and
    building the documents (two deep copies of the shadow) was a fifth of a report's fold.
    """

    accepted: bool
    shadow: Shadow  # the new shadow; the unchanged old one on rejection or no-op
    changed: bool  # False for a rejection and for an accepted no-op
    error: ShadowError | None
    rejected_response: JsonObject | None  # /update/rejected
    changed_reported: JsonObject  # reported leaves that changed; null = deleted
    changed_desired: JsonObject  # desired leaves that changed; null = deleted
    delta: JsonObject  # the shadow's delta after the update
    payloads: _Payloads | None = field(default=None, repr=False, compare=False)

    def _payload(self, name: str) -> JsonObject | None:
        return self.payloads(name) if self.payloads is not None else None

    @functools.cached_property
    def accepted_response(self) -> JsonObject | None:
        """/update/accepted"""
        return self._payload("accepted")

    @functools.cached_property
    def delta_message(self) -> JsonObject | None:
        """/update/delta: only on a change that leaves a delta"""
        return self._payload("delta")

    @functools.cached_property
    def documents_message(self) -> JsonObject | None:
        """/update/documents: only on a change"""
        return self._payload("documents")


# --- pure helpers -----------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: 1 == 1.0, but a boolean never equals a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    return a is None and b is None


def depth(obj: Any) -> int:
    """Nesting depth: a scalar is 0, an object or array is 1 + its deepest member."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            level += 1
            deepest = max(deepest, level)
            members = value.values() if isinstance(value, dict) else value
            stack.extend((m, level) for m in members)
    return deepest


def delta(desired: Mapping[str, Any], reported: Mapping[str, Any]) -> JsonObject:
    """The desired leaves whose value differs from reported (absent counts as different).

    Objects are compared leaf by leaf and the delta keeps the path down to each leaf;
    arrays are values, compared whole. Keys only in reported never appear.
    """
    out: JsonObject = {}
    for key, want in desired.items():
        have = reported.get(key, _MISSING)
        if isinstance(want, dict):
            sub = delta(want, have if isinstance(have, dict) else {})
            if sub:
                out[key] = sub
        elif have is _MISSING or not json_equal(want, have):
            out[key] = want
    return out


def merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> JsonObject:
    """``base`` with ``patch`` applied, as a shadow update applies a section.

    Objects merge key by key; ``null`` deletes a leaf or subtree, and objects it leaves
    empty are pruned; anything else replaces the value (arrays whole). A patch object
    with no leaves changes nothing. An equal value (1 vs 1.0) keeps the stored one, so
    applying a patch twice gives the same result. Inputs are never modified.
    """
    out = dict(base)
    for key, new in patch.items():
        if new is None:
            out.pop(key, None)
            continue
        old = out.get(key, _MISSING)
        if isinstance(new, dict):
            merged = merge(old if isinstance(old, dict) else {}, new)
            if merged:
                out[key] = merged
            elif isinstance(old, dict):
                del out[key]  # emptied by deletes
        elif old is _MISSING or not json_equal(old, new):
            out[key] = _clone(new)
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> JsonObject:
    """The smallest patch that turns ``old`` into ``new`` (null marks a deletion), so
    ``merge(old, diff(old, new)) == new`` for pruned, null-free objects."""
    out: JsonObject = {}
    for key, value in new.items():
        was = old.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(was, dict):
            sub = diff(was, value)
            if sub:
                out[key] = sub
        elif was is _MISSING or not json_equal(was, value):
            out[key] = value
    for key in old:
        if key not in new:
            out[key] = None
    return out


# --- updates ----------------------------------------------------------------------


def apply_update(shadow: Shadow | None, request: Any, now: int) -> UpdateResult:
    """Apply an AWS `/update` request (a dict, or the raw JSON ``bytes``/``str`` payload).

    Never raises: bad input gives a rejected result with AWS's code and message.
    ``shadow=None`` means no shadow yet (the same as :meth:`Shadow.empty`).
    """
    old = shadow if shadow is not None else Shadow.empty()
    try:
        return _apply(old, request, now)
    except Exception:  # a bug here must not stop the stream: answer as AWS does (500)
        return _failed(old, now)


def apply_report(
    shadow: Shadow | None, reported: Any, now: int, client_token: str | None = None
) -> UpdateResult:
    """A device's partial state report: an update of ``state.reported`` only.

    Unlike a raw update, a ``None`` report is rejected rather than wiping ``reported``.
    """
    if not isinstance(reported, dict):
        old = shadow if shadow is not None else Shadow.empty()
        err = ShadowError(400, MSG_REPORTED_NOT_OBJECT)
        return _rejected(old, err, now, _echo(client_token))
    request: JsonObject = {"state": {"reported": reported}}
    if client_token is not None:
        request["clientToken"] = client_token
    return apply_update(shadow, request, now)


def get_document(
    shadow: Shadow | None,
    client_token: str | None = None,
    *,
    now: int,
    name: str | None = None,
) -> JsonObject:
    """The `/get/accepted` payload, or AWS's 404 error payload when there is no shadow
    (``None`` or version 0). ``name`` (the device) only goes into the 404 message."""
    token = _echo(client_token)
    if shadow is None or not shadow.exists:
        message = f"No shadow exists with name: '{name}'" if name else "No shadow exists"
        return ShadowError(404, message).payload(now, token)
    doc = shadow.to_document()
    doc["timestamp"] = now  # AWS: when the response was generated
    if token is not None:
        doc["clientToken"] = token
    return doc


def _apply(old: Shadow, request: Any, now: int) -> UpdateResult:
    if isinstance(request, bytes | bytearray | str):
        parsed = _parse(request)
        if isinstance(parsed, ShadowError):
            return _rejected(old, parsed, now, None)
        request = parsed
    if not isinstance(request, dict):
        err = ShadowError(400, f"{MSG_INVALID_JSON}: the update request must be a JSON object")
        return _rejected(old, err, now, None)
    token = _echo(request.get("clientToken"))

    error = _check_json(request, ())
    if error is None:
        request = _clone(request)
        if _size(request) > MAX_DOCUMENT_BYTES:
            error = ShadowError(413, MSG_TOO_LARGE)
    error = error or _check_request(request)
    if error is None:
        version = request.get("version")
        if version is not None and version != old.version:
            error = ShadowError(409, MSG_VERSION_CONFLICT)
    if error is not None:
        return _rejected(old, error, now, token)

    state: JsonObject = request["state"]
    new_sections = {s: _next_section(getattr(old, s), state.get(s, _MISSING)) for s in SECTIONS}
    changes = {s: diff(getattr(old, s), new_sections[s]) for s in SECTIONS}
    if not any(changes.values()):
        return _no_op(old, state, now, token)
    if _state_size(new_sections["desired"], new_sections["reported"]) > MAX_DOCUMENT_BYTES:
        return _rejected(old, ShadowError(413, MSG_TOO_LARGE), now, token)

    metadata = {
        s: (
            _remeta(getattr(old, s), new_sections[s], old.metadata.get(s), now)
            if changes[s]
            else old.metadata.get(s, {})
        )
        for s in SECTIONS
    }
    new = Shadow(
        desired=new_sections["desired"],
        reported=new_sections["reported"],
        metadata=metadata,
        version=old.version + 1,
        timestamp=now,
    )
    return _changed(old, new, state, changes, now, token)


def _next_section(current: JsonObject, requested: Any) -> JsonObject:
    """A section after the request: untouched if absent, cleared by null, else merged."""
    if requested is _MISSING:
        return current
    if requested is None:
        return {}
    return merge(current, requested)


def _no_op(old: Shadow, state: JsonObject, now: int, token: str | None) -> UpdateResult:
    def payloads(name: str) -> JsonObject | None:
        if name != "accepted":
            return None
        accepted = {"state": state, "metadata": {}, "version": old.version, "timestamp": now}
        return _with_token(accepted, token)

    return UpdateResult(
        accepted=True,
        shadow=old,
        changed=False,
        error=None,
        rejected_response=None,
        changed_reported={},
        changed_desired={},
        delta=_clone(old.delta),
        payloads=payloads,
    )


def _changed(
    old: Shadow,
    new: Shadow,
    state: JsonObject,
    changes: dict[str, JsonObject],
    now: int,
    token: str | None,
) -> UpdateResult:
    current_delta = new.delta

    def payloads(name: str) -> JsonObject | None:
        if name == "accepted":
            touched = {s: _mirror(c, now) for s, c in changes.items() if c}
            accepted = {"state": state, "metadata": touched, "version": new.version}
            return _with_token({**accepted, "timestamp": now}, token)
        if name == "delta":
            if not current_delta:
                return None
            return _with_token(
                {
                    "state": _clone(current_delta),
                    "metadata": _pick_meta(current_delta, new.metadata.get("desired"), now),
                    "version": new.version,
                    "timestamp": now,
                },
                token,
            )
        documents = {
            "previous": old._snapshot() if old.exists else None,
            "current": new._snapshot(),
            "timestamp": now,
        }
        return _with_token(documents, token)

    return UpdateResult(
        accepted=True,
        shadow=new,
        changed=True,
        error=None,
        rejected_response=None,
        changed_reported=_clone(changes["reported"]),
        changed_desired=_clone(changes["desired"]),
        delta=_clone(current_delta),
        payloads=payloads,
    )


def _rejected(
    old: Shadow,
    error: ShadowError,
    now: int,
    token: str | None,
    delta: JsonObject | None = None,
) -> UpdateResult:
    return UpdateResult(
        accepted=False,
        shadow=old,
        changed=False,
        error=error,
        rejected_response=error.payload(now, token),
        changed_reported={},
        changed_desired={},
        delta=_clone(old.delta) if delta is None else delta,
    )


def _failed(old: Shadow, now: int) -> UpdateResult:
    """The 500 result, built without trusting ``old`` (it may be what broke)."""
    try:
        current_delta = _clone(old.delta)
    except Exception:
        current_delta = {}
    return _rejected(old, ShadowError(500, MSG_INTERNAL), now, None, delta=current_delta)


# --- validation -------------------------------------------------------------------


def _parse(payload: bytes | bytearray | str) -> Any:
    """Decode a raw payload, or the ShadowError AWS would answer with."""
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    if len(raw) > MAX_DOCUMENT_BYTES:
        return ShadowError(413, MSG_TOO_LARGE)
    try:
        text = raw.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
    except UnicodeDecodeError:
        return ShadowError(415, MSG_ENCODING)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return ShadowError(400, MSG_TOO_DEEP)
    except ValueError as exc:
        return ShadowError(400, f"{MSG_INVALID_JSON}: {exc}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _check_json(
    value: Any, root: tuple[str | int, ...], max_nodes: int = _MAX_NODES
) -> ShadowError | None:
    """The first reason ``value`` is not plain JSON a shadow can hold, or None.

    Iterative and bounded, so deep, huge or cyclic Python objects end in a rejection.
    """
    stack: list[tuple[Any, tuple[str | int, ...], bool]] = [(value, root, False)]
    seen = 0
    while stack:
        item, path, in_array = stack.pop()
        seen += 1
        if seen > max_nodes:
            return ShadowError(413, MSG_TOO_LARGE)
        if len(path) - len(root) > _MAX_WALK_DEPTH:
            return ShadowError(400, MSG_TOO_DEEP)
        problem = None
        if item is None:
            if in_array:  # AWS: arrays can't have null values
                problem = f"arrays cannot contain null (at {_where(path)})"
        elif isinstance(item, bool):
            pass
        elif isinstance(item, int):
            if not _INT_MIN <= item <= _INT_MAX:
                problem = f"{_where(path)} is an integer outside the 64-bit range"
        elif isinstance(item, float):
            if not math.isfinite(item):
                problem = f"{_where(path)} is {item}, which JSON cannot represent"
        elif isinstance(item, str):
            if not item.isascii() and not _is_utf8(item):  # isascii: a flag, no encoding
                problem = f"{_where(path)} is not valid Unicode text"
        elif isinstance(item, dict):
            for key, member in item.items():
                if not isinstance(key, str) or not (key.isascii() or _is_utf8(key)):
                    problem = f"object keys must be text (at {_where(path)})"
                    break
                stack.append((member, (*path, key), in_array))
        elif isinstance(item, list):
            stack.extend((member, (*path, i), True) for i, member in enumerate(item))
        else:
            problem = f"{_where(path)} has type {type(item).__name__}, not a JSON type"
        if problem is not None:
            return ShadowError(400, f"{MSG_INVALID_JSON}: {problem}")
    return None


def _check_request(request: JsonObject) -> ShadowError | None:
    """Structure, clientToken, version and depth rules of an update request."""
    if "state" not in request:
        return ShadowError(400, MSG_MISSING_STATE)
    state = request["state"]
    if not isinstance(state, dict):
        return ShadowError(400, MSG_STATE_NOT_OBJECT)
    for key in state:
        if key not in SECTIONS:
            detail = f"'{key[:40]}' (only desired and reported can be updated)"
            return ShadowError(400, f"{MSG_INVALID_NODE}: {detail}")
    for section, message in (
        ("desired", MSG_DESIRED_NOT_OBJECT),
        ("reported", MSG_REPORTED_NOT_OBJECT),
    ):
        value = state.get(section)
        if value is not None and not isinstance(value, dict):
            return ShadowError(400, message)
    token = request.get("clientToken")
    if token is not None and (
        not isinstance(token, str) or len(token.encode("utf-8")) > MAX_CLIENT_TOKEN_BYTES
    ):
        return ShadowError(400, MSG_INVALID_CLIENT_TOKEN)
    version = request.get("version")
    if version is not None and (not _is_int(version) or version < 0):
        return ShadowError(400, MSG_INVALID_VERSION)
    if any(depth(state.get(s)) > MAX_DEPTH for s in SECTIONS):
        return ShadowError(400, MSG_TOO_DEEP)
    return None


# --- small internals --------------------------------------------------------------


def _mirror(value: Any, now: int) -> Any:
    """Metadata for ``value`` written at ``now``: the same shape with a timestamp per
    leaf. Arrays get one entry per element, as AWS returns them."""
    if isinstance(value, dict):
        return {k: _mirror(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_mirror(v, now) for v in value]
    return {"timestamp": now}


def _remeta(old: Any, new: Any, meta: Any, now: int) -> Any:
    """Metadata for ``new``: unchanged leaves keep their old timestamp, the rest get ``now``.

    Walked alongside the state, so an attribute named "timestamp" is never mistaken
    for metadata.
    """
    if isinstance(new, dict):
        same_kind = isinstance(old, dict) and isinstance(meta, dict)
        old_obj = old if same_kind else {}
        old_meta = meta if same_kind else {}
        return {
            k: _remeta(old_obj.get(k, _MISSING), v, old_meta.get(k), now) for k, v in new.items()
        }
    if old is not _MISSING and meta is not None and json_equal(old, new):
        return meta
    return _mirror(new, now)


def _pick_meta(tree: Any, meta: Any, now: int) -> Any:
    """The desired metadata for the leaves of ``tree`` (a delta)."""
    if isinstance(tree, dict):
        parent = meta if isinstance(meta, dict) else {}
        return {k: _pick_meta(v, parent.get(k), now) for k, v in tree.items()}
    return _clone(meta) if meta is not None else _mirror(tree, now)


def _clone(value: Any) -> Any:
    """A deep copy in plain JSON types (subclasses of dict/str/int... become the base)."""
    if isinstance(value, dict):
        return {str.__str__(k): _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    return value


def _size(value: Any) -> int:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return len(text.encode("utf-8"))


def _state_size(desired: JsonObject, reported: JsonObject) -> int:
    """Bytes the shadow's state counts against the 8 KB limit (metadata excluded): the
    update that would recreate it, so any shadow that fits can be written in one request."""
    state = {
        name: value for name, value in zip(SECTIONS, (desired, reported), strict=True) if value
    }
    return _size({"state": state})


def _with_token(payload: JsonObject, token: str | None) -> JsonObject:
    if token is not None:
        payload["clientToken"] = token
    cloned: JsonObject = _clone(payload)
    return cloned


def _echo(token: Any) -> str | None:
    """The clientToken to echo: any string the caller sent (even one rejected as too long)."""
    return str.__str__(token) if isinstance(token, str) and _is_utf8(token) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _where(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part[:40]}"
    return out.lstrip(".") or "the request"


def _object_or_empty(value: Any, name: str) -> JsonObject:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value
