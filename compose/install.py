"""Install what the local stack needs: Debian packages and the Kafka jars from Maven Central."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compose.errors import LauncherError
from runtime.config import KAFKA_VERSION

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"


@dataclass(frozen=True)
class Requirement:
    """A program the stack runs and the Debian package that provides it."""

    what: str
    present: Callable[[], bool]
    package: str


def _which(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


REQUIREMENTS = (
    Requirement("PostgreSQL 15 server", lambda: (PG_BIN / "postgres").exists(), "postgresql-15"),
    Requirement("Redis server", _which("redis-server"), "redis-server"),
    Requirement("Mosquitto MQTT broker", _which("mosquitto"), "mosquitto"),
    Requirement("Java 17 runtime", _which("java"), "openjdk-17-jre-headless"),
    Requirement("Maven", _which("mvn"), "maven"),
    # `up --monitoring`, and `promtool test rules` on compose/prometheus/alerts.yml
    Requirement("Prometheus", _which("promtool"), "prometheus"),
)


def missing_packages() -> list[Requirement]:
    return [r for r in REQUIREMENTS if not r.present()]


def privileged(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-n", *argv]
    raise LauncherError(
        f"installing packages needs root: run `sudo {' '.join(argv)}` yourself, "
        "then `homestream up`"
    )


def install_debian_packages(reqs: list[Requirement], say: Callable[[str], None]) -> None:
    """apt-get install the missing packages without starting their system-wide services.

    Debian starts a package's daemon on install; those would take the very ports the
    stack wants. A temporary policy-rc.d forbids that, and PostgreSQL is told not to
    create its default cluster (we run our own in the state directory).
    """
    if not shutil.which("apt-get"):
        names = ", ".join(f"{r.what} ({r.package})" for r in reqs)
        raise LauncherError(f"missing {names} and this is not a Debian-like system: install them")
    pkgs = [r.package for r in reqs]
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = False
    createcluster = Path("/etc/postgresql-common/createcluster.conf")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if os.geteuid() == 0 and not policy.exists():
            policy.write_text("#!/bin/sh\n# homestream: no daemons during install\nexit 101\n")
            policy.chmod(0o755)
            created_policy = True
        if os.geteuid() == 0 and "postgresql-15" in pkgs and not createcluster.exists():
            createcluster.parent.mkdir(parents=True, exist_ok=True)
            createcluster.write_text("create_main_cluster = false\n")
        say("apt-get update (package lists)")
        _run(privileged(["apt-get", "update", "-q"]), env, "apt-get update")
        say(f"apt-get install {' '.join(pkgs)}")
        _run(
            privileged(
                [
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "-o",
                    "Dpkg::Options::=--force-confold",
                    *pkgs,
                ]
            ),
            env,
            "apt-get install",
        )
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)
    still = missing_packages()
    if still:
        raise LauncherError(f"after apt-get install, still missing: {[r.what for r in still]}")


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-12:])
        raise LauncherError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def ensure_kafka_jars(libs: Path, say: Callable[[str], None]) -> Path:
    """Resolve the pom's Kafka jars and their dependencies into ``libs`` (once per pom)."""
    marker = libs / ".complete"
    # The pom's digest too: a cache resolved from an older pom is resolved again.
    stamp = f"{KAFKA_VERSION} {hashlib.sha256(POM.read_bytes()).hexdigest()[:16]}\n"
    if marker.exists() and marker.read_text() == stamp:
        return libs
    if not shutil.which("mvn"):
        raise LauncherError("Maven (mvn) is missing: apt-get install maven, then homestream up")
    say(f"downloading Apache Kafka {KAFKA_VERSION} jars from Maven Central (~50 MB, once)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    proc = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            f"-Dkafka.version={KAFKA_VERSION}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-12:])
        raise LauncherError(
            f"mvn could not fetch the Kafka jars (exit {proc.returncode}); check access to "
            f"Maven Central and ~/.m2/settings.xml:\n{tail}"
        )
    if libs.exists():
        shutil.rmtree(libs)
    staging.rename(libs)
    marker.write_text(stamp)
    return libs
