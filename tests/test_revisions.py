"""Sequential revisions (strategies/revisions.py). The logic on the scripted generator, where the
exact prompts and choices are known; then `testtime run --strategy revisions` on the real engine."""

from __future__ import annotations

import json

import pytest

from fakes import ScriptedGenerator
from testtime.generators import SamplingParams
from testtime.params import ParameterError
from testtime.prompting import PromptTemplate
from testtime.strategies import Context, Strategy
from testtime.strategies.revisions import DEFAULT_REVISION_REQUEST
from testtime.tasks import Task
from testtime.verifiers.arithmetic import ArithmeticVerifier

TASKS = [Task("q1", "question one", "12"), Task("q2", "question two", "7")]


def answers(*values):
    """A script: the question's k-th sample (in request order) states values[k]."""
    return lambda question, index: f"attempt {index}\n\nThe answer is: {values[index]}"


def assistant_turns(request) -> list[str]:
    return [content for role, content in request.prompt.messages if role == "assistant"]


def test_chains_revise_their_own_attempts_in_one_batched_call_per_round():
    gen = ScriptedGenerator(answers(*range(6)))
    [r1, r2] = Strategy.create("revisions", budget=6, chains=2).solve(TASKS, Context(generator=gen))
    assert len(gen.calls) == 3  # 6 attempts in 2 chains: 3 rounds, every question and chain in each
    assert [len(call) for call in gen.calls] == [4, 4, 4]
    first, second, third = gen.calls
    assert all(assistant_turns(r) == [] for r in first)  # a chain's first attempt is a plain sample
    # Requests are question by question, chain by chain: q1's chain 0 drew 0, 2, 4 and chain 1 drew 1, 3, 5.
    assert assistant_turns(second[0]) == ["attempt 0\n\nThe answer is: 0"]
    assert assistant_turns(third[1]) == ["attempt 1\n\nThe answer is: 1", "attempt 3\n\nThe answer is: 3"]
    assert third[1].prompt.messages[-1] == ("user", DEFAULT_REVISION_REQUEST)
    assert third[1].prompt.messages[:2] == first[1].prompt.messages  # the question comes first, as asked
    chains = r1.details["chains"]
    assert [[a["answer"] for a in chain] for chain in chains] == [["0", "2", "4"], ["1", "3", "5"]]
    assert [[a["seen"] for a in chain] for chain in chains] == [[0, 1, 2], [0, 1, 2]]
    assert len(r1.candidates) == len(r2.candidates) == 6 and r1.details["rounds"] == 3
    assert r1.ledger.generate_calls == 3 and r1.ledger.completion_tokens == sum(c.tokens for c in r1.candidates)


def test_a_revision_sees_only_the_last_context_attempts():
    gen = ScriptedGenerator(answers(*range(4)))
    [result] = Strategy.create("revisions", budget=4, context=2).solve(TASKS[:1], Context(generator=gen))
    assert [len(assistant_turns(call[0])) for call in gen.calls] == [0, 1, 2, 2]
    assert assistant_turns(gen.calls[3][0]) == ["attempt 1\n\nThe answer is: 1", "attempt 2\n\nThe answer is: 2"]
    assert [a["seen"] for a in result.details["chains"][0]] == [0, 1, 2, 2]
    assert result.ledger.prompt_tokens == 4 * gen.prompt_tokens


def test_as_many_chains_as_attempts_is_parallel_sampling():
    gen = ScriptedGenerator(answers(*range(4)))
    Strategy.create("revisions", budget=4, chains=4).solve(TASKS[:1], Context(generator=gen))
    [call] = gen.calls
    assert len(call) == 4 and all(assistant_turns(r) == [] for r in call)
    assert len({r.params.seed for r in call}) == 4  # each chain its own seed


