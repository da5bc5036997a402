"""Final selectors on small hand-made candidate sets whose right choice is known."""

from testtime.answers import normalize_answer
from testtime.selection import (Candidate, select, select_best, select_borda, select_majority, select_weighted,
                                vote_counts)


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


def test_borda_counts_ranks_not_scores():
    # At p = 1 ranks 1..4 weigh 4, 3, 2, 1: "3" (ranks 2 and 3) has 5 against "7"'s 4, however far
    # "7"'s score stands above the rest, which wins it the weighted vote.
    cands = [cand("7", 100.0), cand("3", 2.0), cand("3", 1.0), cand("1", 0.0)]
    assert select_weighted(cands).answer == "7"
    assert select_borda(cands, power=1.0).answer == "3"
    # p = 0 is majority voting; a large p follows the top-ranked candidate.
    three = [cand("5", 0.1), cand("5", 0.2), cand("9", 0.9)]
    assert select_borda(three, power=0.0).answer == select_majority(three).answer == "5"
    assert select_borda(three, power=8.0).answer == "9"
    assert select(three, "borda").answer == "5"  # p = 0.5: 1 + 2 ** 0.5 = 2.41 against 3 ** 0.5 = 1.73


def test_borda_ties_share_the_higher_rank_and_unscored_rank_last():
    # p = 1: the two tied at the top both weigh 3, so "8" has 3 + 1 against "4"'s 3 (ranked 1 and 2
    # by their order, the two answers would tie at 3 and "4", seen first, would win).
    assert select_borda([cand("4", 0.5), cand("8", 0.5), cand("8", 0.1)], power=1.0).answer == "8"
    # A candidate without a score ranks below a negative score.
    assert select_borda([cand("8", None), cand("2", -5.0)], power=1.0).answer == "2"


def test_unanswered_candidates_never_win_over_answered_ones():
    cands = [Candidate("rambling", None, None, score=1.0), cand("4", 0.1)]
    assert select_best(cands).answer == "4"
    assert select_majority(cands).answer == "4"
    assert select(cands, "weighted").answer == "4"
    assert select(cands, "borda").answer == "4"


def test_empty_and_all_unanswered():
    assert select_best([]) is None
    only = [Candidate("x", None, None)]
    assert select_majority(only) is only[0]
    assert vote_counts([cand("1"), cand("1"), cand("2")]) == [2, 1]
