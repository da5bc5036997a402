"""Generators (backends): in-process vLLM and any OpenAI-compatible server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from testtime.generators.base import (
    DEFAULT_MAX_TOKENS,
    Completion,
    EngineDied,
    GenerationRequest,
    GenerationResult,
    Generator,
    Prompt,
    PromptTooLongError,
    SamplingParams,
)
from testtime.retry import RetryPolicy

BACKENDS = ("vllm", "openai")
# "float32" is the reproducible setting: on the CPU engine a seeded sample is then the same whatever it is
# batched with, so resumed, retried, chunked and Ray-sharded runs equal an uninterrupted one bit for bit.
# "auto" is bfloat16 where the hardware computes it natively (faster, but batch shape and prefix-cache hits
# change the last bits of the logits, so results are equal only in distribution), else float32.
DTYPES = ("auto", "float32", "bfloat16", "float16")
REPRODUCIBLE_DTYPE = "float32"


@dataclass(frozen=True)
class GeneratorSpec:
    """How to open a generator: plain data, so a run can record it and a Ray worker can open its own."""

    backend: str
    model: str
    base_url: str | None = None
    api_key: str = field(default="EMPTY", repr=False)
    seed: int = 0
    max_model_len: int = 2048
    block_size: int | None = None
    dtype: str = "auto"
    parameter_count: int = 0
    retry: RetryPolicy = RetryPolicy()

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known backends: {', '.join(BACKENDS)}")
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs --base-url (for example http://127.0.0.1:8000/v1)")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)} "
                             f"({REPRODUCIBLE_DTYPE} gives bit-identical results on the CPU engine)")
        if self.backend == "openai" and self.dtype != "auto":
            raise ValueError(f"dtype {self.dtype!r} applies to the in-process engine (--backend vllm); "
                             "a served model's dtype is the server's own setting")

    def identity(self) -> dict:
        """What identifies the model a run used (no secrets, no retry settings)."""
        identity = {"backend": self.backend, "model": self.model, "base_url": self.base_url,
                    "max_model_len": self.max_model_len}
        if self.backend == "vllm":  # the dtype a resume must match: "auto" resolved on this machine
            from testtime.generators.vllm_engine import resolve_dtype

            identity["dtype"] = resolve_dtype(self.dtype)
        return identity

    def prompt_counter(self):
        """Counts a prompt's tokens with the model's tokenizer alone, before any engine starts
        (``runner.check_prompts_fit``); None where only the server knows (``openai``)."""
        if self.backend != "vllm":
            return None
        from testtime.generators.vllm_engine import ChatRenderer
        from testtime.models import resolve_model

        return ChatRenderer.for_model(resolve_model(self.model), self.max_model_len)

    def open(self) -> Generator:
        from testtime.models import EMBEDDED_MODELS, resolve_model

        if self.backend == "vllm":
            from testtime.generators.vllm_engine import VLLMGenerator

            options = {"block_size": self.block_size} if self.block_size else {}
            return VLLMGenerator(resolve_model(self.model), seed=self.seed, max_model_len=self.max_model_len,
                                 dtype=self.dtype, parameter_count=self.parameter_count or None, **options)
        from testtime.generators.openai_http import OpenAIGenerator

        parameter_count = self.parameter_count
        if not parameter_count and self.model in EMBEDDED_MODELS:
            from testtime.generators.vllm_engine import count_parameters

            parameter_count = count_parameters(resolve_model(self.model))
        return OpenAIGenerator(self.base_url, self.model, api_key=self.api_key, parameter_count=parameter_count,
                               retry=self.retry)


class SecondModel:
    """A model a component names beside the policy (a judge, a reviser): an embedded model's name or a
    model folder. The name is checked at once; the model opens as its own in-process engine when first
    used, so that every setting is checked before any model loads, and one engine per model is shared
    by every component of the process that names it (a sweep builds a strategy per unit)."""

    _open: dict[GeneratorSpec, Generator] = {}

    def __init__(self, name: str):
        from testtime.models import EMBEDDED_MODELS

        if name not in EMBEDDED_MODELS and not Path(name).expanduser().is_dir():
            raise ValueError(f"{name!r} is neither an embedded model ({', '.join(EMBEDDED_MODELS)}) "
                             "nor a model folder")
        self.name = name
        self.spec = GeneratorSpec("vllm", name)

    @property
    def opened(self) -> bool:
        return self.spec in self._open

    @property
    def generator(self) -> Generator:
        if self.spec not in self._open:
            self._open[self.spec] = self.spec.open()
        return self._open[self.spec]

    def close(self) -> None:
        """Close the engine (every component naming this model then opens it again when next used)."""
        generator = self._open.pop(self.spec, None)
        if generator is not None:
            generator.close()


class ModelOf:
    """A component's own model (a judge's, a verifier's program writer): a name it opens as a
    ``SecondModel`` when first used, or a generator it was lent (which stays the lender's to close)."""

    def __init__(self, model: Generator | str):
        self._model = SecondModel(model) if isinstance(model, str) else None
        self._lent = None if isinstance(model, str) else model

    @property
    def generator(self) -> Generator:
        return self._model.generator if self._model is not None else self._lent

    @property
    def parameter_count(self) -> int:
        """Its parameters, for the FLOPs estimate: 0 until a named model is opened."""
        if self._model is not None and not self._model.opened:
            return 0
        return self.generator.parameter_count

    def close(self) -> None:
        if self._model is not None:
            self._model.close()


def open_generator(backend: str, model: str, **options) -> Generator:
    """A generator for a backend name: ``vllm`` (in-process) or ``openai`` (HTTP); options as ``GeneratorSpec``."""
    return GeneratorSpec(backend, model, **options).open()


__all__ = [
    "BACKENDS",
    "DTYPES",
    "REPRODUCIBLE_DTYPE",
    "Completion",
    "EngineDied",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "GeneratorSpec",
    "ModelOf",
    "Prompt",
    "PromptTooLongError",
    "RetryPolicy",
    "SamplingParams",
    "SecondModel",
    "open_generator",
]
