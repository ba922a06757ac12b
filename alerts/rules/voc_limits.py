"""VOC concentration limits: single readings and hourly averages, per monitor and pollutant.

Limits belong to each monitor's configuration (DOMAIN.md §7: national standards set a floor
and provinces are often stricter), for example GB 37822-2019 NMHC inside the plant: 30 mg/m³
for any single reading, 10 mg/m³ as a 1-hour average. Only valid data counts: a value flagged
anything but ``N`` (maintenance, calibration, fault...) says nothing about compliance, so it
produces no condition at all and a firing alert waits for the next valid value.

A minute sample's ``avg`` is the single reading (one analyser value per minute); an hourly
sample's ``avg`` is the hourly average, flagged ``N`` only when 75% of its minutes were valid
(``stream.voc_averages``). Daily samples are not judged here.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from alerts.rules.condition import Condition, Severity
from contracts.voc import DataFlag, VocSample

SINGLE_RULE = "voc-single"
HOURLY_RULE = "voc-hourly"
_MINUTE, _HOUR = 60, 3600


@dataclass(frozen=True)
class VocLimit:
    """One pollutant's limits on one monitor, in mg/m³ (None: no such limit)."""

    pollutant: str  # HJ 212 code, e.g. a24088 (NMHC)
    single_mg_m3: float | None
    hourly_mg_m3: float | None
    standard: str  # where the numbers come from, e.g. "GB 37822-2019"


@dataclass(frozen=True)
class VocLimitsConfig:
    """Each monitor's limits (monitor id → its pollutants' limits)."""

    by_monitor: Mapping[str, tuple[VocLimit, ...]] = field(default_factory=dict)
    severity: Severity = Severity.CRITICAL  # a legal emission limit, not an early warning


def _limit_for(
    config: VocLimitsConfig, monitor_id: str, pollutant: str, interval: int
) -> tuple[str, float, VocLimit] | None:
    for limit in config.by_monitor.get(monitor_id, ()):
        if limit.pollutant != pollutant:
            continue
        if interval == _MINUTE and limit.single_mg_m3 is not None:
            return SINGLE_RULE, limit.single_mg_m3, limit
        if interval == _HOUR and limit.hourly_mg_m3 is not None:
            return HOURLY_RULE, limit.hourly_mg_m3, limit
    return None


def evaluate_voc(sample: VocSample, config: VocLimitsConfig) -> list[Condition]:
    """One condition per limited pollutant with a valid value in a minute or hourly sample
    (rule ``voc-single.<code>`` or ``voc-hourly.<code>``, subject the monitor), dated at
    the end of the sample's interval. Exceeding means strictly above the limit."""
    if sample.interval_seconds not in (_MINUTE, _HOUR):
        return []
    kind = "single reading 单次浓度" if sample.interval_seconds == _MINUTE else "hourly 小时均值"
    at = sample.data_time + timedelta(seconds=sample.interval_seconds)
    conditions = []
    for code, reading in sample.values.items():
        found = _limit_for(config, sample.monitor_id, code, sample.interval_seconds)
        if found is None or reading.flag is not DataFlag.NORMAL or reading.avg is None:
            continue
        rule, line, limit = found
        over = reading.avg > line
        verdict = "above" if over else "within"
        conditions.append(
            Condition(
                rule_id=f"{rule}.{code}",
                subject=sample.monitor_id,
                at=at,
                severity=config.severity if over else None,
                value=reading.avg,
                threshold=line,
                unit="mg/m3",
                message=(
                    f"{code} {kind} {reading.avg:g} mg/m³ {verdict} the {line:g} mg/m³ limit "
                    f"of {limit.standard} at monitor {sample.monitor_id}"
                ),
                enterprise_code=sample.enterprise_code,
            )
        )
    return conditions
