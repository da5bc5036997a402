"""The trained verifier artifact: one folder, versioned.

    artifact.json     format, version, feature model and layer, how the labels were
                      made, sizes, timings, held-out metrics, the held-out question ids
    heads.npz         the PRM and ORM value heads (standardisation and weights)
    labels.jsonl.gz   the labelled questions the heads were trained on

The folder is written beside its target and renamed into place, so a reader sees
the old artifact or the new one, never half of one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from testtime.heads.features import FeatureSpec
from testtime.heads.head import ValueHead

FORMAT = "testtime-value-head"
VERSION = 1
HEADS = ("prm", "orm")


class ArtifactError(ValueError):
    """A folder that is not a usable verifier artifact; the message says what is wrong."""


@dataclass
class HeadArtifact:
    feature: FeatureSpec
    heads: dict[str, ValueHead]
    meta: dict = field(default_factory=dict)  # labels, sizes, timings, metrics, held-out ids
    records: Sequence[dict] = ()

    def save(self, folder: str | Path) -> Path:
        target = Path(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; an artifact is shared like any folder
        try:
            arrays = {f"{name}_{part}": np.asarray(getattr(head, part), dtype=np.float64)
                      for name, head in self.heads.items() for part in ("mean", "scale", "weights", "bias")}
            np.savez(tmp / "heads.npz", **arrays)
            with gzip.open(tmp / "labels.jsonl.gz", "wt", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)
            doc = {"format": FORMAT, "version": VERSION, "feature": asdict(self.feature),
                   "heads": sorted(self.heads), **self.meta}
            (tmp / "artifact.json").write_text(json.dumps(doc, indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    @classmethod
    def load(cls, folder: str | Path, *, with_records: bool = False) -> HeadArtifact:
        folder = Path(folder)
        doc_path = folder / "artifact.json"
        if not doc_path.is_file():
            raise ArtifactError(f"{folder} is not a verifier artifact: no artifact.json")
        try:
            doc = json.loads(doc_path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{doc_path}: not JSON ({exc})") from None
        if doc.get("format") != FORMAT:
            raise ArtifactError(f"{doc_path}: format {doc.get('format')!r}, expected {FORMAT!r}")
        if doc.get("version") != VERSION:
            raise ArtifactError(f"{doc_path}: version {doc.get('version')}, this testtime reads {VERSION}")
        try:
            with np.load(folder / "heads.npz") as arrays:
                heads = {name: ValueHead(mean=arrays[f"{name}_mean"], scale=arrays[f"{name}_scale"],
                                         weights=arrays[f"{name}_weights"], bias=float(arrays[f"{name}_bias"]))
                         for name in doc["heads"]}
        except (OSError, KeyError, ValueError) as exc:
            raise ArtifactError(f"{folder / 'heads.npz'}: unreadable head weights ({exc})") from None
        records: list[dict] = []
        if with_records:
            with gzip.open(folder / "labels.jsonl.gz", "rt", encoding="utf-8") as f:
                records = [json.loads(line) for line in f]
        meta = {k: v for k, v in doc.items() if k not in ("format", "version", "feature", "heads")}
        return cls(feature=FeatureSpec(**doc["feature"]), heads=heads, meta=meta, records=records)


def artifact_digest(folder: str | Path) -> str:
    """SHA-256 of what decides an artifact's scores: its head weights and its feature model and layer."""
    folder = Path(folder)
    feature = json.loads((folder / "artifact.json").read_text())["feature"]
    digest = hashlib.sha256(json.dumps(feature, sort_keys=True).encode())
    digest.update((folder / "heads.npz").read_bytes())
    return digest.hexdigest()


def shipped_artifact(policy: str) -> Path | None:
    """The PRM/ORM shipped in the package for an embedded policy model (trained on its own GSM8K-train
    samples), or None where none ships."""
    folder = Path(str(resources.files("testtime") / "data" / "verifiers" / f"{policy}-gsm8k"))
    return folder if (folder / "artifact.json").exists() else None


def default_artifact_path() -> Path:
    """The artifact shipped for the default model: what `prm` and `orm` load when given none."""
    from testtime.models import DEFAULT_MODEL

    folder = shipped_artifact(DEFAULT_MODEL)
    if folder is None:
        raise ArtifactError(f"no PRM/ORM artifact ships for {DEFAULT_MODEL}; name one with --verifier-model")
    return folder


def resolve_artifact(folder: str | Path | None) -> Path:
    return Path(folder) if folder else default_artifact_path()
