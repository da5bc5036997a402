"""Step-level searches on a scripted step generator whose best path is known.

The generator is not a model: it answers from a fixed script so each test can
state the exact expected result. The same strategies run on the embedded model
in test_search_engine.py.

The script: two steps of arithmetic, each sampled right or wrong in turn, then
the final answer, which is 12 only when both steps were right. The arithmetic
verifier scores a right claim 1.0, a wrong one 0.1 and the answer line 0.9, so
the best path is right, right, "The answer is: 12".
"""

import math

import numpy as np
import pytest

from fakes import StepGenerator
from testtime.strategies import Context, Strategy
from testtime.strategies.mcts import backpropagate, select_leaf, ucb
from testtime.strategies.particle_filtering import resample, softmax
from testtime.strategies.rebase import allocate_widths
from testtime.tasks import Task
from testtime.tree import Node, Tree
from testtime.generators import SamplingParams
from testtime.generators.base import Prompt
from testtime.verifiers.arithmetic import ArithmeticVerifier

TASKS = [Task("q1", "question one", "12"), Task("q2", "question two", "12"), Task("q3", "question three", "12")]
RIGHT = ["2 + 2 = 4\n\n", "4 * 3 = 12\n\n"]
WRONG = ["2 + 2 = 5\n\n", "5 * 3 = 16\n\n"]


def two_step_script(question, steps, index):
    if len(steps) < 2:
        # wrong first: a search that takes the first sample fails
        return (WRONG, RIGHT, WRONG)[index % 3][len(steps)]
    return "The answer is: 12" if steps == [s.strip() for s in RIGHT] else "The answer is: 13"


def ctx(script=two_step_script):
    return Context(generator=StepGenerator(script), verifier=ArithmeticVerifier())


SEARCHES = [
    ("beam_search", dict(budget=4, width=2)),
    ("dvts", dict(budget=4, width=2)),
    ("lookahead", dict(budget=4, width=2, lookahead=1)),
    ("mcts", dict(budget=4, width=3)),
    ("mcts", dict(budget=4, width=3, rollout=True)),
    ("particle_filtering", dict(budget=6, softmax_temperature=0.1)),
    ("rebase", dict(budget=4, softmax_temperature=0.1)),
]


@pytest.mark.parametrize("name,params", SEARCHES, ids=[f"{n}-{sorted(p.items())}" for n, p in SEARCHES])
def test_each_search_finds_the_best_path(name, params):
    c = ctx()
    results = Strategy.create(name, **params).solve(TASKS, c)
    for r in results:
        assert r.prediction == "12" and r.correct
        assert r.chosen.text == "".join(RIGHT) + "The answer is: 12"
        assert r.chosen.score == pytest.approx(0.9)
        assert r.ledger.completion_tokens > 0 and r.ledger.cached_prompt_tokens > 0
        tree = r.details["tree"]["nodes"]
        assert tree[0]["parent"] is None and len(tree) > 3
    # one batched generate call per round for every question: each call serves all three
    for call in c.generator.calls:
        assert {req.prompt.messages[-1][1] for req in call} == {t.question for t in TASKS}
    # one verifier call per generate call, counted once per question
    assert results[0].ledger.verifier_calls == results[0].ledger.generate_calls == len(c.generator.calls)


def test_beam_search_keeps_n_over_m_beams_and_expands_each_m_ways():
    c = ctx()
    Strategy.create("beam_search", budget=6, width=3).solve(TASKS[:1], c)
    assert [[r.n for r in call] for call in c.generator.calls] == [[6], [3, 3], [3, 3]]


def test_beam_search_stops_at_the_depth_cap():
    loop = lambda question, steps, index: "1 + 1 = 2\n\n"  # never finishes
    results = Strategy.create("beam_search", budget=2, width=2, max_depth=3).solve(TASKS[:1], ctx(loop))
    nodes = results[0].details["tree"]["nodes"]
    assert max(n["depth"] for n in nodes) == 3
    assert {n["end"] for n in nodes if n["terminal"]} == {"depth"}


def test_a_step_ending_exactly_at_the_token_cap_ends_its_path():
    loop = lambda question, steps, index: "1 + 1 = 2\n\n"  # five tokens a step, never finishes
    c = Context(generator=StepGenerator(loop), verifier=ArithmeticVerifier(), sampling=SamplingParams(max_tokens=10))
    results = Strategy.create("beam_search", budget=2, width=2).solve(TASKS[:1], c)
    nodes = results[0].details["tree"]["nodes"]
    assert {n["end"] for n in nodes if n["terminal"]} == {"length"}
    assert max(n["depth"] for n in nodes) == 2  # no third step asked for with no token left
    assert all(r.params.max_tokens >= 5 for call in c.generator.calls for r in call)
    assert all(c.tokens == 10 for c in results[0].candidates)


def test_dvts_runs_n_over_m_independent_subtrees():
    c = ctx()
    Strategy.create("dvts", budget=6, width=2).solve(TASKS[:1], c)
    assert [[r.n for r in call] for call in c.generator.calls] == [[6], [2, 2, 2], [2, 2, 2]]


def test_lookahead_ranks_a_step_by_its_rollout():
    c = ctx()
    results = Strategy.create("lookahead", budget=2, width=2, lookahead=1).solve(TASKS[:1], c)
    nodes = results[0].details["tree"]["nodes"]
    rollouts = [n for n in nodes if n["kind"] == "rollout"]
    assert rollouts and all(nodes[n["parent"]]["kind"] == "step" for n in rollouts)
    # each round: the expansion, then one greedy lookahead call
    assert [r.params.temperature for r in c.generator.calls[1]] == [0.0, 0.0]


