"""Generators (backends): in-process vLLM and any OpenAI-compatible server."""

from __future__ import annotations

from testtime.generators.base import (
    Completion,
    GenerationRequest,
    GenerationResult,
    Generator,
    Prompt,
    PromptTooLongError,
    SamplingParams,
)

BACKENDS = ("vllm", "openai")


def open_generator(
    backend: str,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str = "EMPTY",
    seed: int = 0,
    max_model_len: int = 2048,
    block_size: int | None = None,
    parameter_count: int = 0,
) -> Generator:
    """A generator for a backend name: ``vllm`` (in-process) or ``openai`` (HTTP)."""
    from testtime.models import EMBEDDED_MODELS, resolve_model

    if backend == "vllm":
        from testtime.generators.vllm_engine import VLLMGenerator

        options = {"block_size": block_size} if block_size else {}
        return VLLMGenerator(resolve_model(model), seed=seed, max_model_len=max_model_len,
                             parameter_count=parameter_count or None, **options)
    if backend == "openai":
        if not base_url:
            raise ValueError("backend 'openai' needs --base-url (for example http://127.0.0.1:8000/v1)")
        from testtime.generators.openai_http import OpenAIGenerator

        if not parameter_count and model in EMBEDDED_MODELS:
            from testtime.generators.vllm_engine import count_parameters

            parameter_count = count_parameters(resolve_model(model))
        return OpenAIGenerator(base_url, model, api_key=api_key, parameter_count=parameter_count)
    raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Completion",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "Prompt",
    "PromptTooLongError",
    "SamplingParams",
    "open_generator",
]
