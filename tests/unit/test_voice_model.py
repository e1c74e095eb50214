"""The default speech-to-text model is the one docs/voice.md says was checked against
Whisper tiny.en: same files (SHA-256), an English-only Whisper with 80 mel bins, four
encoder and four decoder layers, tiny.en's alignment heads and vocabulary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from speech import model_check
from speech.stt import default_model

ctranslate2 = pytest.importorskip("ctranslate2")


def test_the_bundled_model_is_the_checked_tiny_en():
    path = default_model()
    assert model_check.check(path) == []
    model = ctranslate2.models.Whisper(path, device="cpu", compute_type="int8")
    assert not model.is_multilingual and model.n_mels == 80
    with open(Path(path) / "model.bin", "rb") as f:
        names = set(re.findall(rb"(encoder|decoder)/layer_(\d+)/", f.read()))
    assert {n for n in names if n[0] == b"encoder"} == {
        (b"encoder", str(i).encode()) for i in range(4)
    }
    assert {n for n in names if n[0] == b"decoder"} == {
        (b"decoder", str(i).encode()) for i in range(4)
    }


def test_the_docs_record_the_same_digests():
    doc = (Path(__file__).parents[2] / "docs" / "voice.md").read_text(encoding="utf-8")
    for name, digest in model_check.SHA256.items():
        assert re.search(rf"{re.escape(name)}.*{digest}", doc), name


def test_a_changed_file_is_reported(tmp_path):
    src = Path(default_model())
    for name in model_check.SHA256:
        (tmp_path / name).write_bytes((src / name).read_bytes() if name != "model.bin" else b"x")
    problems = model_check.check(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("model.bin: SHA-256")
