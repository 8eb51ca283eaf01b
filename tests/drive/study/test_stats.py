"""Bootstrap intervals of a study: checked against known cases (large-sample normal theory), degenerate
inputs, and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drive.study.stats import Interval, difference_interval, mean_interval


def test_mean_interval_matches_normal_theory_on_a_large_sample():
    x = np.random.default_rng(7).normal(3.0, 2.0, size=400)
    iv = mean_interval(list(x))
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)  # the CLT interval the bootstrap must approach
    assert iv.mean == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert iv.high == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert iv.n == 400 and iv.resolved


def test_difference_interval_matches_normal_theory():
    rng = np.random.default_rng(11)
    a, b = rng.normal(1.0, 1.0, 300), rng.normal(1.3, 2.0, 500)
    iv = difference_interval(list(a), list(b))
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert iv.mean == pytest.approx(a.mean() - b.mean())
    assert iv.low == pytest.approx(iv.mean - 1.96 * se, abs=0.12 * se)
    assert iv.high == pytest.approx(iv.mean + 1.96 * se, abs=0.12 * se)


def test_small_samples_stay_inside_the_data_and_are_deterministic():
    values = [0.4, 1.0, 2.2]
    first, second = mean_interval(values), mean_interval(values)
    assert first == second
    assert min(values) <= first.low <= first.mean <= first.high <= max(values)


def test_degenerate_and_missing_values():
    same = mean_interval([2.0, 2.0, 2.0])
    assert (same.low, same.mean, same.high) == (2.0, 2.0, 2.0) and same.resolved
    assert math.isnan(mean_interval([1.0]).low) and mean_interval([1.0]).n == 1
    assert mean_interval([float("nan"), None, 1.0, 3.0]).n == 2
    none = mean_interval([])
    assert none.n == 0 and math.isnan(none.mean) and none.format() == "–"
    zero = difference_interval([0.0, 0.0], [0.0, 0.0])
    assert (zero.mean, zero.low, zero.high) == (0.0, 0.0, 0.0) and not zero.resolved


def test_resolved_means_the_interval_excludes_zero():
    assert Interval(1.0, 0.2, 1.5, 3).resolved
    assert Interval(-1.0, -1.5, -0.1, 3).resolved
    assert not Interval(0.5, -0.2, 1.5, 3).resolved
    assert Interval(0.5, -0.2, 1.5, 3).format(1) == "0.5 [-0.2, 1.5]"
    assert Interval(0.5, math.nan, math.nan, 1).to_dict() == {"mean": 0.5, "low": None, "high": None, "n": 1}


def test_the_reading_names_resolved_differences_and_leaves_identical_levels_out():
    from drive.study.study_report import reading

    diffs = {
        "lstm": {0.0: Interval(0.0, 0.0, 0.0, 3), 0.2: Interval(-4.0, -6.0, -1.0, 3)},
        "cnn": {0.0: Interval(0.0, 0.0, 0.0, 3), 0.2: Interval(1.0, -2.0, 3.0, 3)},
    }
    text = reading("ncp-ltc", diffs, [0.0, 0.2])
    assert text.startswith("At σ² = 0 every model drove alike")
    assert "lstm needed fewer interventions per km than ncp-ltc at σ² = 0.2 (-4.00 [-6.00, -1.00])" in text
    assert "Not resolved (the interval includes 0): cnn at σ² = 0.2." in text
    none = reading("ncp-ltc", {"cnn": {0.2: Interval(1.0, -2.0, 3.0, 3)}}, [0.2])
    assert "No difference from ncp-ltc is resolved" in none
