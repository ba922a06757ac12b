"""VOC averages (pure): hourly from minute samples, daily from hourly ones, and emission mass.

The rule (HJ 212 practice, DOMAIN.md §6): only N-flagged values count toward an average; the
period's value is valid (flag N) when at least 75% of its slots (60 minutes, or 24 hours) are
N with a value. Otherwise it takes the most common non-N flag (ties: the first seen; slots
missing altogether count as B, a communication fault), and ``avg`` still reports the N values'
mean when there are any, for data-quality work. Per pollutant: ``avg`` is the mean of the N
values' averages, ``min``/``max`` their extremes, ``cou`` the sum of their totals.

The simulator's data loggers use the same functions (with their display rounding), so the
monitors' own hourly packets and the stream's hourly averages cannot disagree by construction.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from statistics import fmean
from typing import Final

from contracts.voc import DataFlag, PollutantValue, VocSample
from stream.windows import WindowSize, window_start

VALID_SHARE: Final = 0.75
_SLOTS: Final = {3600: (60, 60, WindowSize.HOUR), 86_400: (24, 3600, WindowSize.DAY)}


def _most_common_flag(flags: Sequence[DataFlag]) -> DataFlag:
    counts = Counter(flag for flag in flags if flag is not DataFlag.NORMAL)
    if not counts:
        return DataFlag.COMMUNICATION_FAULT
    return counts.most_common(1)[0][0]  # Counter keeps first-seen order among equal counts


def _rounded(value: float, digits: int | None) -> float:
    return value if digits is None else round(value, digits)


def average(
    samples: Sequence[VocSample],
    interval_seconds: int,
    decimals: Mapping[str, int] | None = None,
    cou_decimals: int | None = None,
) -> VocSample:
    """The ``interval_seconds`` (3600 or 86400) sample of one monitor's finer samples (minutes
    for an hour, hours for a day) within one period. ``decimals`` rounds avg per code (as a
    data logger displays them); None keeps full precision."""
    if interval_seconds not in _SLOTS:
        raise ValueError("averages are hourly (3600 s) or daily (86400 s)")
    slots, slot_seconds, size = _SLOTS[interval_seconds]
    if not samples:
        raise ValueError("an average needs at least one sample")
    first = samples[0]
    start = window_start(first.data_time, size)
    end = start + timedelta(seconds=interval_seconds)
    for sample in samples:
        if sample.interval_seconds != slot_seconds or sample.monitor_id != first.monitor_id:
            raise ValueError(
                f"a {interval_seconds} s average is built from one monitor's "
                f"{slot_seconds} s samples"
            )
        if not start <= sample.data_time < end:
            raise ValueError(
                f"sample {sample.data_time.isoformat()} is outside the "
                f"{'hour' if interval_seconds == 3600 else 'day'} starting {start.isoformat()}"
            )
    if len({sample.data_time for sample in samples}) != len(samples):
        raise ValueError("an average is built from distinct samples, not repeats")
    codes = dict.fromkeys(code for sample in samples for code in sample.values)
    values = {}
    for code in codes:
        readings = [sample.values[code] for sample in samples if code in sample.values]
        valid = [r for r in readings if r.flag is DataFlag.NORMAL and r.avg is not None]
        if len(valid) >= VALID_SHARE * slots:
            flag = DataFlag.NORMAL
        else:
            missing = [DataFlag.COMMUNICATION_FAULT] * (slots - len(readings))
            flag = _most_common_flag([r.flag for r in readings] + missing)
        if not valid:
            values[code] = PollutantValue(flag=flag)
            continue
        avgs = [r.avg for r in valid if r.avg is not None]
        lows = [r.avg if r.min is None else r.min for r in valid]
        highs = [r.avg if r.max is None else r.max for r in valid]
        totals = [r.cou for r in valid if r.cou is not None]
        digits = None if decimals is None else decimals.get(code, 4)
        values[code] = PollutantValue(
            avg=_rounded(fmean(avgs), digits),
            min=min(v for v in lows if v is not None),
            max=max(v for v in highs if v is not None),
            cou=_rounded(math.fsum(totals), cou_decimals) if totals else None,
            flag=flag,
        )
    return VocSample(
        monitor_id=first.monitor_id,
        enterprise_code=first.enterprise_code,
        data_time=start,
        interval_seconds=interval_seconds,
        values=values,
        source=first.source,
    )


def emission_mass_kg(concentration_mg_m3: float, flow_m3: float) -> float:
    """Mass emitted: concentration (mg/m³) × volume of gas (m³), in kilograms."""
    return concentration_mg_m3 * flow_m3 / 1_000_000
