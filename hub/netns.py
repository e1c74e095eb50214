"""A private network namespace for the mDNS tests and benches (Linux, root).

``private_lan(name)`` creates ``ip netns`` ``name`` with ``lo`` up and multicast on, and
moves the calling *thread* into it (setns(2) is per thread) for the ``with`` block: every
socket opened inside lives in that namespace and keeps doing so. Real multicast mDNS
then runs on a LAN of its own, unseen by the host's network and by parallel runs.
``NamespaceRefused`` says why when the kernel or the user may not do it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000


class NamespaceRefused(RuntimeError):
    """No network namespace here (not root, no ``ip``, or the kernel says no)."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise NamespaceRefused(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceRefused(f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def private_lan(name: str) -> Iterator[str]:
    if shutil.which("ip") is None:
        raise NamespaceRefused("the `ip` command (iproute2) is not installed")
    if os.geteuid() != 0:
        raise NamespaceRefused("network namespaces need root")
    _ip("netns", "add", name)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _ip("-n", name, "link", "set", "lo", "up", "multicast", "on")
        _ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo")
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield name
        finally:
            _setns(home)
    finally:
        os.close(home)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
