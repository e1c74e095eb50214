"""TimescaleDB for the history tables: built from its pinned source release, once.

No package registry the stack can reach carries the extension for Debian 12's
PostgreSQL 15, so the launcher builds it the way it resolves Kafka's jars: the source
tarball (``HOMESTREAM_TIMESCALEDB_SOURCE``, a URL or a file path) is checked against the
pinned SHA-256, built with Debian's build dependencies, installed into a staging tree in
the cache directory (so a second ``up`` does not rebuild), and copied into PostgreSQL's
library and extension directories. PostgreSQL preloads it (compose.services.postgres).

A build that fails is not fatal: history then runs on native partitioning, and the
launcher says why and what to do. ``HOMESTREAM_TIMESCALEDB=off`` chooses that on purpose.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compose.errors import LauncherError
from compose.install import PG_BIN, privileged
from runtime.config import TIMESCALEDB_SHA256, TIMESCALEDB_VERSION, Settings

PG_CONFIG = PG_BIN / "pg_config"
PG_LIB = PG_BIN.parent / "lib"
PG_SHARE = Path("/usr/share/postgresql/15")
LOADER = PG_LIB / "timescaledb.so"
CONTROL = PG_SHARE / "extension" / "timescaledb.control"
# What the build needs from Debian (vendor/README.md of the release's build steps).
BUILD_PACKAGES = ("postgresql-server-dev-15", "cmake", "gcc", "make", "libssl-dev", "libkrb5-dev")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    """What the launcher did about TimescaleDB: the engine history will run on, and why."""

    engine: str  # 'timescaledb' or 'native'
    why: str


def installed() -> bool:
    """The pinned release is in PostgreSQL's directories (loader, control, versioned lib)."""
    if not (LOADER.exists() and CONTROL.exists()):
        return False
    versioned = PG_LIB / f"timescaledb-{TIMESCALEDB_VERSION}.so"
    return versioned.exists() and f"'{TIMESCALEDB_VERSION}'" in CONTROL.read_text()


def build_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"timescaledb-{TIMESCALEDB_VERSION}-pg15"


def ensure_timescaledb(settings: Settings, say: Say, *, install: bool = True) -> Outcome:
    """Make TimescaleDB available to the stack's PostgreSQL, or say why history runs on
    native partitioning. Never raises for a failed build: that is a warning."""
    if not settings.timescaledb:
        return Outcome("native", "HOMESTREAM_TIMESCALEDB=off")
    if installed():
        return Outcome("timescaledb", f"TimescaleDB {TIMESCALEDB_VERSION} installed")
    cache = build_dir(settings)
    try:
        if not (cache / ".complete").exists():
            if not install:
                return Outcome("native", "TimescaleDB is not installed (--no-install)")
            build(settings, cache, say)
        copy_into_postgres(cache / "stage", say)
    except LauncherError as exc:
        say(
            f"WARNING TimescaleDB {TIMESCALEDB_VERSION} could not be installed, history runs "
            f"on native PostgreSQL partitioning instead: {exc}\n"
            "      Fix the cause and run `homestream up` again on a new state directory (or "
            "`homestream down --purge` first) to get TimescaleDB; set "
            "HOMESTREAM_TIMESCALEDB=off to choose the native path and silence this."
        )
        return Outcome("native", f"TimescaleDB build failed: {str(exc).splitlines()[0]}")
    return Outcome("timescaledb", f"TimescaleDB {TIMESCALEDB_VERSION} installed")


# -- source ------------------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_source(source: str, into: Path, say: Say) -> Path:
    """The source tarball at ``source`` (URL or file path) in ``into``, its SHA-256 checked."""
    parsed = urllib.parse.urlparse(source)
    target = into / f"timescaledb-{TIMESCALEDB_VERSION}.tar.gz"
    if parsed.scheme in ("http", "https"):
        say(f"downloading TimescaleDB {TIMESCALEDB_VERSION} source from {source}")
        try:
            with urllib.request.urlopen(source, timeout=60) as resp, target.open("wb") as out:
                total = int(resp.headers.get("Content-Length") or 0)
                got, shown = 0, 0.0
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    got += len(chunk)
                    if time.monotonic() - shown > 5:
                        shown = time.monotonic()
                        of = f" of {total / 1e6:.1f}" if total else ""
                        say(f"  {got / 1e6:.1f}{of} MB")
        except OSError as exc:
            raise LauncherError(
                f"cannot download {source} ({exc}); point HOMESTREAM_TIMESCALEDB_SOURCE at a "
                f"copy of timescaledb-{TIMESCALEDB_VERSION}.tar.gz (a file path works)"
            ) from None
    else:
        path = Path(parsed.path if parsed.scheme == "file" else source).expanduser()
        if not path.is_file():
            raise LauncherError(
                f"HOMESTREAM_TIMESCALEDB_SOURCE={source}: no such file (resolved to "
                f"{path.resolve()})"
            )
        shutil.copyfile(path, target)
    found = sha256_of(target)
    if found != TIMESCALEDB_SHA256:
        target.unlink()
        raise LauncherError(
            f"{source} has SHA-256 {found}, the pinned release {TIMESCALEDB_VERSION} has "
            f"{TIMESCALEDB_SHA256}: refusing to build it. Point HOMESTREAM_TIMESCALEDB_SOURCE "
            "at the genuine release tarball."
        )
    return target


