"""The Banking77 data set (PolyAI, CC-BY-4.0): read from BANKING77_DIR, or downloaded once with a pinned checksum.

Casanueva et al., "Efficient Intent Detection with Dual Sentence Encoders", NLP4ConvAI 2020.
Training code reads only the "train" split; "test" is for evaluation and benchmarks.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SOURCE = "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/banking_data"
SHA256 = {
    "train.csv": "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
    "test.csv": "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
    "categories.json": "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63",
}
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bankbot" / "banking77"


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def data_dir() -> Path:
    """BANKING77_DIR when set; else a local cache, filled from the public source on first use."""
    configured = os.environ.get("BANKING77_DIR")
    if configured:
        path = Path(configured)
        if not (path / "train.csv").exists():
            raise FileNotFoundError(f"BANKING77_DIR={configured} holds no train.csv")
        return path
    for name, digest in SHA256.items():
        target = CACHE_DIR / name
        if not target.exists():
            _download(f"{SOURCE}/{name}", target, digest)
    return CACHE_DIR


def _download(url: str, target: Path, digest: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https source
        payload = response.read()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != digest:
        raise RuntimeError(f"checksum mismatch for {url}: expected {digest}, got {actual}")
    tmp = target.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(target)


def read_csv(path: str | Path) -> list[Example]:
    """Any labelled CSV in Banking77's `text,category` format."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [Example(row["text"].strip(), row["category"].strip()) for row in csv.DictReader(handle)]


def load_split(split: str) -> list[Example]:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return read_csv(data_dir() / f"{split}.csv")


@cache
def labels() -> tuple[str, ...]:
    """The 77 intent labels, in the data set's own order."""
    return tuple(json.loads((data_dir() / "categories.json").read_text()))
