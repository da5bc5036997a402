"""The verifier as a stream (verifiers/gathered.py): callers on many threads, scored in shared batches.

The inner verifier is the real arithmetic one, held at a gate in its first call (a deterministic
stand-in for a slow model), so that which callers queue behind that call is known exactly."""

from __future__ import annotations

import threading
import time


from testtime.ledger import Ledger
from testtime.verifiers.arithmetic import ArithmeticVerifier
from testtime.verifiers.base import Solution
from testtime.verifiers.gathered import Gathered


class GatedArithmetic(ArithmeticVerifier):
    """Records each batch's size; the first batch waits until ``gate`` opens; ``fail`` makes a batch raise."""

    def __init__(self):
        super().__init__()
        self.gate, self.sizes, self.fail = threading.Event(), [], False

    def _score(self, solutions):
        self.sizes.append(len(solutions))
        if len(self.sizes) == 1:
            assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("the verifier broke")
        return super()._score(solutions)


def solution(k: int) -> Solution:
    right = k % 2 == 0  # even: a true claim, odd: a false one
    return Solution("What is 2 + 3?", f"2 + 3 = {5 if right else 6}\n\nThe answer is: {5 if right else 6}")


def queued(gathered: Gathered, callers: int) -> None:
    deadline = time.monotonic() + 10
    while len(gathered._queue) < callers and time.monotonic() < deadline:
        time.sleep(0.005)


def run_callers(gathered: Gathered, groups: list[list[Solution]]):
    """The first group scores alone (and is held at the gate); the others queue behind it, then go."""
    results, errors, ledgers = {}, {}, {i: [Ledger() for _ in g] for i, g in enumerate(groups)}

    def call(i):
        try:
            results[i] = gathered.score_steps(groups[i], ledgers[i])
        except RuntimeError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(groups))]
    threads[0].start()
    while not gathered.inner.sizes:
        time.sleep(0.005)
    for t in threads[1:]:
        t.start()
    queued(gathered, len(groups) - 1)
    return threads, results, errors, ledgers


def test_callers_waiting_on_a_busy_verifier_share_its_next_batch_and_get_their_own_scores():
    inner = GatedArithmetic()
    gathered = Gathered(inner)
    groups = [[solution(0)], [solution(1), solution(2)], [solution(3)], [solution(4), solution(5), solution(6)]]
    threads, results, errors, ledgers = run_callers(gathered, groups)
    inner.gate.set()
    for t in threads:
        t.join(10)
    assert not errors and inner.sizes == [1, 6] and gathered.batches == 2  # three callers, one batch
    direct = ArithmeticVerifier()
    for i, group in enumerate(groups):
        assert results[i] == direct.score_steps(group)  # each caller's own, in its order
        assert all(l.verifier_calls == 1 and l.verifier_tokens == r.tokens for l, r in zip(ledgers[i], results[i]))
    assert [s.scores[0] > 0.5 for s in results[1]] == [False, True]


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_caller_still_scores():
    inner = GatedArithmetic()
    gathered = Gathered(inner)
    threads, results, errors, _ = run_callers(gathered, [[solution(0)], [solution(1)], [solution(2)]])
    inner.fail = True
    inner.gate.set()
    for t in threads:
        t.join(10)
    assert sorted(errors) == [0, 1, 2] and not results
    inner.fail = False
    assert gathered.score_steps([solution(4)]) == ArithmeticVerifier().score_steps([solution(4)])
    assert gathered.score_steps([]) == []
