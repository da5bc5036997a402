"""Features for a value head: a frozen small language model's hidden state at the
end of every step, all steps of a solution from one forward pass.

The model is cut after ``layer`` decoder layers: a middle layer's state is a good
probe feature and the cut saves most of the forward pass on a CPU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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
    layer 4 to 16 of 24 and fell at 24 (docs/results/verifiers.md)."""
    from transformers import AutoConfig

    from testtime.models import resolve_model

    return max(1, round(AutoConfig.from_pretrained(resolve_model(model)).num_hidden_layers * 2 / 3))


class HiddenStates:
    """Step-end hidden states of (question, steps) pairs, batched."""

    def __init__(self, spec: FeatureSpec, batch_size: int = 8, reuse_bytes: int = 1 << 30):
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
        # A search scores a node's path again with one more step: the prefix's states and attention
        # cache are kept, so only the new step's tokens are read.
        self.prefixes = PrefixStates(reuse_bytes)

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
        """Each item's (steps x width) array and the number of tokens the model read for it: all of them,
        or those after the longest prefix (the item's first steps) read before."""
        encoded = [self.encode(q, steps) for q, steps in items]
        keys = [(q, tuple(steps)) for q, steps in items]
        found = {i: self.prefixes.longest(key, encoded[i][0]) for i, key in enumerate(keys)}
        out: list[tuple[np.ndarray, int] | None] = [None] * len(items)
        for group, size in (
            (sorted((i for i in found if found[i] is None), key=lambda i: len(encoded[i][0])), self.batch_size),
            # a step or two each: four times the rows in a batch read about as many tokens
            (sorted((i for i in found if found[i] is not None), key=lambda i: len(encoded[i][0]) - found[i][0]),
             4 * self.batch_size),
        ):
            for start in range(0, len(group), size):
                batch = group[start:start + size]
                kept = [found[i] or (0, None, None) for i in batch]
                every = self._read([keys[i] for i in batch], [encoded[i][0] for i in batch], kept)
                for i, (common, _, _), states in zip(batch, kept, every):
                    out[i] = (states[encoded[i][1]].float().numpy(), len(encoded[i][0]) - common)
        return out  # type: ignore[return-value]

    def _read(self, keys: list[tuple], sequences: list[list[int]], kept: list[tuple]) -> list:
        """Every token's state of each sequence in one batch, reading only the tokens after the
        ``common`` ones a kept prefix holds; each sequence's states and cache are kept in turn.

        Row i is laid out as [padding | its kept prefix | its new tokens | padding]: the prefixes end
        together, so the new tokens of every row start at one cache position."""
        import torch
        from transformers import DynamicCache

        commons = [common for common, _, _ in kept]
        news = [sequence[common:] for sequence, common in zip(sequences, commons)]
        past, width = max(commons), max(len(n) for n in news)
        ids, mask_new = right_padded(news, self.tokenizer.pad_token_id or 0)
        mask = torch.cat([torch.zeros((len(news), past), dtype=torch.long), mask_new], dim=1)
        positions = torch.zeros((len(news), width), dtype=torch.long)
        for row, common in enumerate(commons):
            mask[row, past - common:past] = 1
            positions[row] = common + torch.arange(width)
        cache = None
        if past:
            template = next(layers for _, _, layers in kept if layers is not None)
            buffers = [(torch.zeros((len(news), k.shape[1], past, k.shape[3]), dtype=k.dtype),
                        torch.zeros((len(news), v.shape[1], past, v.shape[3]), dtype=v.dtype)) for k, v in template]
            for row, (common, _, layers) in enumerate(kept):
                for (bk, bv), (k, v) in zip(buffers, layers or ()):
                    bk[row, :, past - common:] = k[0, :, :common]
                    bv[row, :, past - common:] = v[0, :, :common]
            cache = DynamicCache(buffers)
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                             use_cache=True)
        layers = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        rows = []
        for row, (key, (common, states, _), new) in enumerate(zip(keys, kept, news)):
            fresh = out.last_hidden_state[row, :len(new)]
            every = fresh.clone() if states is None else torch.cat([states[:common], fresh])
            span = slice(past - common, past + len(new))  # clones: a row must not hold the batch alive
            self.prefixes.put(key, sequences[row], every, [(k[row:row + 1, :, span].clone(), v[row:row + 1, :, span].clone())
                                                           for k, v in layers])
            rows.append(every)
        return rows


class PrefixStates:
    """Per (question, steps): token ids, every token's state and the attention cache, least recently
    used dropped first beyond ``limit`` bytes. Safe across threads (the server scores batches at once)."""

    def __init__(self, limit: int):
        self.limit, self.size = limit, 0
        self.entries: OrderedDict[tuple, tuple] = OrderedDict()
        self.lock = threading.Lock()

    def put(self, key: tuple, ids: list[int], states, layers) -> None:
        size = sum(t.numel() * t.element_size() for pair in layers for t in pair) + states.numel() * states.element_size()
        with self.lock:
            if key in self.entries:
                self.size -= self.entries.pop(key)[3]
            self.entries[key] = (ids, states, layers, size)
            self.size += size
            while self.size > self.limit and self.entries:
                self.size -= self.entries.popitem(last=False)[1][3]

    def longest(self, key: tuple, ids: list[int]):
        """(tokens shared, states, cache layers) of the longest kept prefix of ``key``'s steps, or None.
        Shared tokens stop where the two tokenizations part (a step's end may merge with the delimiter)
        and leave at least one token to read."""
        question, steps = key
        for k in range(len(steps) - 1, 0, -1):
            with self.lock:
                entry = self.entries.get((question, steps[:k]))
                if entry is not None:
                    self.entries.move_to_end((question, steps[:k]))
            if entry is None:
                continue
            kept, states, layers, _ = entry
            common = 0
            for a, b in zip(kept, ids[:-1]):
                if a != b:
                    break
                common += 1
            if common:
                return common, states, layers
        return None


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
