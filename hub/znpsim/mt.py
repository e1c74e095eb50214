"""MT transport framing: ``0xFE | len | cmd0 cmd1 | data | FCS`` (FCS = XOR of len..data)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import zigpy_znp.commands as c
import zigpy_znp.types as t
from zigpy_znp.frames import GeneralFrame

SOF = 0xFE
MAX_DATA = 250


def fcs(body: bytes) -> int:
    x = 0
    for b in body:
        x ^= b
    return x


def encode(command: Any) -> bytes:
    """A zigpy_znp command object (Rsp or Callback) as one MT transport frame."""
    frame = command.to_frame(align=True)
    body = bytes([len(frame.data)]) + frame.header.serialize() + bytes(frame.data)
    return bytes([SOF]) + body + bytes([fcs(body)])


class FrameReader:
    """Accumulates bytes from the host and yields complete frames; skips line noise."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_frames = 0

    def feed(self, data: bytes) -> Iterator[GeneralFrame]:
        self._buf += data
        while True:
            start = self._buf.find(SOF)
            if start < 0:
                self._buf.clear()
                return
            del self._buf[:start]
            if len(self._buf) < 5:
                return
            length = self._buf[1]
            if length > MAX_DATA:
                self.bad_frames += 1
                del self._buf[:1]
                continue
            if len(self._buf) < length + 5:
                return
            body = bytes(self._buf[1 : length + 4])
            check = self._buf[length + 4]
            if fcs(body) != check:
                self.bad_frames += 1
                del self._buf[:1]
                continue
            del self._buf[: length + 5]
            header, _ = t.CommandHeader.deserialize(body[1:3])
            yield GeneralFrame(header, body[3:])


def decode(frame: GeneralFrame) -> Any:
    """The request a frame carries; KeyError for a command id no table knows."""
    cls = c.COMMANDS_BY_ID[frame.header]
    return cls.from_frame(frame, align=True)
