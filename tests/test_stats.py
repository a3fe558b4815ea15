"""Statistics on known samples, against hand-worked values and numpy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.stats import NOISY_REL_IQR, Summary, rel_iqr, summarize


def test_known_samples_by_hand():
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    # Linear interpolation: q25 at position 1 (2.0), q75 at position 3 (4.0).
    assert s == Summary(median_s=3.0, iqr_s=2.0, mean_s=4.0, std_s=math.sqrt(12.5), min_s=1.0, max_s=10.0,
                        n_samples=5)
    assert s.rel_iqr == pytest.approx(2.0 / 3.0)


def test_even_count_interpolates():
    s = summarize([4.0, 1.0, 3.0, 2.0])  # order does not matter
    assert s.median_s == 2.5
    assert s.iqr_s == pytest.approx(3.25 - 1.75)  # q25 = 1 + 0.75*(2-1), q75 = 3 + 0.25*(4-3)
    assert s.std_s == pytest.approx(np.std([1, 2, 3, 4], ddof=1))


def test_single_sample():
    s = summarize((5e-6,))
    assert (s.median_s, s.iqr_s, s.std_s, s.min_s, s.max_s, s.n_samples) == (5e-6, 0.0, 0.0, 5e-6, 5e-6, 1)
    assert s.rel_iqr == 0.0


def test_empty_and_zero_median():
    with pytest.raises(ValueError):
        summarize([])
    assert rel_iqr([]) == math.inf
    assert summarize([0.0, 0.0, 0.0]).rel_iqr == math.inf


def test_rel_iqr_helper_and_noise_threshold():
    assert rel_iqr([1.0, 1.0, 1.0, 1.0]) == 0.0
    noisy = [1.0, 1.0, 1.5, 2.0, 2.0]
    assert rel_iqr(noisy) == pytest.approx(1.0 / 1.5) and rel_iqr(noisy) > NOISY_REL_IQR
    assert NOISY_REL_IQR == 0.1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-9, max_value=1.0, allow_nan=False), min_size=2, max_size=40))
def test_agrees_with_numpy(samples):
    s = summarize(samples)
    a = np.asarray(samples)
    q25, q50, q75 = np.percentile(a, [25, 50, 75])  # numpy's default method is linear interpolation
    assert s.median_s == pytest.approx(q50, rel=1e-12, abs=1e-18)
    assert s.iqr_s == pytest.approx(q75 - q25, rel=1e-9, abs=1e-15)
    assert s.mean_s == pytest.approx(a.mean(), rel=1e-12)
    assert s.std_s == pytest.approx(a.std(ddof=1), rel=1e-9, abs=1e-15)
    assert (s.min_s, s.max_s, s.n_samples) == (a.min(), a.max(), len(a))
    assert s.rel_iqr == pytest.approx((q75 - q25) / q50, rel=1e-9, abs=1e-12)