def test_the_answer_is_chosen_within_each_chain_then_among_the_chains():
    # Three chains of three; request k goes to chain k % 3. Chain answers: [5, 7, 7], [6, 6, 5], [7, 9, 7].
    gen = ScriptedGenerator(answers(5, 6, 7, 7, 6, 9, 7, 5, 7))
    [result] = Strategy.create("revisions", budget=9, chains=3).solve(TASKS[1:], Context(generator=gen))
    choices = [result.candidates[k].answer for k in result.details["chain_choices"]]
    assert choices == ["7", "6", "7"]
    assert result.prediction == "7" and result.correct
    # A chain's repeats count once: [6, 6, 6] in one chain and 7 once in each of two others picks 7,
    # and within a chain a tie goes to the latest attempt ([1, 3, 7] chooses 7).
    gen = ScriptedGenerator(answers(6, 1, 2, 6, 3, 4, 6, 7, 7))
    [result] = Strategy.create("revisions", budget=9, chains=3).solve(TASKS[1:], Context(generator=gen))
    assert [result.candidates[k].answer for k in result.details["chain_choices"]] == ["6", "7", "7"]
    assert result.prediction == "7"
    # Two attempts that disagree: the revision is kept, not the attempt it revised.
    [result] = Strategy.create("revisions", budget=2).solve(TASKS[1:], Context(generator=ScriptedGenerator(answers(5, 7))))
    assert result.prediction == "7"


def test_best_needs_a_verifier_and_follows_its_scores():
    with pytest.raises(ParameterError, match="selector 'best' needs a verifier"):
        Strategy.create("revisions", budget=2, selector="best").solve(TASKS[:1], Context(generator=ScriptedGenerator(
            answers(1, 2))))
    texts = ["3 * 4 = 13\n\nThe answer is: 13", "3 * 4 = 12\n\nThe answer is: 12"]
    gen = ScriptedGenerator(lambda question, index: texts[index % 2])
    ctx = Context(generator=gen, verifier=ArithmeticVerifier())
    [result] = Strategy.create("revisions", budget=2, selector="best").solve(TASKS[:1], ctx)
    assert result.prediction == "12" and result.correct
    assert [a["score"] for a in result.details["chains"][0]] == [c.score for c in result.candidates]
    assert result.ledger.verifier_calls == 2  # each round's attempts scored in one batch


class SmallWindow(ScriptedGenerator):
    """The scripted generator with a context window, a prompt's tokens counted as its words."""

    max_model_len = 30

    def count_prompt_tokens(self, prompt):
        return sum(len(content.split()) for _, content in prompt.messages)


def test_the_oldest_attempts_leave_a_prompt_that_would_not_fit_the_window():
    long = " ".join(["word"] * 8)
    gen = SmallWindow(lambda question, index: f"{long}\n\nThe answer is: {index}")
    ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=10), template=PromptTemplate(system=None))
    [result] = Strategy.create("revisions", budget=5, context=4, revision_request="again").solve(TASKS[:1], ctx)
    # The question is 2 words, an earlier attempt 12 plus the 1-word request: a window of 30 less the
    # reply's 10 holds one earlier attempt (15 words), not two (28).
    assert [a["seen"] for a in result.details["chains"][0]] == [0, 1, 1, 1, 1]
    assert all(gen.count_prompt_tokens(r.prompt) + 10 <= 30 for call in gen.calls for r in call)


