"""Final selectors on small hand-made candidate sets whose right choice is known."""

from testtime.answers import normalize_answer
from testtime.selection import Candidate, select, select_best, select_majority, select_weighted, vote_counts


def cand(answer, score=None):
    return Candidate(text=f"... {answer}", answer=answer, key=normalize_answer(answer), score=score)


def test_majority_picks_most_frequent_answer():
    cands = [cand("3"), cand("5"), cand("5.0"), cand("7")]
    assert select_majority(cands).answer == "5"


def test_majority_tie_goes_to_first_seen():
    assert select_majority([cand("7"), cand("3"), cand("3"), cand("7")]).answer == "7"


def test_best_of_n_is_argmax_of_score():
    cands = [cand("3", 0.2), cand("5", 0.9), cand("5", 0.1), cand("7", 0.5)]
    assert select_best(cands).score == 0.9


def test_weighted_sums_scores_per_answer():
    # "7" has the single best score but "3" has the larger total.
    cands = [cand("7", 0.9), cand("3", 0.5), cand("3", 0.5)]
    assert select_best(cands).answer == "7"
    assert select_weighted(cands).answer == "3"


def test_unanswered_candidates_never_win_over_answered_ones():
    cands = [Candidate("rambling", None, None, score=1.0), cand("4", 0.1)]
    assert select_best(cands).answer == "4"
    assert select_majority(cands).answer == "4"
    assert select(cands, "weighted").answer == "4"


def test_empty_and_all_unanswered():
    assert select_best([]) is None
    only = [Candidate("x", None, None)]
    assert select_majority(only) is only[0]
    assert vote_counts([cand("1"), cand("1"), cand("2")]) == [2, 1]
