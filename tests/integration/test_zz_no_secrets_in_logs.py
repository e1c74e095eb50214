"""Last of the suite (by name): every log the suite's stack and its processes wrote holds
none of the passwords, keys and tokens the suite used."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runtime.config import REPO_ROOT

pytestmark = pytest.mark.integration

# Access tokens (JWTs) and private keys, whoever issued them.
TOKEN = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Passwords the tests give the CLI and the API.
LITERAL = re.compile(
    r"""(?:"--password",\s*|PASSWORD\s*=\s*|"password":\s*)"([^"{}]{8,})\"""", re.MULTILINE
)


def _test_passwords() -> set[str]:
    found: set[str] = set()
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        found |= set(LITERAL.findall(path.read_text(errors="replace")))
    return found


def _logs(*roots: Path) -> list[Path]:
    out = []
    for root in roots:
        if root.exists():
            out += [p for p in root.rglob("*") if p.is_file() and ".log" in p.name]
    return out


def test_no_log_holds_a_password_key_or_token(settings, tmp_path_factory):
    secrets = json.loads(settings.secrets_file.read_text())
    words = {str(v) for v in secrets.values() if isinstance(v, str) and len(v) >= 8}
    words |= _test_passwords()
    assert len(words) > 10 and "correct-horse-1" in words
    logs = _logs(settings.state_dir, tmp_path_factory.getbasetemp())
    assert any(p.name == "kafka.log" for p in logs) and any(p.name == "postgres.log" for p in logs)
    leaks = []
    for path in logs:
        data = path.read_bytes()
        leaks += [(str(path), w) for w in words if w.encode() in data]
        leaks += [(str(path), m.group()[:24].decode()) for m in TOKEN.finditer(data)]
        leaks += [(str(path), "a private key") for _ in PRIVATE_KEY.finditer(data)]
    print(f"{len(logs)} logs, {sum(p.stat().st_size for p in logs)} bytes, {len(words)} secrets")
    assert leaks == []
