"""Features from the real embedded model (cut to 2 layers to stay fast), training on a
small labelled set, and the trained heads as `prm` / `orm` verifiers."""

import numpy as np
import pytest
import torch

from testtime.heads.features import FeatureSpec, HiddenStates, PrefixStates, default_layer
from testtime.learn.train import train_heads
from conftest import TEST_MODEL
from testtime.verifiers import Aggregation, Solution, Verifier

SPEC = FeatureSpec(TEST_MODEL, layer=2)


@pytest.fixture(scope="module")
def states():
    return HiddenStates(SPEC, batch_size=3)


def test_step_ends_are_the_last_token_of_each_step(states):
    steps = ["First we add 2 and 3 to get 5.", "Then 5 * 4 = 20.", "The answer is: 20"]
    ids, ends = states.encode("What is (2+3)*4?", steps)
    text = states.tokenizer.decode(ids)
    assert text.endswith(steps[-1]) and ends[-1] == len(ids) - 1
    for i, end in enumerate(ends):
        upto = states.tokenizer.decode(ids[: end + 1])
        assert upto.rstrip().endswith(steps[i].rstrip()), (i, upto)
        assert not states.tokenizer.decode(ids[:end]).rstrip().endswith(steps[i].rstrip())


def test_one_forward_pass_gives_every_steps_state_the_same_as_alone(states):
    items = [("Q1?", ["a b c", "d e"]), ("A longer question with more words in it?", ["x", "y", "z w v"]),
             ("Q3?", ["only one step"])]
    together = states(items)
    assert [a.shape for a in together] == [(2, states.width), (3, states.width), (1, states.width)]
    for item, array in zip(items, together):
        [alone] = states([item])  # no padding at all
        assert np.allclose(alone, array, atol=1e-4)
    # The state at a step's end is the model's own hidden state there (hand check for the first item).
    ids, ends = states.encode(*items[0])
    with torch.no_grad():
        full = states.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
    assert np.allclose(full[ends].numpy(), together[0], atol=1e-4)


def test_a_path_one_step_longer_reads_only_its_new_tokens_and_gets_the_same_states(states):
    # Two questions searched side by side, a round per call, as a search scores its new nodes: each round
    # extends the kept paths of the last (prefixes of different lengths in one batch), one adds a sibling.
    a = ("What is (2+3)*4?", ["First we add 2 and 3 to get 5.", "Then 5 * 4 = 20.", "The answer is: 20"])
    b = ("A train runs 60 km an hour for 2 hours. How far does it go?",
         ["Distance is speed times time, and here the speed is 60 km an hour.", "60 * 2 = 120.", "The answer is: 120"])
    rounds = [[(q, steps[:depth]) for q, steps in (a, b)] for depth in (1, 2, 3)]
    rounds[2].append((a[0], a[1][:2] + ["So it is 21."]))
    unaided = HiddenStates(SPEC, reuse_bytes=0)
    for depth, items in enumerate(rounds, start=1):
        for (q, path), (array, read), (alone, read_alone) in zip(items, states.with_tokens(items),
                                                                 unaided.with_tokens(items)):
            ids = states.encode(q, path)[0]
            assert read_alone == len(ids)  # nothing kept: every token read
            # here each tokenization holds its prefix's whole: only the new step (and delimiter) is read
            assert read == (len(ids) if depth == 1 else len(ids) - len(states.encode(q, path[:-1])[0]))
            assert np.allclose(array, alone, atol=1e-4)
    assert 0 < states.prefixes.size <= states.prefixes.limit


def test_kept_prefixes_stay_within_their_bytes_least_recently_used_first():
    kept = PrefixStates(limit=3 * 400)  # room for three entries of 400 bytes
    for name in "abcd":
        states, layers = torch.zeros(25), [(torch.zeros(25), torch.zeros(50))]  # 4 * (25 + 25 + 50) = 400 bytes
        kept.put(("q", (name,)), [1, 2, 3], states, layers)
        if name == "b":
            assert kept.longest(("q", ("a", "next")), [1, 2, 3, 4]) is not None  # "a" is used: "b" is oldest
    assert set(kept.entries) == {("q", ("a",)), ("q", ("c",)), ("q", ("d",))} and kept.size == 1200
    common, _, _ = kept.longest(("q", ("d", "next")), [1, 2, 9, 9])
    assert common == 2  # the tokenizations part after two tokens
    assert kept.longest(("q", ("d", "next")), [7, 8]) is None  # nothing shared


def test_the_default_feature_layer_is_two_thirds_of_the_model():
    # 16 of the 0.5B's 24 layers is what its shipped PRM was trained on; SmolLM2-135M has 30.
    assert default_layer("qwen2.5-coder-0.5b-instruct") == 16
    assert default_layer(TEST_MODEL) == 20


def test_a_layer_outside_the_model_is_refused():
    with pytest.raises(ValueError, match="feature layer must be in 1..30"):
        HiddenStates(FeatureSpec(TEST_MODEL, layer=31))


def labelled_records(count):
    """Questions whose steps say 'correct' (value 1) or 'wrong' (value 0): a rule a head can learn."""
    records = []
    for q in range(count):
        solutions = []
        for j, good in enumerate([True, False, q % 2 == 0]):
            word = "correct" if good else "wrong"
            steps = [{"text": f"Step {i}: this is {word} work on item {q}.", "hits": int(good), "rollouts": 1,
                      "value": float(good)} for i in range(3)]
            solutions.append({"text": "", "answer": str(j), "correct": good, "steps": steps})
        records.append({"id": f"q{q}", "question": f"Question number {q}?", "rolled_out": True,
                        "solutions": solutions})
    return records


def test_training_on_a_small_labelled_set_learns_the_rule_and_serves_as_verifiers(states, tmp_path):
    artifact = train_heads(labelled_records(16), states, heldout_fraction=0.25, log=lambda m: None)
    metrics, sizes = artifact.meta["metrics"], artifact.meta["sizes"]
    assert sizes["train_questions"] + sizes["heldout_questions"] == 16 and sizes["heldout_questions"] > 0
    assert metrics["heldout_step_auroc"] > 0.9 and metrics["heldout_outcome_auroc_orm"] > 0.9
    folder = artifact.save(tmp_path / "artifact")

    prm = Verifier.create("prm", artifact=folder, aggregation=Aggregation.MIN)
    orm = Verifier.create("orm", artifact=folder)
    good = Solution("Question number 99?", "Step 0: this is correct work on item 99.\n\n"
                                           "Step 1: this is correct work on item 99.")
    bad = Solution("Question number 99?", "Step 0: this is correct work on item 99.\n\n"
                                          "Step 1: this is wrong work on item 99.")
    scored = prm.score_steps([good, bad])
    assert [len(s.scores) for s in scored] == [2, 2] and scored[0].tokens > 0
    assert scored[1].scores[1] < scored[0].scores[1]
    assert prm.score([good, bad]) == [min(scored[0].scores), min(scored[1].scores)]
    # By default a trained PRM scores a solution by its last step: a step's value is its prefix's.
    assert Verifier.create("prm", artifact=folder).score([good, bad]) == [s.scores[-1] for s in scored]
    assert orm.score([good])[0] > orm.score([bad])[0]


def test_training_refuses_labels_without_both_outcomes(states):
    records = labelled_records(4)
    for r in records:
        for s in r["solutions"]:
            for step in s["steps"]:
                step["value"], step["hits"] = 0.0, 0
    with pytest.raises(ValueError, match="too little to train on"):
        train_heads(records, states, log=lambda m: None)
