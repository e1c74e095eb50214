"""Requests waiting for a scene run's end: the final ``scene.status`` frames the fan-out
sees (the stream worker runs scenes; ``gateway.routes.scenes``).

Every gateway process reads every SceneRun, so the process that produced a request sees
its end without asking another. The waiter is registered before the request is produced:
an end that comes quickly is not missed. Loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

FINAL_RUN = frozenset({"COMPLETED", "PARTIAL", "FAILED"})


class SceneWaits:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def expect(self, run_id: str) -> asyncio.Future[dict[str, Any]]:
        """A future that gets the run's final frame; ``forget`` it when done waiting."""
        future = self._waiting.get(run_id)
        if future is None:
            future = self._waiting[run_id] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, run_id: str) -> None:
        future = self._waiting.pop(run_id, None)
        if future is not None and not future.done():
            future.cancel()

    def note(self, frame: dict[str, Any]) -> None:
        """A scene.status frame: ends the wait for its run when it is final."""
        if frame.get("status") not in FINAL_RUN:
            return
        future = self._waiting.pop(str(frame.get("run_id") or ""), None)
        if future is not None and not future.done():
            future.set_result(frame)

    async def wait(self, run_id: str, timeout: float) -> dict[str, Any] | None:
        """The run's final frame, or None when it did not come within ``timeout`` s."""
        future = self.expect(run_id)
        try:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            return None
        finally:
            self.forget(run_id)

    def __len__(self) -> int:
        return len(self._waiting)
