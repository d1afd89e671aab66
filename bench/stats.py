"""The figures every benchmark prints: a median and percentiles of one sample, in ms."""

import statistics
from collections.abc import Sequence


def summary(values: Sequence[float], *percentiles: int) -> tuple[float, ...]:
    """The median of ``values``, then each of ``percentiles`` (1-99) in the order given,
    by the inclusive method (the sample is taken as the whole population: p95 of 20 values
    lies between the 19th and the 20th)."""
    cuts = statistics.quantiles(values, n=100, method="inclusive") if percentiles else []
    return (statistics.median(values), *(cuts[p - 1] for p in percentiles))


def median_p95(values: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile of ``values``."""
    median, p95 = summary(values, 95)
    return median, p95
