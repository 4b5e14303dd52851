"""Per-arm values with confidence intervals, from the per-row sums the values table keeps.

For a ratio R = Σx / Σy over n rows (a mean: y = 1) the variance is the delta method's,
Var(R) ≈ (s_xx - 2R·s_xy + R²·s_yy) / (n·ȳ²) with s the sample (co)variances. A mean of a
0/1 value is a proportion: its own interval is Wilson's score interval, its variance
p(1-p)/n. The difference of two arms (arm - control) uses the normal approximation with
unpooled variances: d ± z·√(Var_a + Var_b), with a two-sided p-value. Sums and counts grow
with the sample, so they get no interval; an `expression` keeps no per-row sums.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any


@dataclass(frozen=True)
class Moments:
    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.n + other.n,
            self.sx + other.sx,
            self.sy + other.sy,
            self.sxx + other.sxx,
            self.syy + other.syy,
            self.sxy + other.sxy,
        )

    @classmethod
    def of(cls, row: dict[str, Any]) -> Moments | None:
        if row.get("sum_x") is None or row.get("sum_y") is None:
            return None
        return cls(
            int(row["n"]),
            float(row["sum_x"]),
            float(row["sum_y"]),
            float(row["sum_xx"] or 0),
            float(row["sum_yy"] or 0),
            float(row["sum_xy"] or 0),
        )

    @classmethod
    def total(cls, items: Iterable[Moments]) -> Moments:
        out = cls()
        for m in items:
            out = out + m
        return out

    @property
    def value(self) -> float | None:
        return self.sx / self.sy if self.sy else None

    @property
    def proportion(self) -> bool:
        """A mean of a value that is always 0 or 1 (Σx² = Σx, y = 1)."""
        return (
            self.n > 0
            and math.isclose(self.sy, self.n)
            and math.isclose(self.syy, self.n)
            and math.isclose(self.sxx, self.sx, abs_tol=1e-9)
            and 0 <= self.sx <= self.n
        )

    def variance(self) -> float | None:
        """Of the ratio (None with fewer than 2 rows or no weight)."""
        r = self.value
        if r is None or self.n < 2:
            return None
        n = self.n
        if self.proportion:
            return r * (1 - r) / n
        mx, my = self.sx / n, self.sy / n
        vxx = (self.sxx - n * mx * mx) / (n - 1)
        vyy = (self.syy - n * my * my) / (n - 1)
        vxy = (self.sxy - n * mx * my) / (n - 1)
        var = (vxx - 2 * r * vxy + r * r * vyy) / (n * my * my)
        return max(var, 0.0)


def z_of(confidence: float) -> float:
    return NormalDist().inv_cdf((1 + confidence) / 2)


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str  # wilson | normal | none

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(m: Moments, confidence: float = 0.95) -> Estimate:
    value = m.value
    if value is None or m.n < 2:
        return Estimate(value, None, None, m.n, "none")
    z = z_of(confidence)
    if m.proportion:
        n, p = m.n, value
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return Estimate(value, centre - half, centre + half, n, "wilson")
    var = m.variance()
    if var is None:
        return Estimate(value, None, None, m.n, "none")
    half = z * math.sqrt(var)
    return Estimate(value, value - half, value + half, m.n, "normal")


@dataclass(frozen=True)
class Difference:
    arm: str
    control: str
    difference: float | None
    low: float | None
    high: float | None
    relative: float | None  # difference / control value
    p_value: float | None
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def difference(
    arm: str, m: Moments, control: str, c: Moments, confidence: float = 0.95
) -> Difference:
    """arm - control, with its interval (normal approximation) and two-sided p-value."""
    a, b = m.value, c.value
    va, vb = m.variance(), c.variance()
    if a is None or b is None or va is None or vb is None:
        return Difference(arm, control, None, None, None, None, None, "none")
    d = a - b
    se = math.sqrt(va + vb)
    relative = d / b if b else None
    if se == 0:
        return Difference(arm, control, d, d, d, relative, 0.0 if d else 1.0, "normal")
    z = z_of(confidence)
    p = 2 * (1 - NormalDist().cdf(abs(d) / se))
    method = "normal, proportions" if m.proportion and c.proportion else "normal"
    return Difference(arm, control, d, d - z * se, d + z * se, relative, p, method)


def choose_control(arms: list[str], given: str | None) -> str | None:
    if given is not None:
        return given if given in arms else None
    if "control" in arms:
        return "control"
    return sorted(arms)[0] if arms else None