@pytest.mark.parametrize("params, message", [
    ({"budget": 6, "chains": 4}, "budget (6) must be a multiple of chains (4)"),
    ({"chains": 0}, "chains must be an integer >= 1, got 0"),
    ({"context": -1}, "context must be an integer >= 0, got -1"),
    ({"selector": "nope"}, "selector must be one of best, majority, weighted, borda, got 'nope'"),
    ({"revision_request": " "}, "revision_request must not be empty"),
    ({"reviser": "nowhere"}, "'nowhere' is neither an embedded model (smollm2"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises((ValueError, ParameterError), match=message.replace("(", r"\(").replace(")", r"\)")):
        Strategy.create("revisions", **params)


@pytest.mark.engine
def test_revisions_from_the_cli_prompt_each_attempt_with_the_earlier_ones(on_engine, tmp_path):
    common = ("--dataset", "sample", "--limit", "2", "--n", "4", "--max-tokens", "48")
    revised = on_engine("run", *common, "--strategy", "revisions", "--param", "chains=2", "--out", tmp_path / "r")
    assert revised.exit_code == 0, revised.output[-3000:]
    parallel = on_engine("run", *common, "--strategy", "majority", "--out", tmp_path / "m")
    assert parallel.exit_code == 0, parallel.output[-3000:]
    [row] = json.loads((tmp_path / "r" / "summary.json").read_text())["results"]
    [baseline] = json.loads((tmp_path / "m" / "summary.json").read_text())["results"]
    assert (row["strategy"], row["budget"], row["chains"], row["context"]) == ("revisions", 4, 2, 4)
    # Each question's second attempt of a chain reads the question, the first attempt and the request.
    assert row["prompt_tokens"] > 1.5 * baseline["prompt_tokens"]
    lines = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    for line in lines:
        assert [[a["seen"] for a in chain] for chain in line["chains"]] == [[0, 1], [0, 1]]
        assert [a["text"] for chain in line["chains"] for a in chain] == [c["text"] for c in line["candidates"]]


def pool_line(qid, gold, answers):
    return {"id": qid, "question": f"question {qid}", "gold": gold,
            "candidates": [{"text": f"work for {a}\n\nThe answer is: {a}", "answer": a, "finish_reason": "stop"}
                           for a in answers]}


def test_revision_examples_end_in_a_right_attempt_after_the_closest_wrong_one():
    from testtime.learn.revision_data import RevisionDataParams, revision_examples, similarity
    from testtime.strategies.revisions import Attempt, Revisions
    from testtime.strategies.base import make_candidate

    lines = [pool_line("a", "12", ["12", "13", "99999", "12", "1"]), pool_line("b", "7", ["3", "4"]),
             pool_line("c", "5", ["5"])]
    examples = revision_examples(lines, RevisionDataParams(max_wrong=4, per_question=2, seed=1))
    assert [e["id"] for e in examples] == ["a", "a", "c"]  # b has no right attempt; c has one
    for e in examples:
        roles = [m["role"] for m in e["prompt"]]
        assert roles == ["system", "user"] + ["assistant", "user"] * e["wrong_attempts"]
        [reply] = e["completion"]
        target = reply["content"]
        assert reply["role"] == "assistant" and target.endswith(lines[0]["gold"] if e["id"] == "a" else "5")
        wrong = [m["content"] for m in e["prompt"][2::2]]
        assert [similarity(w, target) for w in wrong] == sorted(similarity(w, target) for w in wrong)
    assert examples[-1]["wrong_attempts"] == 0  # c has no wrong attempt to show
    # The same conversation the revisions strategy builds for those attempts.
    e = max(examples, key=lambda e: e["wrong_attempts"])
    wrong = [m["content"] for m in e["prompt"][2::2]]
    task = Task("a", "question a", "12")
    prompt, seen = Revisions(budget=8, context=4).prompt(Context(generator=ScriptedGenerator(answers(0))), task,
                                                         [Attempt(make_candidate(w, 1), 0) for w in wrong])
    assert seen == len(wrong) and [{"role": r, "content": c} for r, c in prompt.messages] == e["prompt"]
    with pytest.raises(ValueError, match="max_wrong must be an integer >= 0"):
        RevisionDataParams(max_wrong=-1)


def test_trls_sft_trainer_learns_the_right_attempt_alone_from_revision_examples(tmp_path, model_dir):
    """The format end to end: the JSONL as written, read by `datasets`, trains a tiny random model
    (SmolLM2's tokenizer and template, 2 layers) for a few steps with TRL's SFTTrainer on the CPU."""
    import datasets
    import torch
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from testtime.learn.revision_data import revision_examples
    from tiny_model import tiny_model

    lines = [pool_line(q, "12", ["12", "13", "99999", "12", "1"]) for q in "abcd"]
    path = tmp_path / "revisions.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in revision_examples(lines)))
    train = datasets.load_dataset("json", data_files=str(path), split="train")
    model = tiny_model(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = SFTConfig(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-2,
                       logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, max_length=256, seed=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)
    # Prompt-completion examples: the loss is on the right attempt alone, never on the wrong ones shown.
    batch = next(iter(trainer.get_train_dataloader()))
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        learned = tokenizer.decode(ids[labels != -100])
        assert "The answer is: 12" in learned and "13" not in learned and "Check your previous" not in learned
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


@pytest.mark.engine
def test_revision_data_from_the_cli_on_the_demo_pool(demo_run, tmp_path):
    from typer.testing import CliRunner

    from testtime.cli import app

    out = tmp_path / "revisions.jsonl"
    done = CliRunner().invoke(app, ["revision-data", str(demo_run), "--out", str(out)])
    if "no question" in done.output:  # SmolLM2 may solve none of the demo's four questions
        assert done.exit_code == 2 and not out.exists()
    else:
        assert done.exit_code == 0, done.output[-2000:]
        examples = [json.loads(line) for line in out.read_text().splitlines()]
        assert examples and all([m["role"] for m in e["completion"]] == ["assistant"] for e in examples)
        assert f"wrote {len(examples)} examples" in " ".join(done.output.split())
    missing = CliRunner().invoke(app, ["revision-data", str(tmp_path / "none"), "--out", str(out)])
    assert missing.exit_code == 2 and "holds no run" in " ".join(missing.output.split())
    if "no question" not in done.output:  # an --out that cannot be written is a clear error, not a traceback
        unwritable = CliRunner().invoke(app, ["revision-data", str(demo_run), "--out", str(tmp_path)])
        assert unwritable.exit_code == 2 and "cannot write" in " ".join(unwritable.output.split())


def test_a_sweep_over_chains_keeps_each_ratio_apart_and_a_policy_can_choose_one(tmp_path):
    """Units of one strategy that differ in a parameter are separate curves, and a policy that picks
    one runs it with its own parameters (scripted generator; the fake report run has a pool)."""
    from report_fixture import fake_run, make_tasks
    from testtime.analysis.sweep import SweepAnalysis, run_labels
    from testtime.runner import Unit

    assert run_labels([{"strategy": "revisions", "budget": 4, "chains": 1, "context": 4, "seed": 0},
                       {"strategy": "revisions", "budget": 4, "chains": 2, "context": 4, "seed": 1},
                       {"strategy": "majority", "budget": 4, "seed": 0}]) == [
        "revisions[chains=1]", "revisions[chains=2]", "majority"]
    tasks = make_tasks(8)
    units = fake_run(tasks, seeds=(0,))  # a pool, two beam searches, revisions with chains=2
    gen = ScriptedGenerator(lambda question, index: f"The answer is: {index % 3}")
    sequential = Unit(Strategy.create("revisions", budget=4, chains=1), 0)
    units.append(({**sequential.description()}, [sequential.line(r) for r in sequential.strategy.solve(
        tasks, Context(generator=gen))]))
    analysis = SweepAnalysis(units, strategies=["majority", "best_of_n"])
    labels = {(p.strategy, p.budget) for p in analysis.points if p.source == "run"}
    assert {("revisions[chains=1]", 4), ("revisions[chains=2]", 4)} <= labels
    options = {o.label: o for o in analysis.options()}
    assert options["revisions[chains=1]@4"].name == "revisions" and options["revisions[chains=1]@4"].params["chains"] == 1
    policy = analysis.deployable_policy()
    for table in policy["budgets"].values():
        for choice in table["choices"]:  # every choice can be created as written
            made = Strategy.create(choice["strategy"], budget=choice["budget"], **choice.get("params", {}))
            assert made.name == choice["strategy"]
