"""What every long-running service does the same way: stop cleanly on a signal, and retry
a store that is down with capped exponential backoff (tenacity) while it still runs."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

T = TypeVar("T")


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a driver's can run to many), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM (the launcher, systemd, docker) and SIGINT (Ctrl-C) call ``stop``: the
    service finishes its batch, commits and exits. Main thread only."""
    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())


def retry_while_running(
    fn: Callable[[], T],
    *,
    running: Callable[[], bool],
    retry_on: Callable[[BaseException], bool],
    log: logging.Logger,
    what: str,
    first: float = 0.5,
    longest: float = 15.0,
    on_retry: Callable[[BaseException, float], Any] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T | None:
    """``fn()``, retried while ``retry_on(error)`` says the error is transient (a store is
    down) and ``running()``; waits ``first`` s, doubling up to ``longest``. Returns None
    when the service stopped before ``fn`` succeeded; other errors propagate. ``on_retry``
    sees each transient error (also the last one, when stopping); ``sleep`` replaces the
    wait (e.g. a consumer poll that keeps the group membership)."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if exc is not None:
            log.warning("%s failed (%s); retrying in %.1f s", what, first_line(exc), delay)
            if on_retry is not None:
                on_retry(exc, delay)

    def nap(seconds: float) -> None:  # wakes early when the service is told to stop
        end = time.monotonic() + seconds
        while running() and (left := end - time.monotonic()) > 0:
            time.sleep(min(0.1, left))

    retrying = Retrying(
        sleep=sleep or nap,
        retry=retry_if_exception(retry_on),
        wait=wait_exponential(multiplier=first, min=first, max=longest),
        stop=lambda _state: not running(),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                return fn()
    except BaseException as exc:
        if retry_on(exc) and not running():
            if on_retry is not None:
                on_retry(exc, 0.0)
            return None
        raise
    return None
