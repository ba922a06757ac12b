"""Judging a soak by its time series: does the worker's memory stay bounded, does lag grow?

Pure arithmetic over ``(seconds, value)`` samples.

- **Memory**: after a warm-up (caches, connection pools and the interpreter's arenas filling),
  resident memory may move but must not keep climbing. Bounded means: the highest RSS after
  the warm-up exceeds the RSS at the end of the warm-up by at most ``rss_growth_mib`` MiB, and
  the least-squares slope over the second half of the run is at most
  ``rss_slope_mib_per_minute``. The defaults (64 MiB, 2 MiB/min) leave room for a Python
  process's normal breathing (the worker peaks near 160 MiB in ``bench stream``) yet catch a
  leak of a few kilobytes per batch within ten minutes.
- **Lag**: consumer lag (records produced but not yet durable) at a steady rate the worker
  can sustain hovers around a small value. It grows when the least-squares slope over the
  second half exceeds ``lag_slope_records_per_second`` (default 1 record/s: falling behind by
  0.05% of a 2,000/s load).
"""

from collections.abc import Sequence
from dataclasses import dataclass

Sample = tuple[float, float]  # (seconds since the start, value)


def slope(samples: Sequence[Sample]) -> float:
    """The least-squares slope of value over seconds (0 for fewer than two distinct times)."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var


def second_half(samples: Sequence[Sample]) -> list[Sample]:
    """The samples from the middle of the covered time on."""
    if not samples:
        return []
    middle = (samples[0][0] + samples[-1][0]) / 2
    return [s for s in samples if s[0] >= middle]


@dataclass(frozen=True)
class SoakBounds:
    warmup_seconds: float = 60.0
    rss_growth_mib: float = 64.0
    rss_slope_mib_per_minute: float = 2.0
    lag_slope_records_per_second: float = 1.0


@dataclass(frozen=True)
class MemoryVerdict:
    at_warmup_end_mib: float
    peak_after_warmup_mib: float
    growth_mib: float
    slope_mib_per_minute: float  # second half
    bounded: bool


@dataclass(frozen=True)
class LagVerdict:
    mean_records: float  # second half
    max_records: float
    slope_records_per_second: float  # second half
    grows: bool


def judge_memory(rss_mib: Sequence[Sample], bounds: SoakBounds) -> MemoryVerdict:
    """Whether the RSS samples after the warm-up stay within ``bounds``; needs samples after
    the warm-up (a run shorter than its warm-up cannot show anything)."""
    after = [s for s in rss_mib if s[0] >= bounds.warmup_seconds]
    if not after:
        raise ValueError(f"no memory sample after the {bounds.warmup_seconds:.0f} s warm-up")
    base = after[0][1]
    peak = max(v for _, v in after)
    per_minute = slope(second_half(after)) * 60
    bounded = peak - base <= bounds.rss_growth_mib and per_minute <= bounds.rss_slope_mib_per_minute
    return MemoryVerdict(
        at_warmup_end_mib=round(base, 1),
        peak_after_warmup_mib=round(peak, 1),
        growth_mib=round(peak - base, 1),
        slope_mib_per_minute=round(per_minute, 3),
        bounded=bounded,
    )


def judge_lag(lag_records: Sequence[Sample], bounds: SoakBounds) -> LagVerdict:
    """Whether consumer lag grows over the second half of the run (after the warm-up)."""
    after = [s for s in lag_records if s[0] >= bounds.warmup_seconds]
    if not after:
        raise ValueError(f"no lag sample after the {bounds.warmup_seconds:.0f} s warm-up")
    half = second_half(after)
    per_second = slope(half)
    return LagVerdict(
        mean_records=round(sum(v for _, v in half) / len(half), 1),
        max_records=max(v for _, v in after),
        slope_records_per_second=round(per_second, 3),
        grows=per_second > bounds.lag_slope_records_per_second,
    )
