"""Program of thought: math questions answered by programs run in the sandbox, and the verifier that
checks a chain-of-thought answer by how many programs agree with it (no model: replies and the
verifier's programs are scripted here; the programs run for real)."""

from __future__ import annotations

from fakes import ScriptedGenerator

from testtime.domains import Reply, grade_results, make_candidates
from testtime.programs import program_block
from testtime.prompting import PromptTemplate
from testtime.selection import select_majority
from testtime.tasks import Task
from testtime.verifiers import Solution
from testtime.verifiers.program_agreement import ProgramAgreement

TASK = Task(id="q", question="Eggs: 16 laid, 3 eaten, 4 baked, the rest sold at $2. How much?", answer="18",
            domain="program")


def block(code: str) -> str:
    return f"Here is the program.\n```python\n{code}\n```\n"


def test_the_prompt_asks_for_a_program_and_the_answer_is_what_it_prints():
    assert "Python program" in PromptTemplate().build(TASK).messages[0][1]
    texts = [block("print((16 - 3 - 4) * 2.0)"), block("x = (16 - 3 - 4) * 2\nprint(f'The answer is {x}')"),
             block("print(16 - 3 - 4)"), block("raise ValueError"), "no program at all", ""]
    candidates = make_candidates([Reply(TASK, t, 5) for t in texts])
    assert [c.answer for c in candidates] == ["18.0", "18", "9", None, None, None]  # read as math reads text
    assert [c.key for c in candidates] == ["18", "18", "9", None, None, None]  # 18.0 and 18 vote together
    grade_results([(TASK, candidates)])
    assert [c.correct for c in candidates] == [True, True, False, False, False, False]
    assert select_majority(candidates).key == "18"  # votes over the executed answers


def test_the_program_is_run_as_written_prints_and_main_guard_included():
    code = "def main():\n    print(3)\n\nif __name__ == '__main__':\n    main()"
    assert program_block(block(code)) == code + "\n"
    [candidate] = make_candidates([Reply(TASK, block(code), 5)])
    assert candidate.answer == "3"


def test_program_agreement_scores_the_share_of_k_programs_that_print_the_answer():
    programs = [block("print(18)"), block("print(9 * 2.0)"), block("print(7)"), "no code"]
    writer = ScriptedGenerator(lambda question, k: programs[k % 4])
    verifier = ProgramAgreement(writer, programs=4)
    scored = verifier.score_steps([Solution(TASK.question, "So \\boxed{18}"), Solution(TASK.question, "It is 7."),
                                   Solution(TASK.question, "I do not know")])
    assert [s.scores[0] for s in scored] == [0.5, 0.25, 0.0]
    assert scored[0].tokens > 0 and scored[1].tokens == 0  # K programs per question, charged once
    verifier.score([Solution(TASK.question, "\\boxed{18}")])
    assert len(writer.calls) == 1  # a question's programs are written once
