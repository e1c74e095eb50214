"""Which ids can exist: one rule per kind of id, for paths, bodies, frames and topics.

Every rule answers ``None`` (fine) or a sentence saying what is wrong, so each caller
phrases its own error (a 404 for a path that cannot exist, a 422 for a body field, a dead
letter for a hub topic). Apply them before an id touches a store: NUL and unpaired
surrogates cannot even be encoded for PostgreSQL or Redis.
"""

from __future__ import annotations

import re
from typing import Final

from domain.strictjson import short, text_problem

# Home ids become MQTT topic levels: no '/', '+', '#' and nothing a shell would mangle.
HOME_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
HOME_ID_RULE: Final = "1-64 letters, digits, _ or -, starting with a letter or digit"
USERNAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}")
USERNAME_RULE: Final = "3-64 letters, digits, _ . @ or -, starting with a letter or digit"
# Groups, scenes and automations: ids the platform stores for users.
DOC_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
DOC_ID_RULE: Final = "1-128 letters, digits, _ . : @ or -, starting with a letter or digit"
# Device ids come from hubs (any text that can be one MQTT topic level); command ids from us.
MAX_DEVICE_ID: Final = 128
MAX_COMMAND_ID: Final = 128
_TOPIC_LEVEL_BAD: Final = re.compile(r"[+#/\x00-\x1f\x7f-\x9f]")


def home_id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "the home id is not text"
    # fullmatch: a pattern's "$" would let a final "\n" through.
    if not HOME_ID.fullmatch(value):
        return f"{short(value)} is not a home id ({HOME_ID_RULE})"
    return None


def username_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "the username is not text"
    if not USERNAME.fullmatch(value):
        return f"{short(value)} is not a username ({USERNAME_RULE})"
    return None


def doc_id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "the id is not text"
    if not DOC_ID.fullmatch(value):
        return f"{short(value)} is not an id ({DOC_ID_RULE})"
    return None


def device_id_problem(value: object) -> str | None:
    """A device id is a Kafka key part and an MQTT topic level."""
    if not isinstance(value, str):
        return "the device id is not text"
    if not value:
        return "the device id is empty"
    if len(value) > MAX_DEVICE_ID:
        return f"the device id is {len(value)} characters long; at most {MAX_DEVICE_ID}"
    bad = _TOPIC_LEVEL_BAD.search(value)
    if bad and bad.group() in "+#/":
        return f"the device id {short(value)} contains +, # or /"
    if bad:
        return f"the device id {short(value)} contains a control character"
    if text_problem(value):
        return f"the device id {short(value)} is not valid Unicode"
    return None


def command_id_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "the command id is not text"
    if not value or len(value) > MAX_COMMAND_ID:
        return f"a command id is 1-{MAX_COMMAND_ID} characters"
    if _TOPIC_LEVEL_BAD.search(value) or text_problem(value):
        return f"the command id {short(value)} contains a character no id has"
    return None
