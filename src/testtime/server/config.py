"""Server settings: defaults a request may override, and caps it may not exceed."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from testtime.generators.base import DEFAULT_MAX_TOKENS


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless the operator says otherwise
    port: int = 8000
    api_keys: tuple[str, ...] = ()  # empty: no authentication
    metrics_public: bool = False  # serve /metrics without a key (a scraper on a private network)
    served_model: str | None = None  # the name clients use; default: the model `serve` was given
    # defaults for a request that names no strategy
    strategy: str = "majority"
    budget: int = 4
    verifier: str | None = "arithmetic"
    # Files a request may name, by name only: {"easy-first": "runs/sweep1/policy.json"} lets a client ask
    # for compute_optimal with "params": {"policy": "easy-first"}. With none, compute_optimal is not served.
    policies: dict[str, str] = field(default_factory=dict)
    max_tokens: int = DEFAULT_MAX_TOKENS
    # reasoning_effort as a thinking budget in tokens (budget_forcing's max_thinking_tokens)
    thinking_budgets: dict[str, int] = field(default_factory=lambda: {"low": 128, "medium": 384, "high": 768})
    # caps, enforced whatever the client asks
    max_budget: int = 64
    max_n: int = 8
    max_max_tokens: int = 1024
    max_wall_seconds: float = 600.0
    max_body_bytes: int = 1_000_000
    max_tests: int = 32  # assert statements a request's testtime.tests may carry
    max_test_chars: int = 2000  # characters of each
    max_queue: int = 256  # waiting requests; beyond this, 429 with Retry-After
    max_running: int = 64  # requests solved at once (their generations share the engine's running batch)
    batch_window_seconds: float = 0.0  # how long to wait for like requests to share one strategy call

    def __post_init__(self):
        if isinstance(self.max_running, bool) or not isinstance(self.max_running, int) or self.max_running < 1:
            raise ValueError(f"max_running must be an integer >= 1, got {self.max_running!r}")
        efforts = ("low", "medium", "high")
        if sorted(self.thinking_budgets) != sorted(efforts) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in self.thinking_budgets.values()):
            raise ValueError(f"thinking_budgets must give each of {', '.join(efforts)} a number of tokens >= 1, "
                             f"got {self.thinking_budgets!r}")

    @classmethod
    def from_file(cls, path: str | Path) -> ServerConfig:
        """Read a TOML file whose keys are these field names; an unknown key is an error."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "api_keys" in data:
            data["api_keys"] = tuple(data["api_keys"])
        return cls(**data)
