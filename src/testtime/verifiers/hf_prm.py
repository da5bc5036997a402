"""Published process reward models (PRMs), run in process with Hugging Face transformers.

A PRM's input layout and read-out are data (:class:`PRMFormat`), not a code path
per model; three layouts cover the common published checkpoints:

``math_shepherd`` (step tag), as ``peiyi9979/math-shepherd-mistral-7b-prm`` is used:
    the input is ``f"{question} {step1} ки\\n{step2} ки"``; a step's score is the
    probability of ``+`` against ``-`` in the causal LM's logits at its ``ки`` tag.
``qwen25_math_prm`` (token classification), as ``Qwen/Qwen2.5-Math-PRM-7B``:
    a chat (system prompt, question, then the steps each followed by ``<extra_0>``);
    a step's score is class 1 of the per-token 2-class softmax at its separator.
``rlhflow`` (chat turns), as ``RLHFlow/Llama3.1-8B-PRM-Deepseek-Data``:
    user turns hold the question and step 1, then one step each; every assistant
    turn is ``+``; a step's score is P(``+``) against ``-`` where the model predicts
    that step's assistant ``+``. All steps are scored in one forward pass.

Nothing is downloaded here. To use a real checkpoint, fetch it yourself into a
folder (for instance ``huggingface-cli download Qwen/Qwen2.5-Math-PRM-7B
--local-dir ~/models/qwen-prm``) and pass that folder with its preset::

    HFProcessRewardModel("~/models/math-shepherd", format="math_shepherd", device="cuda")
    HFProcessRewardModel("~/models/qwen-prm", format="qwen25_math_prm", dtype="bfloat16")
    HFProcessRewardModel("~/models/rlhflow-prm", format="rlhflow", dtype="bfloat16")

Qwen's PRM ships its own modelling code (``auto_map`` in its config), which is
loaded with ``trust_remote_code=True``. Another model of one of these layouts
needs only a JSON file of :class:`PRMFormat` fields, passed as ``format=PATH``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

from testtime.verifiers.base import Aggregation, ProcessVerifier, Solution, StepScores


class PRMKind(str, Enum):
    STEP_TAG = "step_tag"  # causal LM; a tag token after each step; P(good) vs P(bad) at the tag
    TOKEN_CLASSIFICATION = "token_classification"  # per-token class logits at a separator after each step
    CHAT_TURN = "chat_turn"  # causal LM; steps are user turns, labels assistant turns


@dataclass(frozen=True)
class PRMFormat:
    """How a PRM's input is laid out and where its step scores are read."""

    kind: PRMKind
    step_tag: str = "ки"  # STEP_TAG: the token after each step
    good_token: str = "+"  # STEP_TAG, CHAT_TURN: the label of a correct step
    bad_token: str = "-"
    separator: str = "<extra_0>"  # TOKEN_CLASSIFICATION: the token after each step
    good_class: int = 1  # TOKEN_CLASSIFICATION: the class of a correct step
    system_prompt: str | None = None  # chat formats: a system message, if any
    question_joiner: str = " "  # STEP_TAG, CHAT_TURN: between the question and the first step
    tag_prefix: str = " "  # STEP_TAG: between a step and its tag
    step_joiner: str = "\n"  # STEP_TAG: after a tag, before the next step

    def __post_init__(self):
        object.__setattr__(self, "kind", PRMKind(self.kind))

    @property
    def label_tokens(self) -> dict[str, str]:
        """The strings this format needs to be single tokens, by role."""
        if self.kind is PRMKind.STEP_TAG:
            return {"step tag": self.step_tag, "good token": self.good_token, "bad token": self.bad_token}
        if self.kind is PRMKind.TOKEN_CLASSIFICATION:
            return {"separator": self.separator}
        return {"good token": self.good_token, "bad token": self.bad_token}

    def token_ids(self, tokenizer, model: str) -> dict[str, int]:
        """Each label token's id; ValueError naming the token and the model if it is not one token."""
        ids = {}
        for role, text in self.label_tokens.items():
            encoded = tokenizer.encode(text, add_special_tokens=False)
            if len(encoded) != 1:
                pieces = tokenizer.convert_ids_to_tokens(encoded)
                raise ValueError(
                    f"the {self.kind.value} PRM format's {role} {text!r} is not a single token in the tokenizer "
                    f"of {model!r} (it encodes to {len(encoded)} tokens: {pieces}); use a format whose tokens "
                    "match this model, or a model trained with this format"
                )
            ids[role] = encoded[0]
        return ids

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kind"] = self.kind.value
        return out

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> PRMFormat:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown PRMFormat fields {unknown}; known fields: {', '.join(sorted(known))}")
        if "kind" not in fields:
            raise ValueError(f"a PRMFormat needs a 'kind', one of: {', '.join(k.value for k in PRMKind)}")
        try:
            PRMKind(fields["kind"])
        except ValueError:
            raise ValueError(
                f"unknown PRM kind {fields['kind']!r}; known kinds: {', '.join(k.value for k in PRMKind)}"
            ) from None
        return cls(**fields)

    @classmethod
    def from_json(cls, path: str | Path) -> PRMFormat:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def resolve(cls, format: PRMFormat | str) -> PRMFormat:
        """A PRMFormat itself, a preset's name, or a path to a JSON file of fields."""
        if isinstance(format, PRMFormat):
            return format
        if format in PRM_FORMATS:
            return PRM_FORMATS[format]
        if str(format).endswith(".json") or Path(format).is_file():
            return cls.from_json(format)
        raise ValueError(f"unknown PRM format {format!r}; known presets: {', '.join(sorted(PRM_FORMATS))}")


