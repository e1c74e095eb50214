"""The process's open-file limit: a gateway or a bench client holding thousands of
sockets needs more than the usual soft limit of 1,024."""

from __future__ import annotations

import resource


def raise_open_files(want: int | None = None) -> int:
    """Raise the soft RLIMIT_NOFILE to ``want`` (default: the hard limit, which an
    unprivileged process may not pass); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else want
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
