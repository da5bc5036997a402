import json
from pathlib import Path

import pytest

from testtime.tasks import FieldMap, TaskFormatError, load_dataset, load_sample, read_jsonl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_gsm8k_from_shared_data():
    tasks = load_dataset("gsm8k", data_root=SHARED, limit=3)
    assert len(tasks) == 3
    assert tasks[0].answer == "18"  # Janet's ducks
    assert tasks[0].source.endswith("test.jsonl:1")


def test_math500_fields():
    tasks = load_dataset("math500", data_root=SHARED)
    assert len(tasks) == 399
    assert tasks[0].id.startswith("test/")
    assert {"level", "subject"} <= set(tasks[0].meta)


def test_shipped_sample_is_in_the_package():
    tasks = load_sample()
    assert len(tasks) == 30 and all(t.answer for t in tasks)


def test_custom_jsonl_with_field_mapping(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"q": "1+1?", "gold": 2, "key": "a"}) + "\n\n" + json.dumps({"q": "2+2?", "gold": "4", "key": "b"}) + "\n")
    tasks = read_jsonl(path, FieldMap(question="q", answer="gold", id="key"))
    assert [(t.id, t.answer) for t in tasks] == [("a", "2"), ("b", "4")]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"question": "a", "answer": "1"}\n{"question": "b", "answer"\n', r"mine\.jsonl:2: malformed JSON"),
        ('{"question": "a"}\n', r"mine\.jsonl:1: missing field 'answer'"),
        ('{"question": "", "answer": "1"}\n', r"mine\.jsonl:1: field 'question' must be a non-empty string"),
        ('[1, 2]\n', r"mine\.jsonl:1: expected a JSON object"),
        ("\n\n", r"holds no questions"),
    ],
)
def test_bad_jsonl_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "mine.jsonl"
    path.write_text(content)
    with pytest.raises(TaskFormatError, match=message):
        read_jsonl(path)


def test_gsm8k_answer_without_marker(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"question": "a", "answer": "no marker"}\n')
    with pytest.raises(TaskFormatError, match=r"g\.jsonl:1: field 'answer' has no '####' marker"):
        read_jsonl(path, FieldMap(gold_after="####"))


def test_unknown_dataset_and_bad_limit():
    with pytest.raises(TaskFormatError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    with pytest.raises(TaskFormatError, match="limit must be >= 1"):
        load_dataset("sample", limit=0)
    with pytest.raises(TaskFormatError, match="no such file"):
        load_dataset("missing.jsonl")


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_malformed_json_names_the_column_within_the_line(tmp_path, ending):
    bad = tmp_path / "cut.jsonl"
    bad.write_text('{"question": "a", "answer": "1"}\n' + '{"question": "a", "answer": ' + ending)
    with pytest.raises(TaskFormatError, match=r"cut\.jsonl:2: malformed JSON \(Expecting value at column 29\)"):
        read_jsonl(bad)
