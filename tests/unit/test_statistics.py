"""One summary of repeated runs (lab.statistics): N, invalid and never-converged runs, min / median / max,
p95 from 20 runs on, and the one-line text every report and script shows."""
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.failover.statistics import P95_MIN_N, Summary, shown, summarize

values = st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=60)
# Where the sum of the middle two still fits in a float (past it, statistics.median says inf).
modest = st.lists(st.floats(min_value=-1e300, max_value=1e300), min_size=1, max_size=60)


def test_one_run_is_its_own_min_median_and_max():
    assert summarize([3.3]) == Summary(n=1, invalid=0, never=0, minimum=3.3, median=3.3, maximum=3.3, p95=None)


def test_the_median_of_two_runs_is_their_mean_not_the_better_run():
    s = summarize([1.0, 2.0])
    assert (s.minimum, s.median, s.maximum) == (1.0, 1.5, 2.0)


def test_the_median_of_four_runs_is_the_mean_of_the_middle_two():
    assert summarize([4.0, 1.0, 3.0, 2.0]).median == 2.5


def test_nineteen_runs_have_no_p95():
    s = summarize([float(i) for i in range(1, 20)])
    assert (s.n, s.median, s.maximum, s.p95, s.has_p95) == (19, 10.0, 19.0, None, False)
    assert "p95" not in s.text() and shown([s]) == ["min", "median", "max"]


def test_twenty_runs_have_a_nearest_rank_p95():
    # Nearest rank: the ceil(0.95 * 20) = 19th smallest value, the first N where that is not the maximum.
    s = summarize([float(i) for i in range(20, 0, -1)])
    assert (s.n, P95_MIN_N, s.p95, s.maximum, s.median) == (20, 20, 19.0, 20.0, 10.5)
    assert s.text() == "median 10.50 s (min 1.00, max 20.00, p95 19.00; N=20, 0 invalid, 0 never converged)"
    assert shown([summarize([1.0]), s]) == ["min", "median", "max", "p95"]
    # Forty runs: the 38th.
    assert summarize([float(i) for i in range(1, 41)]).p95 == 38.0


def test_a_run_that_never_converged_is_counted_and_makes_the_max_never():
    s = summarize([1.0, None, 3.0, 2.0, 4.0], invalid=1)
    assert (s.n, s.invalid, s.never, s.converged) == (5, 1, 1, 4)
    # Ranked last: 1, 2, 3, 4, never.
    assert (s.minimum, s.median, s.maximum) == (1.0, 3.0, None)
    assert s.text() == "median 3.00 s (min 1.00, max never; N=5, 1 invalid, 1 never converged)"


def test_the_median_is_never_when_half_or_more_never_converged():
    # Odd N: more than half.
    assert summarize([1.0, 2.0, None]).median == 2.0
    assert summarize([1.0, None, None]).median is None
    # Even N: exactly half puts a never in the middle pair; leaving it out would report the better run.
    assert summarize([1.0, None]).median is None
    assert summarize([1.0, 2.0, None, None]).median is None
    assert summarize([1.0, 2.0, 3.0, None]).median == 2.5
    s = summarize([None, None])
    assert (s.n, s.never, s.minimum, s.median, s.maximum) == (2, 2, None, None, None)
    assert s.text() == "median never (min never, max never; N=2, 0 invalid, 2 never converged)"


def test_p95_is_never_when_its_rank_falls_on_a_run_that_never_converged():
    twenty = [float(i) for i in range(1, 20)]
    assert summarize(twenty + [None]).p95 == 19.0       # 1 of 20 never: 95 % converged within 19
    assert summarize(twenty[:-1] + [None, None]).p95 is None


def test_all_invalid_and_empty():
    s = summarize([], invalid=3)
    assert s == Summary(n=0, invalid=3, never=0, minimum=None, median=None, maximum=None, p95=None)
    assert s.text() == "no valid runs (N=0, 3 invalid, 0 never converged)"
    assert summarize([]) == Summary(0, 0, 0, None, None, None, None)


def test_text_and_dict_forms():
    s = summarize([3.30, 3.42, 3.36, 3.35, 3.40], invalid=1)
    assert s.text() == "median 3.36 s (min 3.30, max 3.42; N=5, 1 invalid, 0 never converged)"
    assert summarize([612.4, 640.9, 598.0]).text("Mbit/s", 0) == \
        "median 612 Mbit/s (min 598, max 641; N=3, 0 invalid, 0 never converged)"
    assert s.as_dict(1) == {"n": 5, "invalid": 1, "never": 0, "minimum": 3.3, "median": 3.4, "maximum": 3.4,
                            "p95": None}
    assert s.statistic("median") == s.median and s.statistic("max") == s.maximum
    with pytest.raises(Exception):
        s.n = 4                                          # a value, frozen


@given(values, st.integers(min_value=0, max_value=5))
def test_min_le_median_le_max(xs, missing):
    s = summarize(xs + [None] * missing)
    top = max(xs) if s.maximum is None else s.maximum      # "never" ranks above every value
    assert s.minimum <= top
    if s.median is not None:
        assert s.minimum <= s.median <= top
    if s.p95 is not None:
        assert s.median <= s.p95 <= top


@given(modest)
def test_with_nothing_missing_the_median_is_statistics_median(xs):
    s = summarize(xs)
    assert s.median == statistics.median(xs)
    assert (s.minimum, s.maximum, s.n, s.never) == (min(xs), max(xs), len(xs), 0)


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), max_size=60),
       st.randoms(use_true_random=False))
def test_order_does_not_matter(xs, rng: random.Random):
    shuffled = list(xs)
    rng.shuffle(shuffled)
    assert summarize(shuffled) == summarize(xs)
