"""`homestream --help` is complete: every command documented, env variables listed."""

import pytest

from homestream.cli import build_parser


def test_top_level_help_lists_commands_and_variables(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for word in ["up", "down", "status", "users", "homes", "hubs", "topics"]:
        assert word in out
    for var in [
        "HOMESTREAM_MQTT_PORT",
        "HOMESTREAM_KAFKA_PORT",
        "HOMESTREAM_PG_PORT",
        "HOMESTREAM_REDIS_PORT",
        "HOMESTREAM_GATEWAY_PORT",
        "HOMESTREAM_STATE_DIR",
    ]:
        assert var in out


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "add", "--help"],
        ["homes", "add", "--help"],
        ["hubs", "add", "--help"],
        ["up", "--help"],
        ["down", "--help"],
        ["topics", "describe", "--help"],
    ],
)
def test_every_subcommand_has_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 0
    assert "usage: homestream" in capsys.readouterr().out


def test_contract_flags_parse():
    p = build_parser()
    a = p.parse_args(["users", "add", "--username", "U", "--password", "P"])
    assert (a.username, a.password) == ("U", "P")
    a = p.parse_args(["homes", "add", "--home", "H", "--owner", "U"])
    assert (a.home, a.owner) == ("H", "U")
    assert p.parse_args(["hubs", "add", "--home", "H"]).home == "H"


def _help(capsys, argv) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    return capsys.readouterr().out


def test_the_variables_are_listed_once_in_the_top_level_help_only(capsys):
    assert _help(capsys, ["--help"]).count("HOMESTREAM_STATE_DIR") == 1
    for argv in (["up", "--help"], ["streams", "worker", "--help"], ["bench", "streams", "--help"]):
        text = _help(capsys, argv)
        assert "HOMESTREAM_STATE_DIR" not in text
        assert "`homestream --help` lists them" in text


def test_descriptions_show_a_percent_sign_once(capsys):
    assert "90% unchanged" in _help(capsys, ["bench", "streams", "--help"])


def test_every_package_registers_its_commands(capsys):
    top = _help(capsys, ["--help"])
    for command in ("up", "streams", "bridge", "simulate", "sink", "gateway", "bench"):
        assert f"\n    {command} " in top, command


def test_every_command_has_help_with_an_example(capsys):
    from homestream.cli import EXAMPLES, leaf_commands

    leaves = dict(leaf_commands(build_parser()))
    assert sorted(leaves) == sorted(EXAMPLES), "EXAMPLES and the commands differ"
    for words, sub in leaves.items():
        text = _help(capsys, [*words.split(), "--help"])
        assert f"Example:\n  {EXAMPLES[words]}" in text, words
        assert EXAMPLES[words].startswith(f"homestream {words}"), words
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{words} {action.option_strings[0]} has no help text"
