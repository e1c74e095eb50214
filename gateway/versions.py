"""What a live client holds, so it is never sent anything older (CONTRACT.md section 5:
``version`` rises per device; a command's status never moves back).

The WebSocket leaves the dropping to its clients; the GraphQL subscriptions drop for them,
with these, after seeding them from what the client was shown first.
"""

from __future__ import annotations

from domain.lifecycle import rank


class DeviceVersions:
    """The highest shadow version sent per device."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}

    def seed(self, device_id: str, version: int) -> None:
        self.sent[device_id] = max(self.sent.get(device_id, 0), version)

    def forget(self, device_id: str) -> None:
        """A device removed or registered again: its next life counts from 1 again."""
        self.sent.pop(device_id, None)

    def admit(self, device_id: str, version: int | None) -> bool:
        """Whether an event of ``version`` may go out (and note it). The same version may
        go twice: one StateChange can be a device.state and a device.desired event."""
        if version is None:
            return True
        if version < self.sent.get(device_id, 0):
            return False
        self.sent[device_id] = version
        return True


class StatusProgress:
    """The most advanced status sent of one command (``domain.lifecycle.rank``)."""

    def __init__(self) -> None:
        self.sent: str | None = None

    def admit(self, status: str | None) -> bool:
        if self.sent is not None and rank(status) <= rank(self.sent):
            return False
        self.sent = status
        return True
