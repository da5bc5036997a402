"""The value head, AUROC, exact best-of-N, and the artifact format (numbers checked by hand
or by brute force)."""

import itertools
import json
import os
import random
import stat

import numpy as np
import pytest

from testtime.analysis.verifier_eval import (PoolQuestion, aggregation_comparisons, auroc, best_of_n_accuracy,
                                             best_of_n_table, comparisons, outcome_auroc,
                                             outcome_auroc_intervals)
from testtime.heads.artifact import ArtifactError, HeadArtifact
from testtime.heads.features import FeatureSpec
from testtime.heads.head import ALPHAS, choose_alpha, fit_value_head
from testtime.learn.train import is_heldout


def test_auroc_by_hand():
    # Pairs (pos, neg): (0.9,0.1) win, (0.9,0.5) win, (0.4,0.1) win, (0.4,0.5) loss -> 3/4.
    assert auroc([0.9, 0.4, 0.1, 0.5], [True, True, False, False]) == 0.75
    assert auroc([0.5, 0.5], [True, False]) == 0.5  # a tie counts one half
    assert auroc([0.2, 0.3], [True, True]) is None


def test_head_learns_a_separable_rule_and_soft_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    head = fit_value_head(x, y, alpha=1e-3)
    assert auroc(head.predict(x), y > 0.5) > 0.99
    # Soft labels: a constant target of 0.3 is matched by the bias alone.
    flat = fit_value_head(x, np.full(400, 0.3), alpha=1.0)
    assert np.allclose(flat.predict(x), 0.3, atol=1e-3)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_value_head(np.zeros((2, 3)), [0.0, 2.0], alpha=1.0)
    with pytest.raises(ValueError, match="one label per feature row"):
        fit_value_head(np.zeros((2, 3)), [0.0], alpha=1.0)


def test_alpha_is_chosen_by_grouped_cross_validation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 50))
    y = (x[:, 0] > 0).astype(float)
    groups = [f"q{i // 5}" for i in range(300)]
    alpha, losses = choose_alpha(x, y, groups)
    assert set(losses) == set(ALPHAS) and losses[alpha] == min(losses.values())


def brute_force_best_of_n(scores, correct, n):
    """Average over every n-subset; ties at the top shared uniformly."""
    total = []
    for subset in itertools.combinations(range(len(scores)), n):
        top = max(scores[i] for i in subset)
        tied = [i for i in subset if scores[i] == top]
        total.append(sum(correct[i] for i in tied) / len(tied))
    return sum(total) / len(total)


@pytest.mark.parametrize("seed", range(5))
def test_exact_best_of_n_matches_every_subset(seed):
    rng = random.Random(seed)
    scores = [rng.choice([0.1, 0.5, 0.5, 0.9, rng.random()]) for _ in range(7)]
    correct = [rng.random() < 0.4 for _ in range(7)]
    for n in range(1, 8):
        assert best_of_n_accuracy(scores, correct, n) == pytest.approx(brute_force_best_of_n(scores, correct, n))


def test_best_of_n_table_has_every_selector_with_intervals():
    questions = [PoolQuestion("a", ["1", "1", "2", "3"], [True, True, False, False], {"v": [0.9, 0.2, 0.8, 0.1]}),
                 PoolQuestion("b", ["5", "6", "6", "6"], [True, False, False, False], {"v": [0.1, 0.2, 0.3, 0.4]})]
    rows, values = best_of_n_table(questions, [1, 4])
    cell = {(r["selector"], r["n"]): r for r in rows}
    assert cell[("best-of-N by v", 4)]["accuracy"] == 0.5  # picks the right one on a, the wrong one on b
    # The weighted vote at 4: on a, '1' (0.9 + 0.2) beats '2' (0.8); on b, '6' (0.9) beats '5' (0.1).
    # At 1 it is one random sample (replayed on 256 orders: near pass@1).
    assert cell[("weighted vote by v", 4)]["accuracy"] == 0.5
    assert cell[("weighted vote by v", 1)]["accuracy"] == pytest.approx(0.375, abs=0.06)
    assert cell[("majority", 4)]["accuracy"] == 0.5  # '1' wins a, '6' wins b
    assert cell[("pass@N (oracle)", 4)]["accuracy"] == 1.0
    assert cell[("best-of-N by v", 1)]["accuracy"] == pytest.approx((0.5 + 0.25) / 2)  # best-of-1 is pass@1
    assert all(r["ci95"][0] <= r["accuracy"] <= r["ci95"][1] for r in rows)
    assert values[4]["majority"] == [1.0, 0.0]


