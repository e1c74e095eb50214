"""What every package's command-line registration shares.

Each package declares its own subcommands in its ``cli.py`` (``register(commands)``);
``homestream/cli.py`` builds the parser from them and is the only place that wires one
package into another. The environment variables are listed once, in ``homestream --help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from runtime.config import Settings

Command = Callable[[argparse.Namespace, Settings], int]
LOG_LEVELS = ("debug", "info", "warning", "error")
SUB_EPILOG = (
    "Settings come from HOMESTREAM_* variables: `homestream --help` lists them, "
    "`homestream config` shows their values."
)


class CliError(Exception):
    """A failure the user can fix; printed as one line without a traceback, exit 2."""


def out(text: str) -> None:
    print(text, flush=True)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (what is wrong, where to look), exit 2,
    instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give 1 or more")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not allowed: give a number above 0")
    return value


def share(text: str) -> float:
    """An argparse type: a fraction from 0 to 1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not allowed: give 0 to 1, e.g. 0.2")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: give 1 to 65535")
    return value


class Commands:
    """A level of subcommands: ``add`` a command, or a ``group`` of them."""

    def __init__(self, sub: Any) -> None:
        self._sub = sub

    def add(self, name: str, func: Command | None, help_: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._sub.add_parser(
            name,
            help=help_,
            description=help_.replace("%%", "%"),  # help is %-formatted, the description not
            epilog=SUB_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(func=func)
        return parser

    def group(self, name: str, help_: str) -> Commands:
        parser = self.add(name, None, help_)
        return Commands(parser.add_subparsers(dest="sub", required=True, metavar="COMMAND"))


def add_loglevel(parser: argparse.ArgumentParser, default: str = "info") -> None:
    parser.add_argument(
        "--loglevel", default=default, choices=LOG_LEVELS, help=f"log level [{default}]"
    )


def require_kafka(settings: Settings) -> None:
    """CliError unless a Kafka broker answers at the configured bootstrap address."""
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient(
            {"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0}
        ).list_topics(timeout=5)
        if md.brokers:
            return
    except Exception:  # KafkaException: no broker answered
        pass
    raise CliError(
        f"Kafka at {settings.kafka_bootstrap} is not reachable: start the stack with "
        "`homestream up`, or set HOMESTREAM_KAFKA_BOOTSTRAP / HOMESTREAM_KAFKA_PORT"
    )


def command_line(*words: str, **options: object) -> list[str]:
    """``python -m homestream.cli WORDS --option value ...``: how the launcher and the tests
    start a service process. None and False options are left out; True is a bare flag."""
    import sys

    argv = [sys.executable, "-m", "homestream.cli", *words]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv
