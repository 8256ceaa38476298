import math

import numpy as np
import pytest

from bench import metrics


def test_hand_computed_case():
    truth = {1: 100.0, 2: 10.0, 3: 500.0, 4: 50.0}
    guesses = {1: 130.0, 2: 60.0, 3: 300.0, 4: None}  # errors 30, 50, 200; 4 unanswered
    s = metrics.score(truth, guesses)
    assert s.answered == 3 and s.total == 4
    assert s.mae == pytest.approx((30 + 50 + 200) / 3)
    assert s.median_error == pytest.approx(50)
    assert s.coverage == pytest.approx(0.75)
    # 30 < 40 -> green; 50 is 500% of 10 but < 80 -> orange; 200 is 40% of 500 -> red
    assert s.hit_rate == pytest.approx(1 / 3)
    assert s.orange_rate == pytest.approx(1 / 3)
    expected = math.sqrt(np.mean([(math.log(131) - math.log(101)) ** 2,
                                  (math.log(61) - math.log(11)) ** 2,
                                  (math.log(301) - math.log(501)) ** 2]))
    assert s.rmsle == pytest.approx(expected)
    lo, hi = s.mae_ci95
    assert 30 <= lo <= s.mae <= hi <= 200


def test_missing_answers_never_count_as_zero():
    truth = {1: 100.0, 2: 900.0}
    s = metrics.score(truth, {1: 100.0})
    assert s.mae == 0.0 and s.answered == 1 and s.coverage == 0.5


def test_no_answers():
    s = metrics.score({1: 5.0}, {1: None})
    assert s.answered == 0 and s.mae is None and s.hit_rate is None


@pytest.mark.parametrize(("error", "truth", "colour"), [
    (39.9, 1000, "green"), (100, 600, "green"), (40, 100, "orange"), (79, 10, "orange"),
    (150, 400, "orange"), (80, 100, "red"), (400, 1000, "red"),
])
def test_bands(error, truth, colour):
    assert metrics.band(error, truth) == colour


def test_bootstrap_is_seeded():
    values = np.arange(100, dtype=float)
    assert metrics.bootstrap_ci(values) == metrics.bootstrap_ci(values)
    assert metrics.bootstrap_ci(values, seed=1) != metrics.bootstrap_ci(values, seed=2)


def test_paired_hand_made_case():
    truth = {i: 100.0 for i in range(6)}
    a = {i: 100.0 + e for i, e in enumerate([0, 0, 0, 0, 10, 10])}
    b = {i: 100.0 + e for i, e in enumerate([50, 50, 50, 50, 10, 0])}
    b[6] = 1.0  # not in truth: ignored
    p = metrics.paired(truth, a, b)
    assert p.items == 6
    assert p.diff == pytest.approx((0 + 0 + 0 + 0 + 0 + 10 - 200) / 6)
    assert p.a_wins == pytest.approx(4 / 6) and p.b_wins == pytest.approx(1 / 6)
    assert p.ties == pytest.approx(1 / 6)
    lo, hi = p.diff_ci95
    assert lo <= p.diff <= hi and hi < 0 and not p.tied


def test_paired_identical_is_tied():
    truth = {i: float(i + 10) for i in range(20)}
    guesses = {i: float(i) for i in range(20)}
    assert metrics.paired(truth, guesses, guesses).tied


def test_figures_do_not_depend_on_the_order_answers_were_stored_in():
    """A run's predictions.jsonl lists answers in completion order; `bench run`
    scored them in id order, `score`/`leaderboard`/`show` in file order."""
    rng = np.random.default_rng(7)
    ids = list(range(251))
    truth = {i: float(rng.uniform(5, 900)) for i in ids}
    a = {i: truth[i] * float(rng.uniform(0.3, 2.0)) for i in ids}
    b = {i: truth[i] * float(rng.uniform(0.5, 1.6)) for i in ids}
    a[3] = b[9] = None
    expected = metrics.score(truth, a)
    expected_pair = metrics.paired(truth, a, b)
    for seed in range(3):
        order = list(rng.permutation(ids))
        shuffled_truth = {int(i): truth[i] for i in order}
        shuffled_a = {int(i): a[i] for i in reversed(order)}
        shuffled_b = {int(i): b[i] for i in order}
        assert metrics.score(shuffled_truth, shuffled_a) == expected, seed
        assert metrics.paired(shuffled_truth, shuffled_a, shuffled_b) == expected_pair, seed
