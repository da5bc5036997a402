"""Every step-level search end to end on the embedded model, with the arithmetic process verifier."""

from __future__ import annotations

import pytest

from testtime.generators import SamplingParams
from testtime.strategies import Context, Strategy
from testtime.verifiers.arithmetic import ArithmeticVerifier

pytestmark = pytest.mark.engine

SEARCHES = [
    ("beam_search", dict(budget=4, width=2)),
    ("dvts", dict(budget=4, width=2)),
    ("lookahead", dict(budget=4, width=2, lookahead=1)),
    ("mcts", dict(budget=3, width=2, max_depth=6)),
    ("mcts", dict(budget=2, width=2, max_depth=6, rollout=True, selector="weighted")),
    ("particle_filtering", dict(budget=4, delimiter="\n")),
    ("rebase", dict(budget=4, delimiter="\n")),
]


@pytest.fixture(scope="module")
def ctx(engine):
    return Context(generator=engine, verifier=ArithmeticVerifier(), sampling=SamplingParams(max_tokens=96), seed=3)


@pytest.mark.parametrize("name,params", SEARCHES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SEARCHES)])
def test_search_on_the_embedded_model(name, params, ctx, gsm8k_tasks):
    tasks = gsm8k_tasks[:2]
    strategy = Strategy.create(name, **params)
    results = strategy.solve(tasks, ctx)
    delimiter = strategy.delimiter
    for result in results:
        nodes = result.details["tree"]["nodes"]
        assert nodes[0]["parent"] is None and len(nodes) > 1
        # the ledger holds exactly the tokens of every node the search generated
        assert result.ledger.completion_tokens == sum(n["tokens"] for n in nodes)
        assert result.ledger.cached_prompt_tokens > 0  # continuations were served from the prefix cache
        # one generate call a round (plus one per lookahead step or rollout), for all questions together
        calls_per_round = 1 + params.get("lookahead", 0) + params.get("rollout", 0)
        assert 1 <= result.ledger.generate_calls <= calls_per_round * result.details["rounds"]
        assert result.ledger.verifier_calls == result.ledger.generate_calls
        for node in nodes[1:]:
            assert node["tokens"] >= 1 and 0.0 <= node["score"] <= 1.0
            assert node["depth"] == nodes[node["parent"]]["depth"] + 1 <= strategy.max_depth
            if not node["terminal"] and node["kind"] == "step":
                # an open step ended at the delimiter, or at the step cap
                assert node["text"].endswith(delimiter) or node["tokens"] == strategy.step_tokens
        assert result.candidates and result.chosen in result.candidates
        for candidate in result.candidates:
            assert candidate.tokens <= ctx.sampling.max_tokens and candidate.score is not None
