"""Members' notification channels in PostgreSQL (migration 0005), and the one check of a
channel list: what the gateway stores is what the notify service can send to.

A channel is an apprise URL (webhook JSON, email, ntfy, ... : whatever apprise speaks),
optionally limited to some kinds (``domain.notify``). Apprise parses the URL here the same
way it will when sending, so a URL the gateway accepted is one apprise can use.

Apprise logs a URL it cannot parse, whole, at ERROR: ``quiet_apprise`` keeps its logger
(and urllib3's, which names request paths) out of our logs. Callers report what went wrong
themselves, masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from domain.notify import KINDS, MAX_CHANNELS, Channel, channel_id

_quiet = False


def quiet_apprise() -> None:
    """Keep apprise's and urllib3's log records (which may quote channel URLs) out of the
    process's handlers. Idempotent."""
    global _quiet
    if _quiet:
        return
    for name in ("apprise", "urllib3"):
        logger = logging.getLogger(name)
        logger.propagate = False
        logger.addHandler(logging.NullHandler())  # not Python's last-resort stderr handler
    _quiet = True


def url_problem(url: str) -> str | None:
    """None when apprise can send to ``url``; else what to do, without quoting the URL."""
    import apprise

    quiet_apprise()
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # a plugin that chokes on its own URL: the same answer
        plugin = None
    if plugin is None:
        return (
            "apprise cannot use this URL: check its scheme (json://, jsons://, mailto://, "
            "ntfy://, ... see apprise's list of services) and the fields that service needs"
        )
    return None


def channel_problems(channels: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(path, message)`` for each unusable entry of a body already shaped like
    ``[{"url", "kinds"?}]``: a URL apprise cannot parse, the same URL twice, a kind that is
    not a Notification kind."""
    problems: list[tuple[str, str]] = []
    if len(channels) > MAX_CHANNELS:
        problems.append(("", f"at most {MAX_CHANNELS} channels per member and home"))
    seen: dict[str, int] = {}
    for i, entry in enumerate(channels):
        url = entry["url"]
        if url in seen:
            problems.append((f"[{i}].url", f"the same URL as [{seen[url]}].url"))
            continue
        seen[url] = i
        problem = url_problem(url)
        if problem is not None:
            problems.append((f"[{i}].url", problem))
        for j, kind in enumerate(entry.get("kinds") or ()):
            if kind not in KINDS:
                problems.append((f"[{i}].kinds[{j}]", f"must be one of {', '.join(KINDS)}"))
    return problems


def channel_view(channel: Channel) -> dict[str, Any]:
    """A channel as its owner sees it: ``{"url", "kinds"?}`` (no kinds: every kind)."""
    out: dict[str, Any] = {"url": channel.url}
    if channel.kinds is not None:
        out["kinds"] = list(channel.kinds)
    return out


def channels_from(home_id: str, username: str, body: Iterable[dict[str, Any]]) -> list[Channel]:
    """The Channels of a checked body (``channel_problems`` found nothing)."""
    out = []
    for entry in body:
        kinds = entry.get("kinds")
        out.append(
            Channel(home_id, username, entry["url"], None if kinds is None else tuple(kinds))
        )
    return out


# -- PostgreSQL ------------------------------------------------------------------------------
def member_channels(conn: psycopg.Connection[Any], home_id: str, username: str) -> list[Channel]:
    rows = conn.execute(
        "SELECT url, kinds FROM notification_channels WHERE home_id = %s AND username = %s"
        " ORDER BY position",
        (home_id, username),
    ).fetchall()
    return [Channel(home_id, username, url, _kinds(kinds)) for url, kinds in rows]


def set_member_channels(
    conn: psycopg.Connection[Any], home_id: str, username: str, channels: Sequence[Channel]
) -> None:
    """Replace the member's channels in one transaction. Deliveries already recorded for
    a channel that goes are settled as failed by the sender ("channel removed")."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM notification_channels WHERE home_id = %s AND username = %s",
            (home_id, username),
        )
        for position, ch in enumerate(channels):
            conn.execute(
                "INSERT INTO notification_channels"
                " (home_id, username, channel_id, position, url, kinds)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    home_id,
                    username,
                    channel_id(username, ch.url),
                    position,
                    ch.url,
                    None if ch.kinds is None else list(ch.kinds),
                ),
            )


def home_channels(
    conn: psycopg.Connection[Any], home_ids: Sequence[str]
) -> dict[str, list[Channel]]:
    """Every channel of the current members of each home, by home."""
    out: dict[str, list[Channel]] = {h: [] for h in home_ids}
    if not home_ids:
        return out
    rows = conn.execute(
        "SELECT c.home_id, c.username, c.url, c.kinds FROM notification_channels c"
        " JOIN home_members m USING (home_id, username)"
        " WHERE c.home_id = ANY(%s) ORDER BY c.home_id, c.username, c.position",
        (list(home_ids),),
    ).fetchall()
    for home, user, url, kinds in rows:
        out[home].append(Channel(home, user, url, _kinds(kinds)))
    return out


def _kinds(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)
