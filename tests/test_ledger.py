import pytest

from testtime.analysis import summary_row, wilson_interval
from testtime.ledger import Ledger


def test_flops_skip_cached_prompt_tokens():
    ledger = Ledger()
    ledger.charge_generation(prompt_tokens=100, completion_tokens=50, cached_prompt_tokens=64, parameters=10)
    assert ledger.policy_flops == 2 * 10 * (100 - 64 + 50)
    ledger.charge_verifier(tokens=30, parameters=5)
    assert ledger.verifier_flops == 2 * 5 * 30
    assert ledger.flops == ledger.policy_flops + ledger.verifier_flops


def test_total_adds_every_field():
    a = Ledger(prompt_tokens=1, completion_tokens=2, wall_seconds=0.5, generate_calls=1)
    b = Ledger(prompt_tokens=3, cached_prompt_tokens=1, verifier_tokens=4, wall_seconds=1.0)
    t = Ledger.total([a, b])
    assert (t.prompt_tokens, t.completion_tokens, t.cached_prompt_tokens, t.verifier_tokens) == (4, 2, 1, 4)
    assert t.wall_seconds == 1.5 and t.generate_calls == 1


def test_wilson_interval():
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17
    lo, hi = wilson_interval(10, 20)
    assert lo == pytest.approx(0.2993, abs=1e-3) and hi == pytest.approx(0.7007, abs=1e-3)


def test_summary_row_has_the_documented_keys():
    row = summary_row({"strategy": "majority", "budget": 4}, [True, False], [Ledger(prompt_tokens=3), Ledger(completion_tokens=5)])
    for key in ("strategy", "budget", "accuracy", "ci95", "questions", "completion_tokens", "prompt_tokens",
                "cached_prompt_tokens", "verifier_tokens", "flops", "wall_seconds"):
        assert key in row
    assert row["accuracy"] == 0.5 and row["questions"] == 2 and len(row["ci95"]) == 2
    assert row["prompt_tokens"] == 3 and row["completion_tokens"] == 5


def test_ledger_round_trips_through_its_dict():
    ledger = Ledger(prompt_tokens=3, completion_tokens=5, policy_flops=16.0, wall_seconds=0.5)
    assert Ledger.from_dict(ledger.to_dict()) == ledger
