"""Summaries of repeated measurements that don't flatter (pure; no Docker).

One rule for every figure the lab reports over several runs: failover reports,
the soak and the benchmarks.

- **Invalid runs** (a baseline that was not clean, a failback measured from a
  disturbed start) are left out of every statistic and counted: `invalid`.
- **Never converged**: a valid run that never reached the figure within its
  window is given as None. It is a measurement, counted in `n` and in `never`,
  and ranks above every value that converged. It is never replaced by a
  number cut off at the window's end.
- **Minimum** is the least converged value (None only when none converged).
- **Maximum** is None ("never") as soon as one run never converged.
- **Median** is the conventional one over all `n` valid runs, never-converged
  runs ranked last: the middle value for an odd N, the mean of the two middle
  values for an even N. It is None ("never") when half or more of the valid
  runs never converged: then the middle value, or one of the middle pair, is
  such a run (for an odd N that is more than half; for an even N exactly half
  is enough, as the mean of a time and "never" is "never"). Leaving those runs
  out instead would give two runs, one at 1 s and one that never converged, a
  median of 1 s: the better run, which is what a median must not be.
- **p95** is nearest-rank (the smallest value with at least 95 % of the runs at
  or below it; Hyndman & Fan type 1, R's `quantile(type = 1)`), so it is always
  a value that was measured, and it is None ("never") when its rank falls on a
  run that never converged. It is given only from `P95_MIN_N` valid runs on.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

# The 95th percentile needs at least 20 values to be anything but the maximum:
# below 20, fewer than one run in twenty can lie above it, so its rank,
# ceil(0.95 N), is N itself and a "p95" would be the maximum under another name.
P95_MIN_N = 20
# The statistics a summary shows, in order, and the fields that hold them.
STATISTICS = {"min": "minimum", "median": "median", "max": "maximum", "p95": "p95"}


@dataclass(frozen=True)
class Summary:
    """A figure over repeated runs: `n` valid runs, of which `never` never converged; `invalid` left out."""
    n: int
    invalid: int
    never: int
    minimum: float | None
    median: float | None
    maximum: float | None
    p95: float | None           # None below P95_MIN_N valid runs, or when its rank is a run that never converged

    @property
    def converged(self) -> int:
        return self.n - self.never

    @property
    def has_p95(self) -> bool:
        """Whether N supports a p95 (it may still be "never")."""
        return self.n >= P95_MIN_N

    def statistic(self, name: str) -> float | None:
        """One of STATISTICS by name."""
        return getattr(self, STATISTICS[name])

    def counts(self) -> str:
        """N, invalid and never converged: what every figure is shown with."""
        return f"N={self.n}, {self.invalid} invalid, {self.never} never converged"

    def text(self, unit: str = "s", digits: int = 2) -> str:
        """One line: 'median 3.36 s (min 3.30, max 3.42; N=5, 1 invalid, 0 never converged)'."""
        if self.n == 0:
            return f"no valid runs ({self.counts()})"

        def fmt(value: float | None) -> str:
            return "never" if value is None else f"{value:.{digits}f}"

        spread = f"min {fmt(self.minimum)}, max {fmt(self.maximum)}"
        if self.has_p95:
            spread += f", p95 {fmt(self.p95)}"
        head = fmt(self.median) + (f" {unit}" if unit and self.median is not None else "")
        return f"median {head} ({spread}; {self.counts()})"

    def as_dict(self, digits: int | None = None) -> dict:
        """The fields as a dict (for JSON), the values rounded to `digits` if given."""
        data = asdict(self)
        if digits is not None:
            for key in STATISTICS.values():
                if data[key] is not None:
                    data[key] = round(data[key], digits)
        return data



def shown(summaries: Iterable[Summary]) -> list[str]:
    """The statistics to show for these summaries side by side: p95 only where one of them supports it."""
    return ["min", "median", "max"] + (["p95"] if any(s.has_p95 for s in summaries) else [])


def summarize(values: Iterable[float | None], invalid: int = 0) -> Summary:
    """The summary of the valid runs' values (None: never converged); `invalid`: how many runs were left out."""
    values = list(values)
    done = sorted(v for v in values if v is not None)
    never = len(values) - len(done)
    n = len(values)

    def ranked(i: int) -> float | None:
        """The i-th smallest over all runs (0-based), a run that never converged ranking last."""
        return done[i] if i < len(done) else None

    median = None
    if n % 2:
        median = ranked(n // 2)
    elif n:
        low, high = ranked(n // 2 - 1), ranked(n // 2)
        # As statistics.median does it, so both agree to the last bit, but not past the largest float.
        median = None if high is None else (low + high) / 2
        if median is not None and math.isinf(median):
            median = low / 2 + high / 2
    # The rank ceil(0.95 N), in integers so that no rounding can move it.
    p95 = ranked((95 * n + 99) // 100 - 1) if n >= P95_MIN_N else None
    return Summary(n=n, invalid=invalid, never=never, minimum=done[0] if done else None, median=median,
                   maximum=done[-1] if done and not never else None, p95=p95)
