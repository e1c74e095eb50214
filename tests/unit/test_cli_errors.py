"""Every CLI error the user can fix is one line on stderr, exit 2, saying what to do; never
a traceback. These need no stack: bad input is refused before anything is reached (the
stack-dependent ones, unknown topics and groups, are in tests/integration/test_ops.py)."""

from __future__ import annotations

import io
import sys

import pytest

from homestream.cli import main


def run(argv, capsys, monkeypatch, stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusals
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["replay", "--group", "g", "--topic", "t", "--since", "yesterday"], "30m, 2h, 7d"),
        (["dlq", "list", "--since", "banana"], "30m, 2h, 7d"),
        (["dlq", "redrive", "--since", "banana"], "30m, 2h, 7d"),
        (["dlq", "list", "--limit", "-1"], "give 1 or more"),
        (["dlq", "list", "--limit", "ten"], "not a whole number"),
        (["dlq", "list", "--reason", "BOGUS"], "UNKNOWN_DEVICE, UNKNOWN_CAPABILITY"),
        (["users", "add", "--username", "demo"], "give --password P"),
        (["users", "add", "--username", "x"], "3-64 characters"),
        (["users", "add"], "required: --username"),
        (["homes", "add", "--home", "h"], "--owner"),
        (["replay", "--group", "g"], "--topic"),
        (["nosuchcommand"], "invalid choice"),
        (["bench", "streams", "--rate", "-5"], "give 1 or more"),
        (["bench", "automations", "--motion-share", "2"], "give 0 to 1"),
        (["bench", "notifications", "--rate", "0"], "above 0"),
        (["gateway", "--port", "99999"], "give 1 to 65535"),
        (["gateway"], "homestream up"),  # no stack: not a failed start-up with a traceback
        (["homes", "list"], "homestream up"),
        (["hubs", "revoke", "--username", "hub-x-abcdef"], "homestream up"),
        (["simulate", "--homes", "-1"], "between 1 and 10000"),
        (["report", "--device", "x", "--state", "{bad"], "take JSON"),
        (["report", "--device", "x", "--state", "[1]"], "JSON object"),
        (["demo-login"], "homestream up"),
        (["logbook", "--home", "h", "--since", "banana"], "30m, 2h, 7d"),
        (["logbook", "--home", "h", "--kind", "bogus"], "use state, event"),
        (["logbook", "--home", "h", "--limit", "0"], "give 1 or more"),
        (["logbook", "--home", "h"], "homestream up"),
        (["dlq", "list", "--bogus-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, says, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOMESTREAM_STATE_DIR", str(tmp_path))
    code, err = run(argv, capsys, monkeypatch)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert says in err
    assert err.startswith("homestream")


def test_a_piped_password_is_read_from_standard_input(capsys, monkeypatch, tmp_path):
    """Without a terminal the password comes from stdin; then the missing stack is the one
    line (no EOFError)."""
    monkeypatch.setenv("HOMESTREAM_STATE_DIR", str(tmp_path))
    code, err = run(
        ["users", "add", "--username", "demo"], capsys, monkeypatch, stdin="long-enough-pw\n"
    )
    assert code == 2
    assert "homestream up" in err and err.count("\n") == 1
