"""What the notify service decides without I/O: a Notification's delivery rows, what each
says, and when a failed one is tried again (docs/notifications.md).

- ``deliveries_for``: one Delivery per channel of the home's members that wants the
  notification's kind (``domain.notify.wants``);
- ``render``: the title and body apprise sends, and apprise's notify type (the colour or
  priority a service shows) for the severity;
- ``RetryPolicy``: exponential backoff per delivery, the schedule tenacity's
  ``wait_exponential`` gives the services' own retries (``runtime.service``): the first
  wait, doubling, capped; a delivery fails after ``max_attempts`` tries or once its
  notification is older than ``max_age_s``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from domain.notify import Channel, Delivery, channels_for, mask_url

DEFAULT_TITLES: Final = {
    "SECURITY": "Security alert",
    "DEVICE_OFFLINE": "Device offline",
    "LOW_BATTERY": "Low battery",
    "AUTOMATION": "Automation",
    "SYSTEM": "homestream",
}
# apprise.NotifyType values, by Notification severity.
NOTIFY_TYPES: Final = {"INFO": "info", "WARNING": "warning", "CRITICAL": "failure"}
MAX_ERROR: Final = 500


def render(record: Mapping[str, Any]) -> tuple[str, str]:
    """(title, body) of a Notification: its title, or one for its kind; its message."""
    kind = str(record.get("kind") or "SYSTEM")
    title = record.get("title") or DEFAULT_TITLES.get(kind, DEFAULT_TITLES["SYSTEM"])
    # PostgreSQL's text cannot hold NUL; nobody reads one in an alert either.
    return str(title).replace("\x00", ""), str(record.get("message") or "").replace("\x00", "")


def notify_type(severity: str | None) -> str:
    return NOTIFY_TYPES.get(severity or "", "info")


def deliveries_for(record: Mapping[str, Any], channels: Iterable[Channel]) -> list[Delivery]:
    """The delivery rows of one Notification record: one per channel (of the home's
    members) that wants its kind. Raises ValueError for a record without its ids."""
    event_id, home = record.get("event_id"), record.get("home_id")
    if not event_id or not home:
        raise ValueError("a notification without event_id or home_id")
    event_id = str(uuid.UUID(str(event_id)))  # ValueError for one that is not a UUID
    kind = str(record.get("kind") or "UNKNOWN")
    title, body = render(record)
    return [
        Delivery(
            event_id=str(event_id),
            channel_id=ch.channel_id,
            home_id=str(home),
            username=ch.username,
            channel=mask_url(ch.url),
            kind=kind,
            severity=record.get("severity"),
            title=title,
            body=body,
            event_ts_ms=int(record.get("ts") or 0),
        )
        for ch in channels_for(channels, kind)
        if ch.home_id == home
    ]


Outcome = Literal["pending", "failed"]


@dataclass(frozen=True)
class RetryPolicy:
    first_s: float = 1.0
    longest_s: float = 300.0
    max_attempts: int = 300
    max_age_s: float = 86_400.0

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        return cls(
            settings.notify_retry_first_ms / 1000,
            settings.notify_retry_max_ms / 1000,
            settings.notify_max_attempts,
            float(settings.notify_max_age_s),
        )

    def delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed try: first, 2 x first, 4 x first, ...
        up to ``longest_s`` (tenacity's wait_exponential(multiplier=first, min=first,
        max=longest) at attempt number ``attempts``)."""
        exponent = max(0, attempts - 1)
        if exponent >= 64:  # 2**64 x anything is past every cap
            return self.longest_s
        return max(self.first_s, min(self.longest_s, self.first_s * 2**exponent))

    def schedule(self) -> list[float]:
        """Every wait a delivery may see, in order (for docs and tests)."""
        return [self.delay(n) for n in range(1, self.max_attempts)]

    def too_old(self, age_s: float) -> bool:
        return age_s > self.max_age_s

    def after_failure(self, attempts: int, age_s: float) -> tuple[Outcome, float]:
        """("pending", wait) to try again, or ("failed", 0) to give up, after the
        ``attempts``-th try failed when the notification was ``age_s`` old."""
        wait = self.delay(attempts)
        if attempts >= self.max_attempts or self.too_old(age_s + wait):
            return "failed", 0.0
        return "pending", wait


def failure_text(attempts: int, error: str) -> str:
    """The last_error of a delivery that failed for good (already masked)."""
    return f"gave up after {attempts} attempt(s): {error}"[:MAX_ERROR]
