"""Monte Carlo step labels, on a deterministic scripted generator (tests/fakes.py): with
scripted continuations the exact values are known by hand."""

import pytest

from fakes import StepGenerator
from testtime.generators.base import SamplingParams
from testtime.learn.labels import LABEL_UNIT, LabelParams, label_dataset, label_tasks
from testtime.store import RunStore
from testtime.strategies import Context
from testtime.tasks import Task


def good_or_bad(question, steps, index):
    """Every solution starts the same; even draws then take the good path, odd ones the bad."""
    if not steps:
        return "Start\n\n"
    if len(steps) == 1:
        return "Good\n\n" if index % 2 == 0 else "Bad\n\n"
    return "The answer is: 1" if steps[1] == "Good" else "The answer is: 2"


def context(gen):
    return Context(generator=gen, sampling=SamplingParams(max_tokens=64))


SOLVABLE = Task("q1", "What is one?", "1")
UNSOLVABLE = Task("q2", "What is seven?", "7")


def test_step_values_by_hand():
    gen = StepGenerator(good_or_bad)
    [record] = label_tasks([SOLVABLE], context(gen), LabelParams(samples=2, rollouts=2))
    good, bad = record["solutions"]
    assert (good["correct"], bad["correct"]) == (True, False)
    assert [s["text"] for s in good["steps"]] == ["Start", "Good", "The answer is: 1"]
    # Step 1 of each: its own ending plus 2 rollouts from "Start", of which draws 0,2 are good
    # (the first solution's rollouts are draws 0-1, the second's 2-3): 1 hit each.
    assert [s["value"] for s in good["steps"]] == [2 / 3, 1.0, 1.0]
    assert [s["value"] for s in bad["steps"]] == [1 / 3, 0.0, 0.0]
    assert [s["rollouts"] for s in good["steps"]] == [3, 3, 1]  # the last step is the solution itself
    assert [s["hits"] > 0 for s in bad["steps"]] == [True, False, False]
    # One batched call samples, one more rolls out every prefix of every solution.
    assert len(gen.calls) == 2 and len(gen.calls[1]) == 4
    assert all(r.prompt.continuation.endswith("\n\n") for r in gen.calls[1])


def test_unsolved_questions_are_labelled_by_their_own_endings_unless_rolled_out():
    gen = StepGenerator(good_or_bad)
    [record] = label_tasks([UNSOLVABLE], context(gen), LabelParams(samples=2, rollouts=2))
    assert (record["correct"], record["rolled_out"]) == (False, False) and len(gen.calls) == 1
    steps = [s for sol in record["solutions"] for s in sol["steps"]]
    assert len(steps) == 6 and all((s["value"], s["rollouts"]) == (0.0, 1) for s in steps)
    gen = StepGenerator(good_or_bad)
    [rolled] = label_tasks([UNSOLVABLE], context(gen), LabelParams(samples=2, rollouts=1, rollout_unsolved=True))
    assert rolled["rolled_out"] and len(gen.calls) == 2
    assert [s["rollouts"] for s in rolled["solutions"][0]["steps"]] == [2, 2, 1]


def test_zero_rollouts_label_with_the_solutions_own_ending():
    [record] = label_tasks([SOLVABLE], context(StepGenerator(good_or_bad)), LabelParams(samples=2, rollouts=0))
    assert [s["value"] for s in record["solutions"][0]["steps"]] == [1.0, 1.0, 1.0]


def test_labelling_resumes_where_it_stopped(tmp_path):
    params = LabelParams(samples=2, rollouts=1, chunk=1)
    store = RunStore.start(tmp_path, {"labels": params.to_dict()})
    label_dataset([SOLVABLE], context(StepGenerator(good_or_bad)), params, store)
    gen = StepGenerator(good_or_bad)
    assert label_dataset([SOLVABLE, UNSOLVABLE], context(gen), params, store) == 1
    assert {r.prompt.messages[-1][1] for call in gen.calls for r in call} == {UNSOLVABLE.question}
    records = store.lines(LABEL_UNIT)
    assert [r["id"] for r in records] == ["q1", "q2"]
    assert [len(s["steps"]) for r in records for s in r["solutions"]] == [3, 3, 3, 3]


@pytest.mark.parametrize("field,value", [("samples", 0), ("rollouts", -1), ("chunk", 0), ("max_tokens", 0)])
def test_bad_label_params_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        LabelParams(**{field: value})