def test_ucb_follows_the_formula():
    parent = Node(id=0, visits=10, value_sum=5.0)
    child = Node(id=1, parent=parent, visits=4, value_sum=2.0)
    assert ucb(child, parent.visits, c=1.5) == pytest.approx(0.5 + 1.5 * math.sqrt(math.log(10) / 4))
    assert ucb(Node(id=2, parent=parent), parent.visits, c=1.5) == math.inf


def test_mcts_selection_takes_the_highest_ucb_at_every_level():
    tree = Tree(TASKS[0], Prompt.chat(None, "q"))
    a, b = tree.add(tree.root, "a", 1), tree.add(tree.root, "b", 1)
    a1, a2 = tree.add(a, "a1", 1), tree.add(a, "a2", 1)
    for node, value in ((a1, 0.9), (a2, 0.2), (b, 0.6)):
        backpropagate(node, value)
    # root: 3 visits. a: mean 0.55 over 2; b: 0.6 over 1.
    c = 1.0
    ucb_a = 0.55 + math.sqrt(math.log(3) / 2)
    ucb_b = 0.6 + math.sqrt(math.log(3) / 1)
    assert ucb_b > ucb_a and select_leaf(tree.root, c) is b
    # with no exploration the higher mean still wins: b (0.6) over a (0.55)
    assert select_leaf(tree.root, 0.0) is b
    backpropagate(b, 0.0)  # b drops to mean 0.3: now a, then a1 (0.9 > 0.2)
    assert select_leaf(tree.root, 0.0) is a1
    # a1 visited twice more (mean 0.9, 3 visits; a has 4): UCB a1 = 0.9 + c*sqrt(ln 4 / 3), a2 = 0.2 + c*sqrt(ln 4)
    backpropagate(a1, 0.9)
    backpropagate(a1, 0.9)
    assert (a.visits, a1.visits, a2.visits) == (4, 3, 1)
    assert 0.2 + 2 * math.sqrt(math.log(4)) > 0.9 + 2 * math.sqrt(math.log(4) / 3)
    assert select_leaf(a, 2.0) is a2  # c = 2: exploration wins (2.55 > 2.26)
    assert select_leaf(a, 0.5) is a1  # c = 0.5: the value wins (1.24 > 0.79)


def test_mcts_backpropagates_values_to_the_root():
    c = ctx()
    result = Strategy.create("mcts", budget=4, width=3).solve(TASKS[:1], c)[0]
    nodes = result.details["tree"]["nodes"]
    root, first = nodes[0], [n for n in nodes if n["parent"] == 0]
    assert root["visits"] == sum(n["visits"] for n in first)
    assert root["value"] * root["visits"] == pytest.approx(sum(n["value"] * n["visits"] for n in first))


def test_softmax_and_resampling_follow_the_weights():
    weights = softmax([0.9, 0.1, 0.5], temperature=0.5)
    expected = np.exp(np.array([0.9, 0.1, 0.5]) / 0.5)
    assert weights == pytest.approx(expected / expected.sum())
    particles = [Node(id=i, score=s) for i, s in enumerate([0.9, 0.1, 0.5])]
    draws = resample(particles, 60_000, 0.5, np.random.default_rng(0))
    freq = np.array([sum(d is p for d in draws) for p in particles]) / len(draws)
    assert freq == pytest.approx(weights, abs=0.01)
    # a very low temperature keeps only the best particle
    assert {d.id for d in resample(particles, 50, 1e-3, np.random.default_rng(1))} == {0}


def test_rebase_shares_width_by_softmax():
    scores = [0.9, 0.5, 0.1]
    shares = softmax(scores, 0.2) * 16
    widths = allocate_widths(scores, 16, 0.2)
    assert sum(widths) == 16
    assert all(abs(w - s) < 1 for w, s in zip(widths, shares))
    # shares 13.87, 1.88, 0.25: floors 13, 1, 0, and the 2 left over go to the largest remainders
    assert widths == [14, 2, 0]
    assert allocate_widths([0.5, 0.5], 5, 1.0) in ([3, 2], [2, 3])


def test_selectors_are_shared_with_the_parallel_family():
    from testtime.selection import Selector

    assert Strategy.create("beam_search", selector=Selector.WEIGHTED).selector == "weighted"
    results = Strategy.create("beam_search", budget=4, width=2, selector="weighted").solve(TASKS[:1], ctx())
    # the complete solutions: "12" twice at 0.9, "13" twice at 0.09; the weighted vote sums them
    assert sorted((c.answer, round(c.score, 2)) for c in results[0].candidates) == [
        ("12", 0.9), ("12", 0.9), ("13", 0.09), ("13", 0.09)]
    assert results[0].prediction == "12"


def test_search_parameters_are_checked():
    with pytest.raises(ValueError, match="multiple of width"):
        Strategy.create("beam_search", budget=6, width=4)
    with pytest.raises(ValueError, match="selector must be one of"):
        Strategy.create("beam_search", selector="visits")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        Strategy.create("rebase", softmax_temperature=0)
    with pytest.raises(ValueError, match="needs a verifier"):
        Strategy.create("mcts").solve(TASKS, Context(generator=StepGenerator(two_step_script)))


def test_mcts_stops_when_no_leaf_is_left_to_expand():
    """Every first step ends the answer: after one expansion nothing is left to expand (was: rounds to the cap)."""
    def one_step_answers(question, steps, index):
        return f"The answer is {index}."  # no delimiter: each child is a complete solution

    c = ctx(one_step_answers)
    [result] = Strategy.create("mcts", budget=4, width=2).solve(TASKS[:1], c)
    nodes = result.details["tree"]["nodes"]
    assert len(nodes) == 3 and all(n["terminal"] for n in nodes[1:])
    assert result.details["rounds"] == 1 and len(c.generator.calls) == 1
