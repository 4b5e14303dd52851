"""Per-arm intervals from the per-row sums: Wilson for proportions, the delta method for
ratios, the normal approximation for differences; they cover the truth as often as they say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mizzen.signals.stats import Moments, choose_control, difference, estimate


def moments(x: np.ndarray, y: np.ndarray | None = None) -> Moments:
    y = np.ones_like(x) if y is None else y
    return Moments(len(x), x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())


def test_a_proportion_gets_wilsons_interval() -> None:
    e = estimate(moments(np.array([1.0] * 50 + [0.0] * 50)), 0.95)
    assert e.method == "wilson"
    assert (e.low, e.high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    # near 0 it stays inside [0, 1], unlike the normal approximation
    edge = estimate(moments(np.array([1.0] + [0.0] * 99)), 0.95)
    assert 0 < edge.low < 0.01 and edge.high == pytest.approx(0.0545, abs=1e-3)


def test_a_mean_and_a_ratio_get_the_delta_method() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, 500)
    e = estimate(moments(x), 0.95)
    half = 1.959964 * x.std(ddof=1) / math.sqrt(len(x))
    assert e.method == "normal"
    assert (e.low, e.high) == (pytest.approx(x.mean() - half), pytest.approx(x.mean() + half))
    y = rng.integers(1, 5, 500).astype(float)
    num = y * rng.normal(3, 1, 500)
    m = moments(num, y)
    r = num.sum() / y.sum()
    assert m.value == pytest.approx(r)
    want = np.var(num - r * y, ddof=1) / (len(y) * y.mean() ** 2)
    assert m.variance() == pytest.approx(want, rel=1e-9)


def test_the_difference_of_two_proportions() -> None:
    a = moments(np.array([1.0] * 500 + [0.0] * 500))
    b = moments(np.array([1.0] * 550 + [0.0] * 450))
    d = difference("B", b, "A", a, 0.95)
    se = math.sqrt(0.25 / 1000 + 0.55 * 0.45 / 1000)
    assert d.difference == pytest.approx(0.05)
    assert (d.low, d.high) == (
        pytest.approx(0.05 - 1.959964 * se),
        pytest.approx(0.05 + 1.959964 * se),
    )
    assert d.p_value == pytest.approx(0.0254, abs=1e-3)
    assert d.relative == pytest.approx(0.1)
    assert d.method == "normal, proportions"


def test_intervals_cover_the_true_difference_about_as_often_as_they_say() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    trials = 400
    for _ in range(trials):
        a = (rng.random(800) < 0.30).astype(float)
        b = (rng.random(800) < 0.33).astype(float)
        d = difference("B", moments(b), "A", moments(a), 0.9)
        hits += d.low <= 0.03 <= d.high
    assert 0.86 <= hits / trials <= 0.94


def test_moments_of_buckets_add_up_to_the_whole() -> None:
    x = np.arange(10, dtype=float)
    assert moments(x[:4]) + moments(x[4:]) == moments(x)
    assert Moments.total([moments(x[:4]), moments(x[4:])]).value == pytest.approx(4.5)


def test_the_control_arm() -> None:
    assert choose_control(["B", "control", "A"], None) == "control"
    assert choose_control(["B", "A"], None) == "A"
    assert choose_control(["B", "A"], "B") == "B"
    assert choose_control(["B", "A"], "C") is None