# -- build -------------------------------------------------------------------------------
def missing_build_packages() -> list[str]:
    """Build dependencies dpkg does not have installed (all of them if dpkg is absent)."""
    if not shutil.which("dpkg-query"):
        return list(BUILD_PACKAGES)
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *BUILD_PACKAGES],
        capture_output=True,
        text=True,
    )
    ok = {
        line.split()[0]
        for line in proc.stdout.splitlines()
        if line.endswith("install ok installed")
    }
    return [p for p in BUILD_PACKAGES if p not in ok]


def install_build_packages(say: Say) -> None:
    pkgs = missing_build_packages()
    if not pkgs:
        return
    if not shutil.which("apt-get"):
        raise LauncherError(
            f"building TimescaleDB needs {', '.join(pkgs)} and this is not a Debian-like "
            "system: install them"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"apt-get install {' '.join(pkgs)} (TimescaleDB's build dependencies)")
    argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs]
    proc = subprocess.run(privileged(argv), env=env, capture_output=True, text=True)
    if proc.returncode != 0:  # stale package lists: update once and try again
        subprocess.run(privileged(["apt-get", "update", "-q"]), env=env, capture_output=True)
        proc = subprocess.run(privileged(argv), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-8:])
        raise LauncherError(f"apt-get install {' '.join(pkgs)} failed:\n{tail}")


_PERCENT = re.compile(r"^\[\s*(\d+)%\]")


def _run_logged(argv: list[str], cwd: Path, log: Path, say: Say, what: str) -> None:
    """Run a build step, its output to ``log``; say make's percentage every few seconds."""
    shown = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            m = _PERCENT.match(line)
            if m and time.monotonic() - shown > 10:
                shown = time.monotonic()
                say(f"  {what}: {m.group(1)}%")
        code = proc.wait()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:])
        raise LauncherError(f"{what} failed (exit {code}); the whole log is {log}:\n{tail}")


def build(settings: Settings, cache: Path, say: Say) -> None:
    """Fetch, check, build and stage-install the pinned release into ``cache``/stage."""
    t0 = time.monotonic()
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="timescaledb-build-", dir=cache.parent))
    try:
        say(f"TimescaleDB {TIMESCALEDB_VERSION}: building from source (once, ~2 min on 2 cores)")
        tarball = fetch_source(settings.timescaledb_source, work, say)
        install_build_packages(say)
        with tarfile.open(tarball) as tar:
            tar.extractall(work, filter="data")
        src = work / f"timescaledb-{TIMESCALEDB_VERSION}"
        if not (src / "bootstrap").exists():
            raise LauncherError(f"{tarball} does not hold timescaledb-{TIMESCALEDB_VERSION}/")
        log = work / "build.log"
        say("  configuring (cmake)")
        _run_logged(
            [
                "./bootstrap",
                "-DREGRESS_CHECKS=OFF",
                "-DTAP_CHECKS=OFF",
                "-DWARNINGS_AS_ERRORS=OFF",
                "-DCMAKE_BUILD_TYPE=Release",
                f"-DPG_CONFIG={PG_CONFIG}",
            ],
            src,
            log,
            say,
            "cmake",
        )
        jobs = str(max(1, os.cpu_count() or 1))
        _run_logged(["make", "-C", "build", f"-j{jobs}"], src, log, say, "compiling")
        stage = work / "stage"
        _run_logged(
            ["make", "-C", "build", "install", f"DESTDIR={stage}"], src, log, say, "staging"
        )
        if cache.exists():
            shutil.rmtree(cache)
        cache.mkdir(parents=True)
        stage.rename(cache / "stage")
        shutil.copyfile(log, cache / "build.log")
        (cache / ".complete").write_text(f"{TIMESCALEDB_VERSION} {TIMESCALEDB_SHA256}\n")
        say(f"  built in {time.monotonic() - t0:.0f} s (cached in {cache})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def copy_into_postgres(stage: Path, say: Say) -> None:
    """Copy the staged files to where PostgreSQL looks (its lib and extension dirs)."""
    files = [p for p in stage.rglob("*") if p.is_file()]
    if not any(p.name == "timescaledb.so" for p in files):
        raise LauncherError(f"{stage} holds no timescaledb.so: remove {stage.parent}, try again")
    say(f"installing TimescaleDB {TIMESCALEDB_VERSION} into PostgreSQL 15 ({len(files)} files)")
    if os.geteuid() == 0:
        for p in files:
            target = Path("/") / p.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
        return
    proc = subprocess.run(
        privileged(["cp", "-r", "--preserve=mode", f"{stage}/.", "/"]),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise LauncherError(f"copying {stage} into / failed: {proc.stderr.strip()}")