def test_comparisons_are_paired_and_say_whether_they_separate():
    # 30 questions: majority right on the first 20, one sample on a quarter of each, the weighted vote on
    # the same 20 plus one (not separated from majority).
    one = [0.25] * 30
    majority = [1.0] * 20 + [0.0] * 10
    weighted = [1.0] * 21 + [0.0] * 9
    rows = comparisons({1: {"majority": one}, 16: {"majority": majority, "weighted vote by prm": weighted,
                                                    "best-of-N by prm": weighted}}, "prm")
    by = {(r["a"], r["b"]): r for r in rows}
    assert not by[("weighted vote by prm @16", "majority @16")]["separated"]
    assert by[("majority @16", "one sample")]["separated"]
    assert by[("majority @16", "one sample")]["difference"] == pytest.approx(20 / 30 - 0.25)
    assert by[("best-of-N by prm @16", "one sample")]["separated"]


def test_each_aggregation_is_paired_against_the_product():
    product, last = [1.0] * 10 + [0.0] * 20, [1.0] * 25 + [0.0] * 5
    at_16 = {"majority": product, "weighted vote by prm (product)": product, "best-of-N by prm (product)": product,
             "weighted vote by prm (last)": last, "best-of-N by prm (last)": product, "weighted vote by orm": last}
    rows = aggregation_comparisons({1: {"majority": product}, 16: at_16}, base="prm (product)")
    assert [(r["a"], r["b"]) for r in rows] == [
        ("weighted vote by prm (last) @16", "weighted vote by prm (product) @16"),
        ("best-of-N by prm (last) @16", "best-of-N by prm (product) @16")]
    assert rows[0]["separated"] and rows[0]["difference"] == pytest.approx(0.5) and not rows[1]["separated"]


def test_outcome_auroc_ranks_candidates_over_the_whole_pool():
    questions = [PoolQuestion("a", ["1", "2"], [True, False], {"v": [0.9, 0.1]}),
                 PoolQuestion("b", ["3", "4"], [False, True], {"v": [0.5, 0.4]})]
    # Positives 0.9, 0.4; negatives 0.1, 0.5: 3 of 4 pairs ordered right.
    assert outcome_auroc(questions) == {"v": 0.75}


def test_outcome_auroc_intervals_pair_every_score_with_the_base():
    rng = np.random.default_rng(1)
    questions = []
    for i in range(60):
        correct = [bool(x) for x in rng.integers(0, 2, 6)]
        questions.append(PoolQuestion(f"q{i}", ["1"] * 6, correct, {
            "perfect": [float(c) for c in correct],
            "noise": list(rng.random(6)),
            "noisy copy": [float(c) + rng.normal(0, 0.7) for c in correct]}))
    rows = outcome_auroc_intervals(questions, base="perfect", resamples=300)
    assert rows["perfect"]["auroc"] == 1.0 and rows["perfect"]["minus_base"] is None
    for name in ("noise", "noisy copy"):
        low, high = rows[name]["ci95"]
        assert low <= rows[name]["auroc"] <= high
        assert rows[name]["minus_base"]["separated"] and rows[name]["minus_base"]["difference"] < 0
    assert rows["noise"]["ci95"][0] < 0.5 < rows["noise"]["ci95"][1]  # chance: the interval holds 0.5
    assert rows["noisy copy"]["ci95"][0] > 0.6


def test_heldout_split_is_stable_and_near_its_share():
    ids = [f"gsm8k-train-{i}" for i in range(2000)]
    held = [i for i in ids if is_heldout(i, 0.25)]
    assert held == [i for i in ids if is_heldout(i, 0.25)]
    assert 0.22 < len(held) / len(ids) < 0.28


def small_artifact():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4))
    head = fit_value_head(x, (x[:, 0] > 0).astype(float), alpha=0.1)
    return HeadArtifact(FeatureSpec("some-model", 3), {"prm": head, "orm": head},
                        meta={"sizes": {"train_steps": 40}}, records=[{"id": "q", "labelled": True}]), x


def test_artifact_round_trip(tmp_path):
    artifact, x = small_artifact()
    artifact.save(tmp_path / "a")
    loaded = HeadArtifact.load(tmp_path / "a", with_records=True)
    assert loaded.feature == artifact.feature and loaded.meta == artifact.meta
    assert list(loaded.records) == [{"id": "q", "labelled": True}]
    assert np.allclose(loaded.heads["prm"].predict(x), artifact.heads["prm"].predict(x))
    artifact.save(tmp_path / "a")  # replacing an artifact leaves no temporary folder behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o777 & ~umask  # not mkdtemp's private 0700


def test_artifact_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ArtifactError, match="no artifact.json"):
        HeadArtifact.load(tmp_path)
    artifact, _ = small_artifact()
    artifact.save(tmp_path / "a")
    doc = json.loads((tmp_path / "a" / "artifact.json").read_text())
    (tmp_path / "a" / "artifact.json").write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(ArtifactError, match="version 99"):
        HeadArtifact.load(tmp_path / "a")
    (tmp_path / "a" / "artifact.json").write_text(json.dumps(doc))
    (tmp_path / "a" / "heads.npz").write_bytes(b"not numpy")
    with pytest.raises(ArtifactError, match="heads.npz"):
        HeadArtifact.load(tmp_path / "a")
