"""The larger local model, Gemma 3 270M, ships as four chunk packages that join into one
GGUF: joined once into the cache (its SHA-256 checked by the package), then reused."""

from __future__ import annotations

import gguf

from testtime.models import GEMMA3_270M, find_gguf


def test_gemma_chunks_join_into_one_checked_gguf_and_are_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTTIME_CACHE", str(tmp_path))
    path = find_gguf(GEMMA3_270M)
    assert path.parent == tmp_path / "gguf" and path.stat().st_size > 200_000_000
    assert [p.name for p in path.parent.iterdir()] == [GEMMA3_270M.gguf_file]  # no temporary left
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "gemma3"
    mtime = path.stat().st_mtime_ns
    assert find_gguf(GEMMA3_270M) == path and path.stat().st_mtime_ns == mtime  # reused, not joined again
