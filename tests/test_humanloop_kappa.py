"""Agreement statistics against hand-worked textbook examples."""
import pytest

from stages.humanloop.kappa import agreement, cohen, fleiss


def test_cohen_kappa_textbook_yes_no():
    # Cohen's κ worked example (Wikipedia "Cohen's kappa"): 50 proposals, two readers;
    # both yes 20, A yes/B no 5, A no/B yes 10, both no 15 → p_o = 0.7, p_e = 0.5, κ = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen(a, b, ["yes", "no"]) == pytest.approx(0.4, abs=1e-4)


def test_cohen_kappa_three_categories_hand_worked():
    # accept/edit/reject, 8 items (the fixture round): p_o = 6/8, p_e = (4·4 + 2·3 + 2·1)/64 = 0.375
    # κ = (0.75 − 0.375) / (1 − 0.375) = 0.6
    a = ["accept", "accept", "accept", "reject", "edit", "accept", "reject", "edit"]
    b = ["accept", "accept", "accept", "reject", "edit", "edit", "accept", "edit"]
    assert cohen(a, b, ["accept", "edit", "reject"]) == pytest.approx(0.6, abs=1e-4)


def test_fleiss_kappa_textbook_table():
    # Fleiss' κ worked example (Wikipedia "Fleiss' kappa", after Fleiss 1971): 10 subjects, 14 raters,
    # 5 categories; P̄ = 0.378, P̄_e = 0.213 → κ = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    labels = ["1", "2", "3", "4", "5"]
    ratings = [[labels[j] for j, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss(ratings, labels) == pytest.approx(0.210, abs=5e-4)


def test_degenerate_and_bad_input():
    assert cohen(["accept"] * 4, ["accept"] * 4, ["accept", "edit"]) is None     # p_e = 1: undefined
    with pytest.raises(ValueError):
        cohen(["accept"], ["accept", "edit"], ["accept", "edit"])
    with pytest.raises(ValueError):
        fleiss([["a", "b"], ["a"]], ["a", "b"])
    rep = agreement({"x": ["a", "b", "a"], "y": ["a", "b", "b"]}, ["a", "b"])
    assert rep["pairs"]["x|y"]["percent_agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert rep["all_agree"] == pytest.approx(2 / 3, abs=1e-4)
