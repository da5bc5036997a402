"""Tasks (questions with gold answers) and the loaders that read them.

Every loader error names the file, the line and the field that was wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Task:
    id: str
    question: str
    answer: str  # the gold final answer, already extracted
    meta: dict = field(default_factory=dict, compare=False)
    source: str = field(default="", compare=False)  # "file:line", for error messages


class TaskFormatError(ValueError):
    """Bad dataset input; the message names file, line and field."""


@dataclass(frozen=True)
class FieldMap:
    """Which JSON fields hold the question, the gold answer and an optional id."""

    question: str = "question"
    answer: str = "answer"
    id: str | None = None
    gold_after: str | None = None  # e.g. "####": the gold answer is the text after this marker


GSM8K_FIELDS = FieldMap(question="question", answer="answer", gold_after="####")
MATH_FIELDS = FieldMap(question="problem", answer="answer", id="unique_id")

# Named datasets: where they live relative to a data root, and their fields.
NAMED_DATASETS = {
    "gsm8k": ("gsm8k/test.jsonl", GSM8K_FIELDS),
    "gsm8k-train": ("gsm8k/train.jsonl", GSM8K_FIELDS),
    "math500": ("math500/test.jsonl", MATH_FIELDS),
}


def read_jsonl(path: str | Path, fields: FieldMap = FieldMap(), name: str | None = None) -> list[Task]:
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"{path}: no such file")
    tasks = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            tasks.append(_parse_line(line, path, lineno, fields, name or path.stem))
    if not tasks:
        raise TaskFormatError(f"{path}: the file holds no questions")
    return tasks


def _parse_line(line: str, path: Path, lineno: int, fields: FieldMap, name: str) -> Task:
    where = f"{path}:{lineno}"
    try:
        row = json.loads(line.rstrip("\r\n"))  # the newline is not part of the row: columns count within it
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise TaskFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
    question = _text_field(row, fields.question, where)
    answer = _text_field(row, fields.answer, where)
    if fields.gold_after:
        if fields.gold_after not in answer:
            raise TaskFormatError(f"{where}: field {fields.answer!r} has no {fields.gold_after!r} marker")
        answer = answer.rsplit(fields.gold_after, 1)[1].strip()
    task_id = str(row[fields.id]) if fields.id and fields.id in row else f"{name}-{lineno}"
    meta = {k: v for k, v in row.items() if k not in (fields.question, fields.answer)}
    return Task(id=task_id, question=question, answer=answer, meta=meta, source=where)


def _text_field(row: dict, key: str, where: str) -> str:
    if key not in row:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {', '.join(sorted(row))})")
    value = row[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise TaskFormatError(f"{where}: field {key!r} must be a non-empty string")
    return value


def default_data_root() -> Path | None:
    """``../shared/data`` beside a source checkout, when present (tests and benchmarks)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def load_dataset(
    name: str,
    *,
    limit: int | None = None,
    data_root: str | Path | None = None,
    fields: FieldMap | None = None,
) -> list[Task]:
    """Load by name (``gsm8k``, ``math500``, ``sample``), a JSONL path, or ``hf:NAME``."""
    if limit is not None and limit < 1:
        raise TaskFormatError(f"limit must be >= 1, got {limit}")
    if name == "sample":
        tasks = load_sample()
    elif name in NAMED_DATASETS:
        rel, named_fields = NAMED_DATASETS[name]
        root = Path(data_root) if data_root else default_data_root()
        if root is None:
            raise TaskFormatError(
                f"dataset {name!r}: no data root found; pass --data-root DIR (holding {rel}) or a JSONL path"
            )
        tasks = read_jsonl(root / rel, fields or named_fields, name=name)
    elif name.startswith("hf:"):
        tasks = _load_hf(name[3:], fields or FieldMap())
    elif name.endswith(".jsonl") or Path(name).is_file():
        tasks = read_jsonl(name, fields or FieldMap())
    else:
        known = ", ".join(["sample", *NAMED_DATASETS])
        raise TaskFormatError(f"unknown dataset {name!r}: use one of {known}, a .jsonl path, or hf:NAME")
    return tasks[:limit] if limit else tasks


def load_sample() -> list[Task]:
    """The small GSM8K sample shipped in the package (MIT, see data/LICENSE-gsm8k)."""
    with resources.as_file(resources.files("testtime") / "data" / "gsm8k_sample.jsonl") as path:
        return read_jsonl(path, GSM8K_FIELDS, name="sample")


def _load_hf(spec: str, fields: FieldMap) -> list[Task]:
    """``hf:NAME[:CONFIG][@SPLIT]`` through the datasets library, where a hub is reachable."""
    try:
        import datasets
    except ImportError:
        raise TaskFormatError("hf: datasets need `pip install datasets` and a reachable hub") from None
    spec, _, split = spec.partition("@")
    name, _, config = spec.partition(":")
    rows = datasets.load_dataset(name, config or None, split=split or "test")
    tasks = []
    for i, row in enumerate(rows, start=1):
        tasks.append(_parse_line(json.dumps(row, default=str), Path(f"hf:{spec}"), i, fields, name))
    return tasks
