"""`testtime train-prm` and `testtime eval-verifier` end to end on the real embedded model."""

import dataclasses
import json
import shutil

import pytest

from testtime.heads.artifact import HeadArtifact, artifact_digest, default_artifact_path, shipped_artifact
from testtime.models import DEFAULT_MODEL
from testtime.learn.labels import LABEL_UNIT
from testtime.store import RunStore


@pytest.mark.parametrize("policy", ["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"])
def test_each_shipped_artifact_loads_and_records_how_it_was_made(policy):
    folder = shipped_artifact(policy)
    assert folder is not None and (folder / "LICENSE-gsm8k").exists()
    if policy == DEFAULT_MODEL:
        assert default_artifact_path() == folder
    artifact = HeadArtifact.load(folder, with_records=True)
    assert set(artifact.heads) == {"prm", "orm"}
    meta = artifact.meta
    assert "gsm8k-train" in meta["labels"]["dataset"] and meta["sizes"]["train_steps"] > 0
    assert meta["labels"]["generator"]["model"] == policy  # labelled by the policy it ships for
    held = set(meta["heldout_ids"])
    assert held and held <= {r["id"] for r in artifact.records}
    assert all(r["id"].startswith("gsm8k-train") for r in artifact.records)  # trained on the train split only


def test_train_prm_labels_and_resumes(on_engine, tmp_path):
    out = tmp_path / "prm"
    args = ["train-prm", "--dataset", "sample", "--samples", "2", "--rollouts", "1",
            "--max-tokens", "48", "--rollout-unsolved", "--label-only", "--out", out, "--limit", "2"]
    first = on_engine(*args)
    assert first.exit_code == 0, first.output[-3000:]
    store = RunStore(out)
    records = store.lines(LABEL_UNIT)
    assert len(records) == 2 and all(len(r["solutions"]) == 2 for r in records)
    for record in records:
        for solution in record["solutions"]:
            steps = solution["steps"]
            assert steps[-1]["value"] == float(solution["correct"]) and steps[-1]["rollouts"] == 1
            assert all(s["rollouts"] == 2 and 0 <= s["value"] <= 1 for s in steps[:-1])
    assert store.get_meta("label_seconds") > 0
    store.db.execute("DELETE FROM meta WHERE key = 'label_seconds'")  # as an older testtime left it
    store.close()
    again = on_engine(*args, "--resume")
    assert again.exit_code == 0 and "0 to go" in " ".join(again.output.split())
    more = on_engine(*args[:-1], "3", "--resume")  # one question more
    assert more.exit_code == 0 and "1 to go" in " ".join(more.output.split())
    store = RunStore(out)
    assert len(store.lines(LABEL_UNIT)) == 3
    assert store.get_meta("label_seconds") is None  # the time of the first two is unknown: no part stands for it
    store.close()
    changed = on_engine(*[a if a != "48" else "64" for a in args], "--resume")
    assert changed.exit_code == 2 and "labels.max_tokens: stored 48, now 64" in " ".join(changed.output.split())


def test_a_resume_refuses_other_weights_under_the_same_verifier_name(on_engine, tmp_path):
    artifact, out = tmp_path / "artifact", tmp_path / "run"
    shutil.copytree(shipped_artifact("smollm2-135m-instruct"), artifact)
    args = ["run", "--dataset", "sample", "--limit", "1", "--strategy", "best_of_n", "--budget", "2",
            "--max-tokens", "16", "--verifier", "prm", "--verifier-model", str(artifact), "--out", str(out)]
    first = on_engine(*args)
    assert first.exit_code == 0, first.output[-3000:]
    stored = RunStore(out).config["verifier_weights"]
    assert stored == artifact_digest(artifact)
    retrained = HeadArtifact.load(artifact, with_records=True)  # the same folder, trained again in place
    retrained.heads["prm"] = dataclasses.replace(retrained.heads["prm"], bias=retrained.heads["prm"].bias + 1)
    retrained.save(artifact)
    again = on_engine(*args, "--resume")
    assert again.exit_code == 2
    assert f'verifier_weights: stored "{stored}", now "{artifact_digest(artifact)}"' in " ".join(again.output.split())


def test_eval_verifier_on_the_demo_pool(demo_run, on_engine):
    # The demo ran on SmolLM2: its shipped PRM is the default; SmolLM2 judges too (the judge's own
    # engine, here the session's lent to it).
    done = on_engine("eval-verifier", demo_run, "--max-n", "4", "--judge", "smollm2-135m-instruct")
    assert done.exit_code == 0, done.output[-3000:]
    for selector in ("prm (product)", "prm (min)", "prm (last)", "orm", "arithmetic", "llm judge", "majority",
                     "pass@N"):
        assert selector in done.output
    result = json.loads((demo_run / "verifier_eval.json").read_text())
    assert result["questions"] == 4 and result["pool_size"] == 4
    rows = {(r["selector"], r["n"]): r["accuracy"] for r in result["best_of_n"]}
    assert {n for _, n in rows} == {1, 2, 4}
    for (selector, n), accuracy in rows.items():
        assert accuracy <= rows[("pass@N (oracle)", n)] + 1e-9  # no selector beats the oracle
        if n == 1 and selector.startswith("best-of-N"):  # exact best-of-1 is one random sample: pass@1
            assert accuracy == pytest.approx(rows[("pass@N (oracle)", 1)])
    assert all(len(q["prm (product)"]) == 4 and len(q["orm"]) == 4 and len(q["llm judge"]) == 4
               for q in result["scores"])
    assert 0 <= result["step_auroc"]["prm"] <= 1 and result["heldout_steps"] > 0
    assert result["artifact"].endswith("smollm2-135m-instruct-gsm8k")
    assert set(result["outcome_auroc"]) == set(result["scores"][0]) - {"id"}
    assert result["outcome_auroc"]["prm (last)"]["minus_base"] is None  # the base: the PRM's default
    orm = result["outcome_auroc"]["orm"]
    if orm["ci95"]:  # 16 candidates of a 135M model: a resample may hold one class only
        assert orm["ci95"][0] <= orm["auroc"] <= orm["ci95"][1] and "separated" in orm["minus_base"]
    pairs = result["comparisons"]["prm (product)"]
    assert [(p["a"], p["b"]) for p in pairs][-1] == ("majority @4", "one sample")
    assert all(p["ci95"][0] <= p["difference"] <= p["ci95"][1] for p in pairs)
    # Every other aggregation is paired against the one `--verifier prm` uses by default, the last step's.
    assert {p["b"] for p in result["aggregations"]} == {"weighted vote by prm (last) @4", "best-of-N by prm (last) @4"}


def test_eval_verifier_errors_name_the_problem(tmp_path, demo_run, on_engine):
    missing = on_engine("eval-verifier", tmp_path / "nothing")
    assert missing.exit_code == 2 and "holds no run" in " ".join(missing.output.split())
    too_many = on_engine("eval-verifier", demo_run, "--max-n", "64")
    assert too_many.exit_code == 2 and "larger than the pool's 4 samples" in " ".join(too_many.output.split())
    bad_artifact = on_engine("eval-verifier", demo_run, "--artifact", tmp_path)
    assert bad_artifact.exit_code == 2 and "no artifact.json" in " ".join(bad_artifact.output.split())
