"""Notification channels: which kinds a channel wants, its stable id, and how its URL may
be shown (pure, no I/O).

A channel is one apprise URL a member set for a home (``PUT .../notifications/channels``),
optionally limited to some notification kinds. Its URL is a secret: apprise URLs carry
bot tokens, webhook ids, passwords and ntfy topics in their user, host, path or query. So
nothing but its owner ever sees it whole; logs, errors and delivery statuses show
``mask_url`` (scheme and host, the host only when it names a machine) and pass any text
that might quote it through ``scrub``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

# The kinds of avro/Notification (UNKNOWN, the readers' fallback, is not a kind one picks);
# tests/unit/test_notify_rules.py holds this list to the schema.
KINDS: Final = ("SECURITY", "DEVICE_OFFLINE", "LOW_BATTERY", "AUTOMATION", "SYSTEM")
MAX_CHANNELS: Final = 10
MAX_URL: Final = 2048
HIDDEN: Final = "***"

# A host worth showing: an address, localhost, or a dotted name ending in a word. Apprise
# puts tokens where a host goes for many services (tgram://<bot token>/..., ntfy://<topic>,
# discord://<webhook id>/...): those are hidden.
_DOTTED_NAME: Final = re.compile(r"(?:[a-z0-9-]+\.)+[a-z][a-z0-9-]*", re.IGNORECASE)
# Shorter pieces of a URL are not scrubbed from text: "to", "1" or "on" would mangle it.
_MIN_SECRET: Final = 4


@dataclass(frozen=True)
class Channel:
    """One member's channel in one home. ``kinds`` None: every kind."""

    home_id: str
    username: str
    url: str
    kinds: tuple[str, ...] | None = None

    @property
    def channel_id(self) -> str:
        return channel_id(self.username, self.url)


@dataclass(frozen=True)
class Delivery:
    """One notification for one channel: a row of the delivery outbox, as recorded."""

    event_id: str
    channel_id: str
    home_id: str
    username: str
    channel: str  # mask_url of the channel's URL
    kind: str
    severity: str | None
    title: str
    body: str
    event_ts_ms: int


def channel_id(username: str, url: str) -> str:
    """A channel's id: the same member and URL give the same id, whenever it is computed,
    so a replayed notification finds its delivery rows (keyed on event and channel)."""
    return hashlib.sha256(f"{username}\n{url}".encode()).hexdigest()[:32]


def wants(kinds: Sequence[str] | None, kind: str) -> bool:
    """Whether a channel limited to ``kinds`` (None: all) gets a notification of ``kind``.
    A kind this version does not know (UNKNOWN) goes to the channels that take every kind."""
    return kinds is None or kind in kinds


def channels_for(channels: Iterable[Channel], kind: str) -> list[Channel]:
    """The channels that get a notification of ``kind``, in the order given."""
    return [c for c in channels if wants(c.kinds, kind)]


def _shown_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return _DOTTED_NAME.fullmatch(host) is not None


def mask_url(url: str) -> str:
    """What logs and statuses may show of a channel URL: ``scheme://host``, with the host
    hidden unless it is a machine's name or address (``tgram://***``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unbalanced [ in the host
        return f"{url.partition(':')[0][:16] or '?'}://{HIDDEN}"
    scheme = parts.scheme[:16] or "?"
    if not host or not _shown_host(host):
        return f"{scheme}://{HIDDEN}"
    return f"{scheme}://[{host}]" if ":" in host else f"{scheme}://{host}"


def _secret_parts(url: str) -> set[str]:
    parts = {url}
    try:
        split = urlsplit(url)
        host = split.hostname or ""
        found = [split.username or "", split.password or ""]
        found += split.path.split("/")
        found += [v for _k, v in parse_qsl(split.query, keep_blank_values=True)]
        if host and not _shown_host(host):  # a token where the host goes, maybe with a ':'
            found += [host, split.netloc]
    except ValueError:
        found = []
    for part in found:
        parts |= {part, unquote(part)}
    return {p for p in parts if len(p) >= _MIN_SECRET}


def scrub(text: str, url: str) -> str:
    """``text`` (an error from the library that sent to ``url``) without any secret part
    of ``url`` in it: the URL itself, its user, password, path segments, query values and
    a host that is not a machine's name."""
    for part in sorted(_secret_parts(url), key=len, reverse=True):
        text = text.replace(part, HIDDEN)
    return text
