"""Features for a value head: a frozen small language model's hidden state at the
end of every step, all steps of a solution from one forward pass.

The model is cut after ``layer`` decoder layers: a middle layer's state is a good
probe feature and the cut saves most of the forward pass on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

TEXT_FORMAT = "Question: {question}\nAnswer: "


@dataclass(frozen=True)
class FeatureSpec:
    """Which model, which layer, and how a solution is written out for it."""

    model: str  # an embedded model's name or a local folder
    layer: int  # decoder layers kept (the feature is the normed state after them)
    step_delimiter: str = "\n\n"
    max_length: int = 1024
    # The dtype the states are computed in: bfloat16 runs about twice as fast on a CPU with AVX-512 BF16
    # (its last bits differ from float32's, so an artifact records the one it was trained on).
    dtype: str = "float32"


def default_layer(model: str) -> int:
    """Two thirds of the model's decoder layers: on the 0.5B's own labels, held-out step AUROC rose from
    layer 4 to 16 of 24 and fell at 24 (README, "The shipped PRMs")."""
    from transformers import AutoConfig

    from testtime.models import resolve_model

    return max(1, round(AutoConfig.from_pretrained(resolve_model(model)).num_hidden_layers * 2 / 3))


class HiddenStates:
    """Step-end hidden states of (question, steps) pairs, batched."""

    def __init__(self, spec: FeatureSpec, batch_size: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from testtime.models import resolve_model

        folder = resolve_model(spec.model)
        self.spec, self.batch_size = spec, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if spec.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"feature dtype must be float32 or bfloat16, got {spec.dtype!r}")
        base = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, spec.dtype)).model
        total = len(base.layers)
        if not 1 <= spec.layer <= total:
            raise ValueError(f"feature layer must be in 1..{total} for {spec.model}, got {spec.layer}")
        base.layers = base.layers[: spec.layer]
        base.config.num_hidden_layers = spec.layer
        self.model = base.eval()
        self.width = base.config.hidden_size
        self.parameter_count = sum(p.numel() for p in base.parameters())

    def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Token ids of the written-out solution and the index of each step's last token."""
        head = TEXT_FORMAT.format(question=question)
        text, ends = head, []
        for i, step in enumerate(steps):
            text += (self.spec.step_delimiter if i else "") + step
            ends.append(len(text))
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if len(ids) > self.spec.max_length:
            raise ValueError(f"solution is {len(ids)} tokens, the feature model takes {self.spec.max_length}")
        # A step ends at the last token that starts before its final character ends.
        positions, t = [], 0
        for end in ends:
            while t + 1 < len(ids) and offsets[t + 1][0] < end:
                t += 1
            positions.append(t)
        return ids, positions

    def __call__(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[np.ndarray]:
        """One (steps x width) array per (question, steps) item."""
        return [array for array, _ in self.with_tokens(items)]

    def with_tokens(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[np.ndarray, int]]:
        """Each item's (steps x width) array and the number of tokens the model read for it."""
        import torch

        encoded = [self.encode(q, steps) for q, steps in items]
        out: list[tuple[np.ndarray, int] | None] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(encoded[i][0]))  # little padding per batch
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            ids, mask = right_padded([encoded[i][0] for i in batch], self.tokenizer.pad_token_id or 0)
            with torch.no_grad():
                states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for row, i in enumerate(batch):
                out[i] = (states[row, encoded[i][1]].float().numpy(), len(encoded[i][0]))
        return out  # type: ignore[return-value]


def right_padded(sequences: Sequence[Sequence[int]], pad_id: int):
    """Token id rows padded on the right, and the attention mask: a causal model's real tokens never see
    the padding, so each row's states are those it would have alone."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask
