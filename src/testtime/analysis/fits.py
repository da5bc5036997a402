"""Fitted scaling laws: accuracy = a + b ln(compute), and coverage pass@k = exp(a k^b).

Both are ordinary least squares on transformed data, so their extrapolations
carry the usual prediction interval of a linear regression.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class LinearFit:
    """y = intercept + slope * x, with what a reader needs to judge and extend it."""

    intercept: float
    slope: float
    r2: float | None  # None when y does not vary
    slope_stderr: float | None  # None with two points, or when y does not vary
    points: int
    x_mean: float
    sxx: float  # sum of squared deviations of x
    residual_std: float

    def predict(self, x: float, level: float = 0.95) -> tuple[float, float, float]:
        """Prediction at x with its interval for the mean (nan-wide with fewer than 3 points)."""
        y = self.intercept + self.slope * x
        if self.points < 3 or self.sxx == 0:
            return (y, math.nan, math.nan)
        t = stats.t.ppf(0.5 + level / 2, self.points - 2)
        half = t * self.residual_std * math.sqrt(1 / self.points + (x - self.x_mean) ** 2 / self.sxx)
        return (y, y - half, y + half)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_line(x: Sequence[float], y: Sequence[float]) -> LinearFit:
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.size < 2 or np.ptp(xs) == 0:
        raise ValueError(f"a line needs at least two distinct x values, got {xs.tolist()}")
    result = stats.linregress(xs, ys)
    residuals = ys - (result.intercept + result.slope * xs)
    dof = max(xs.size - 2, 1)
    return LinearFit(
        # R^2 is undefined when y does not vary (constant accuracy): None, never NaN in a JSON file.
        intercept=float(result.intercept), slope=float(result.slope),
        r2=float(result.rvalue**2) if np.ptp(ys) > 0 else None,
        slope_stderr=float(result.stderr) if xs.size > 2 and math.isfinite(result.stderr) else None,
        points=int(xs.size),
        x_mean=float(xs.mean()), sxx=float(((xs - xs.mean()) ** 2).sum()),
        residual_std=float(math.sqrt((residuals**2).sum() / dof)),
    )


@dataclass(frozen=True)
class LogComputeFit:
    """accuracy = a + b ln(compute)."""

    line: LinearFit
    axis: str  # what compute is: "tokens" or "flops"

    @property
    def slope(self) -> float:
        return self.line.slope

    def predict(self, compute: float) -> tuple[float, float, float]:
        return self.line.predict(math.log(compute))

    def to_dict(self) -> dict:
        return {"axis": self.axis, "a": self.line.intercept, "b": self.line.slope, "r2": self.line.r2,
                "b_stderr": self.line.slope_stderr, "points": self.line.points}


def fit_log_compute(compute: Sequence[float], accuracy: Sequence[float], axis: str = "tokens") -> LogComputeFit:
    if any(c <= 0 for c in compute):
        raise ValueError(f"compute must be positive to take its log, got {list(compute)}")
    return LogComputeFit(fit_line(np.log(compute), accuracy), axis)


@dataclass(frozen=True)
class CoverageFit:
    """pass@k = exp(a k^b), fitted as ln(-ln pass@k) = ln(-a) + b ln k (Brown et al. 2024)."""

    line: LinearFit

    @property
    def a(self) -> float:
        return -math.exp(self.line.intercept)

    @property
    def b(self) -> float:
        return self.line.slope

    def predict(self, k: float) -> tuple[float, float, float]:
        """pass@k and its interval; a larger ln(-ln) means lower coverage, so the bounds swap."""
        mid, lo, hi = self.line.predict(math.log(k))
        back = lambda v: math.exp(-math.exp(v)) if not math.isnan(v) else math.nan  # noqa: E731
        return (back(mid), back(hi), back(lo))

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "r2": self.line.r2, "points": self.line.points}


def fit_coverage(k: Sequence[float], coverage: Sequence[float]) -> CoverageFit:
    """Fit on the points strictly between 0 and 1 (the transform is infinite at the ends)."""
    usable = [(kk, c) for kk, c in zip(k, coverage) if 0 < c < 1]
    if len(usable) < 2:
        raise ValueError("the coverage law needs at least two pass@k values strictly between 0 and 1")
    ks, cs = zip(*usable)
    return CoverageFit(fit_line(np.log(ks), np.log(-np.log(cs))))
