"""Data-quality rules over a finished period (DOMAIN.md §5): a day's completeness and the
daily figures of a month against its monthly figure.

Counting what arrived is ``stream.data_quality``'s job; these rules take the counts and sums
it produced and say whether a line is crossed. Silence (gaps, devices offline) is judged as
it happens, in ``device_silence``.
"""

from dataclasses import dataclass
from datetime import date, datetime

from alerts.rules.condition import Condition, Severity

COMPLETENESS_RULE = "data-quality.completeness"
DEVIATION_RULE = "data-quality.monthly-deviation"


@dataclass(frozen=True)
class DataQualityConfig:
    completeness_required: float = 0.90  # of the day's expected uploads
    completeness_severity: Severity = Severity.WARNING
    deviation_tolerance: float = 0.05  # daily sum against the monthly figure
    deviation_severity: Severity = Severity.WARNING


def evaluate_completeness(
    subject: str,
    day: date,
    expected: int,
    received: int,
    at: datetime,
    config: DataQualityConfig,
    enterprise_code: str | None = None,
) -> Condition | None:
    """A China-local ``day``'s completeness (received / expected uploads, lower is worse),
    judged at ``at`` (normally the day's end); None when nothing was expected."""
    if expected <= 0:
        return None
    ratio = min(received, expected) / expected
    short = ratio < config.completeness_required
    return Condition(
        rule_id=COMPLETENESS_RULE,
        subject=subject,
        at=at,
        severity=config.completeness_severity if short else None,
        value=ratio,
        threshold=config.completeness_required,
        unit="share",
        message=(
            f"{subject} sent {received} of {expected} expected uploads on {day.isoformat()} "
            f"数据完整率 {ratio:.1%} (required {config.completeness_required:.0%})"
        ),
        higher_is_worse=False,
        enterprise_code=enterprise_code,
    )


def evaluate_monthly_deviation(
    subject: str,
    month: date,
    daily_sum: float,
    monthly: float | None,
    at: datetime,
    config: DataQualityConfig,
    enterprise_code: str | None = None,
) -> Condition | None:
    """The month's daily figures summed against its monthly figure: the relative deviation
    (absolute, higher is worse) over the tolerance fires. None without a monthly figure.

    A monthly figure of zero against a non-zero sum has no relative deviation; it counts as
    100%, which is over any sensible tolerance and still a finite number to store."""
    if monthly is None:
        return None
    if monthly == 0:
        deviation = 0.0 if daily_sum == 0 else 1.0
    else:
        deviation = abs(daily_sum - monthly) / abs(monthly)
    over = deviation > config.deviation_tolerance
    return Condition(
        rule_id=DEVIATION_RULE,
        subject=subject,
        at=at,
        severity=config.deviation_severity if over else None,
        value=deviation,
        threshold=config.deviation_tolerance,
        unit="share",
        message=(
            f"{subject} {month:%Y-%m}: daily figures sum to {daily_sum:,.2f} against a monthly "
            f"figure of {monthly:,.2f} 日月数据偏差 {deviation:.1%} "
            f"(allowed {config.deviation_tolerance:.0%})"
        ),
        enterprise_code=enterprise_code,
    )
