"""The compute ledger: what every generator and verifier call really cost.

FLOPs are estimated as 2 x parameters x tokens that went through a forward
pass: prompt tokens served from the prefix cache are not recomputed, so they
are counted in ``cached_prompt_tokens`` but not in FLOPs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class Ledger:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0  # of completion_tokens, those a model thought in tags (testtime.reasoning)
    cached_prompt_tokens: int = 0
    verifier_tokens: int = 0
    policy_flops: float = 0.0
    verifier_flops: float = 0.0
    wall_seconds: float = 0.0
    generate_calls: int = 0
    verifier_calls: int = 0

    @property
    def flops(self) -> float:
        return self.policy_flops + self.verifier_flops

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.verifier_tokens

    def charge_generation(
        self,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        cached_prompt_tokens: int,
        parameters: int,
        wall_seconds: float = 0.0,
        reasoning_tokens: int = 0,
    ) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.reasoning_tokens += reasoning_tokens
        self.cached_prompt_tokens += cached_prompt_tokens
        computed = prompt_tokens - cached_prompt_tokens + completion_tokens
        self.policy_flops += 2.0 * parameters * max(computed, 0)
        self.wall_seconds += wall_seconds

    def charge_verifier(self, *, tokens: int, parameters: int, wall_seconds: float = 0.0) -> None:
        self.verifier_tokens += tokens
        self.verifier_flops += 2.0 * parameters * tokens
        self.wall_seconds += wall_seconds

    def add(self, other: Ledger) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["flops"] = self.flops
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Ledger:
        """The ledger ``to_dict`` wrote (its derived ``flops`` is recomputed, not read)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    @classmethod
    def total(cls, ledgers) -> Ledger:
        out = cls()
        for ledger in ledgers:
            out.add(ledger)
        return out


def count_call(ledgers, counter: str) -> None:
    """Count one call on each distinct ledger (a question may own several requests of a batch)."""
    for ledger in {id(l): l for l in ledgers}.values():
        setattr(ledger, counter, getattr(ledger, counter) + 1)
