"""The text fields of a device descriptor (CONTRACT.md section 3): discovery messages,
DeviceDiscovered / DeviceRegistered records and every view of a device carry them."""

from __future__ import annotations

from typing import Final

# Optional free text, up to the hub (null when unknown).
OPTIONAL_TEXT_FIELDS: Final = ("room", "protocol", "manufacturer", "model", "endpoint")
# Every text field; ``capabilities`` (a list) and ``extra`` (JSON) come with them.
TEXT_FIELDS: Final = ("name", "type", *OPTIONAL_TEXT_FIELDS)
