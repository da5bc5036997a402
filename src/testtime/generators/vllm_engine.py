"""In-process vLLM, driven by an engine loop (``engine_loop``): requests from every caller join
one running batch as they come, and each can be aborted mid-generation."""

from __future__ import annotations

import os
import threading
from typing import Sequence

from testtime.generators.base import (
    EngineDied,
    GenerationRequest,
    GenerationResult,
    Generator,
    Prompt,
    PromptTooLongError,
    SamplingParams,
)
from testtime.generators.engine_loop import EngineLoop
from testtime.generators.streams import Stream
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
    streams = True

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
        # The engine's thread detokenizes with its tokenizer; callers' threads render with their own.
        self.renderer = ChatRenderer.for_model(model, max_model_len)
        self._render_lock = threading.Lock()
        self.loop = EngineLoop(self.llm.llm_engine, self.tokenizer)
        watch_engine_core(self.llm.llm_engine, self.loop)
        self.thinks_in_tags = TAGS.close in (getattr(self.tokenizer, "chat_template", None) or "")
        self.opens_thinking = self.render(Prompt.chat(None, "?")).rstrip().endswith(TAGS.open)
        self.model = model
        self.dtype = kwargs["dtype"]
        self.max_model_len = max_model_len
        self.parameter_count = parameter_count or count_parameters(model)

    def render(self, prompt: Prompt) -> str:
        with self._render_lock:
            return self.renderer.render(prompt)

    def count_prompt_tokens(self, prompt: Prompt) -> int:
        with self._render_lock:
            return self.renderer.count_prompt_tokens(prompt)

    def count_text_tokens(self, text: str) -> int:
        with self._render_lock:
            return len(self.renderer.tokenizer.encode(text, add_special_tokens=False))

    def _sample_params(self, request: GenerationRequest, prompt_len: int) -> list:
        """One vLLM ``SamplingParams`` per sample, seeded ``seed + index`` as vLLM seeds its own fan-out."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.sampling_params import RequestOutputKind

        p: SamplingParams = request.params
        return [VSamplingParams(
            n=1,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=min(p.max_tokens, self.max_model_len - prompt_len),
            stop=list(p.stop) or None,
            include_stop_str_in_output=True,
            seed=None if p.seed is None else p.seed + index,
            logprobs=p.logprobs,
            output_kind=RequestOutputKind.DELTA,
        ) for index in range(request.n)]

    def submit_all(self, requests: Sequence[GenerationRequest], on_updates=None) -> list[Stream]:
        """Every prompt rendered and checked before any starts; then all join the engine in one step, so
        one call's requests are scheduled together whatever else runs (batch shapes stay reproducible)."""
        from vllm.inputs import TokensPrompt

        with self._render_lock:
            encoded = [self.renderer.encode(request.prompt) for request in requests]
        for i, ids in enumerate(encoded):
            if len(ids) >= self.max_model_len:
                raise PromptTooLongError(f"request {i}: prompt is {len(ids)} tokens, the model's context is "
                                         f"{self.max_model_len}")
        on_updates = on_updates or [None] * len(requests)
        return self.loop.submit([(request, TokensPrompt(prompt_token_ids=ids), self._sample_params(request, len(ids)),
                                  len(ids), on_update)
                                 for request, ids, on_update in zip(requests, encoded, on_updates)])

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self._stream_all(requests, None)

    def healthy(self) -> bool:
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        return (self.llm is not None and self.loop.alive
                and not getattr(getattr(core, "resources", None), "engine_dead", False))

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            self.loop.close()
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown:
                shutdown()
            self.llm = None


def watch_engine_core(engine, loop: EngineLoop) -> None:
    """Fail every request at once when vLLM's engine core process dies (killed, out of memory).

    vLLM's synchronous client would wait for that process's outputs forever, and the run with it;
    so a thread waits on the process and, unless the generator is closing, fails the loop's requests
    with the reason and wakes the waiting engine step. (Where a vLLM keeps its processes elsewhere,
    nothing is watched.)"""
    import multiprocessing.connection

    core = getattr(engine, "engine_core", None)
    manager = getattr(getattr(core, "resources", None), "engine_manager", None)
    processes, outputs = getattr(manager, "processes", None), getattr(core, "outputs_queue", None)
    if not processes or outputs is None:
        return

    def watch() -> None:
        ready = multiprocessing.connection.wait([p.sentinel for p in processes])
        if loop.closed:
            return
        gone = next(p for p in processes if p.sentinel in ready)
        gone.join(timeout=5)  # reaped, so its exit code is known (is_alive may lag the sentinel)
        code = f" with code {gone.exitcode}" if gone.exitcode is not None else ""  # None: reaped by vLLM first
        error = EngineDied(f"the vLLM engine core process (pid {gone.pid}) exited{code}"
                           + (" (killed: out of memory, or a signal to the whole process group?)"
                              if gone.exitcode and gone.exitcode < 0 else ""))
        loop.fail(error)
        outputs.put_nowait(error)  # wakes the engine step waiting for outputs

    threading.Thread(target=watch, name="testtime-engine-watch", daemon=True).start()


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