PRM_FORMATS: dict[str, PRMFormat] = {
    "math_shepherd": PRMFormat(PRMKind.STEP_TAG, step_tag="ки", good_token="+", bad_token="-"),
    "qwen25_math_prm": PRMFormat(
        PRMKind.TOKEN_CLASSIFICATION,
        separator="<extra_0>",
        good_class=1,
        system_prompt="Please reason step by step, and put your final answer within \\boxed{}.",
    ),
    "rlhflow": PRMFormat(PRMKind.CHAT_TURN, good_token="+", bad_token="-"),
}


@dataclass(frozen=True)
class _Encoded:
    ids: list[int]
    positions: list[int]  # one per step: where its score is read


class HFProcessRewardModel(ProcessVerifier):
    """A published PRM run in process with transformers; one score per step."""

    name = "hf_prm"
    model_parameter = "model"

    def __init__(
        self,
        model: str,
        format: PRMFormat | str = "math_shepherd",
        aggregation: Aggregation | str = Aggregation.PRODUCT,
        batch_size: int = 8,
        max_length: int = 4096,
        dtype: str = "float32",
        device: str | None = None,
    ):
        super().__init__(aggregation)
        import torch
        from transformers import AutoTokenizer

        self.format = PRMFormat.resolve(format)
        self.model_path = str(Path(model).expanduser())
        self.batch_size = max(1, int(batch_size))
        self.max_length = int(max_length)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError(f"hf_prm needs a fast tokenizer (for character offsets); {model!r} has none")
        if self.format.kind is not PRMKind.STEP_TAG and not self.tokenizer.chat_template:
            raise ValueError(f"the {self.format.kind.value} PRM format needs a chat template; {model!r} has none")
        self.token_ids = self.format.token_ids(self.tokenizer, model)  # before loading weights: fails fast
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = self._load_model(dtype).to(self.device).eval()
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0

    def _load_model(self, dtype: str):
        import inspect

        import torch
        import transformers
        from transformers import AutoModel, AutoModelForCausalLM, AutoModelForTokenClassification

        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        dtype_kw = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch_dtype}
        self._remote = False
        if self.format.kind is PRMKind.TOKEN_CLASSIFICATION:
            config_file = Path(self.model_path) / "config.json"
            config = json.loads(config_file.read_text()) if config_file.exists() else {}
            if "AutoModel" in (config.get("auto_map") or {}):
                self._remote = True  # e.g. Qwen2.5-Math-PRM: its own reward head, logits are output 0
                model = AutoModel.from_pretrained(self.model_path, trust_remote_code=True, **dtype_kw)
            else:
                model = AutoModelForTokenClassification.from_pretrained(self.model_path, **dtype_kw)
        else:
            model = AutoModelForCausalLM.from_pretrained(self.model_path, **dtype_kw)
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        return model

    # ----- building inputs -----

    def _encode(self, index: int, solution: Solution) -> _Encoded:
        f, steps = self.format, solution.steps
        if f.kind is PRMKind.STEP_TAG:
            text, spans = solution.question + f.question_joiner, []
            for i, step in enumerate(steps):
                text += step + f.tag_prefix
                spans.append((len(text), f.step_tag))
                text += f.step_tag + (f.step_joiner if i < len(steps) - 1 else "")
            ids, offsets = self._tokenize(text, add_special_tokens=True)
            positions = [self._token_at(index, text, offsets, ids, start, tok, "step tag") for start, tok in spans]
            return _Encoded(ids, positions)

        messages = [{"role": "system", "content": f.system_prompt}] if f.system_prompt is not None else []
        if f.kind is PRMKind.TOKEN_CLASSIFICATION:
            messages.append({"role": "user", "content": solution.question})
            content, spans = "", []
            for step in steps:
                content += step
                spans.append((len(content), f.separator))
                content += f.separator
            messages.append({"role": "assistant", "content": content})
            text = self._render(messages)
            start = self._content_start(text, messages, len(messages) - 1, content)
            ids, offsets = self._tokenize(text, add_special_tokens=False)
            positions = [
                self._token_at(index, text, offsets, ids, start + at, tok, "separator") for at, tok in spans
            ]
            return _Encoded(ids, positions)

        assistant_turns = []
        for i, step in enumerate(steps):
            user = solution.question + f.question_joiner + step if i == 0 else step
            messages.append({"role": "user", "content": user})
            assistant_turns.append(len(messages))
            messages.append({"role": "assistant", "content": f.good_token})
        text = self._render(messages)
        ids, offsets = self._tokenize(text, add_special_tokens=False)
        positions = []
        for turn in assistant_turns:
            start = self._content_start(text, messages, turn, f.good_token)
            # The logits that predict the assistant's label sit one position before it.
            positions.append(self._token_at(index, text, offsets, ids, start, f.good_token, "good token") - 1)
        return _Encoded(ids, positions)

    def _render(self, messages: list[dict], generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _content_start(self, text: str, messages: list[dict], turn: int, content: str) -> int:
        """Where message ``turn`` (an assistant's) begins in the rendered conversation."""
        prefix = self._render(messages[:turn], generation_prompt=True)
        if not (text.startswith(prefix) and text[len(prefix) :].startswith(content)):
            raise ValueError(
                f"the chat template of {self.model_path!r} does not render an assistant turn's content "
                "right after the generation prompt, so hf_prm cannot locate the step labels"
            )
        return len(prefix)

    def _tokenize(self, text: str, add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def _token_at(self, index, text, offsets, ids, start, token_text, role) -> int:
        """The index of the token that is exactly ``token_text`` at character ``start`` (with any
        whitespace before it); ValueError if the tokenizer merged it with its neighbours."""
        end = start + len(token_text)
        expected = self.token_ids[role]
        for j, (s, e) in enumerate(offsets):
            if e == end and s < e and s <= start and not text[s:start].strip():
                if ids[j] == expected:
                    return j
                break
        pieces = [self.tokenizer.convert_ids_to_tokens(i) for i, (s, e) in zip(ids, offsets) if s < end and e > start]
        raise ValueError(
            f"solution {index}: the {role} {token_text!r} is not a token of its own where the format puts it "
            f"for {self.model_path!r}: the tokenizer makes it {pieces} there"
        )

    # ----- scoring -----

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        encoded = [self._encode(i, s) for i, s in enumerate(solutions)]
        for i, enc in enumerate(encoded):
            if len(enc.ids) > self.max_length:
                raise ValueError(
                    f"solution {i} is {len(enc.ids)} tokens long for the PRM {self.model_path!r}, "
                    f"over max_length={self.max_length}"
                )
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))  # similar lengths pad less
        out: list[StepScores | None] = [None] * len(encoded)
        for b in range(0, len(order), self.batch_size):
            batch = order[b : b + self.batch_size]
            for i, scores in zip(batch, self._forward([encoded[i] for i in batch])):
                out[i] = StepScores(tuple(scores), tokens=len(encoded[i].ids))
        return out

    def _forward(self, batch: list[_Encoded]) -> list[list[float]]:
        import torch

        from testtime.heads.features import right_padded

        input_ids, mask = right_padded([e.ids for e in batch], self.pad_id)
        kwargs: dict[str, Any] = {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}
        keep = sorted({p for e in batch for p in e.positions})
        column = {p: k for k, p in enumerate(keep)}
        if self.format.kind is not PRMKind.TOKEN_CLASSIFICATION and self._keeps_logits:
            kwargs["logits_to_keep"] = torch.tensor(keep, dtype=torch.long, device=self.device)
        else:
            column = {p: p for p in keep}
        with torch.inference_mode():
            output = self.model(**kwargs)
            logits = (output[0] if self._remote else output.logits).float()
            if self.format.kind is PRMKind.TOKEN_CLASSIFICATION:
                if logits.shape[-1] <= self.format.good_class:
                    raise ValueError(
                        f"the PRM {self.model_path!r} outputs {logits.shape[-1]} classes per token; "
                        f"its format's good_class is {self.format.good_class}"
                    )
                probs = logits.softmax(dim=-1)[..., self.format.good_class]
            else:
                pair = [self.token_ids["good token"], self.token_ids["bad token"]]
                probs = logits[..., pair].softmax(dim=-1)[..., 0]
            probs = probs.cpu()
        return [[float(probs[row, column[p]]) for p in e.positions] for row, e in enumerate(batch)]
