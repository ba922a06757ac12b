"""The regional barometer (节能目标完成情况晴雨表): intensity and total-consumption levels.

NDRC practice, per indicator (DOMAIN.md §3):

* intensity: level 1 / red when year-to-date intensity *rose* year on year; level 2 / yellow
  when it fell but by less than the pro-rated target; level 3 / green when on track;
* total consumption: green within the pro-rated cap; yellow when over by at most 10% of
  the target (the pro-rated cap); red when over by more than 10%.

Dual targets (seeds 000, 003): intensity is judged against the **basic** target; a region
whose intensity fell by at least its **incentive** target is exempt from the total check for
the period (免予考核). New renewable electricity is not counted in the total (seeds 000,
003); feedstock energy and nationally listed projects are out of both checks, so the caller
passes assessed figures with them already deducted, for both years.

Local schemes grade a completion rate in bands (e.g. ≥100% green, 90–100% yellow, 50–90%
orange, ≤50% red): ``CompletionScheme``. Names, severities and bands are data.
"""

from dataclasses import dataclass, field
from datetime import datetime

from alerts.rules.condition import Condition, Severity

INTENSITY_RULE = "barometer.intensity"
TOTAL_RULE = "barometer.total"


@dataclass(frozen=True)
class Level:
    name: str
    name_zh: str
    severity: Severity | None  # None: no alert at this level


@dataclass(frozen=True)
class BarometerConfig:
    red: Level = Level("red", "一级预警（红色）", Severity.CRITICAL)
    yellow: Level = Level("yellow", "二级预警（黄色）", Severity.WARNING)
    green: Level = Level("green", "三级（绿色）", None)
    exempt: Level = Level("exempt", "免予考核", None)
    #: Over the cap by at most this share of it is yellow; more is red.
    total_yellow_band: float = 0.10


@dataclass(frozen=True)
class RegionPeriod:
    """A region's year to date (ending ``at``) and the same period of the year before.

    GDP at comparable prices, in any unit as long as both years use the same one. Target
    cuts are fractions pro-rated to the period (0.03: intensity must fall 3% year on year).
    """

    region: str
    at: datetime
    energy_tce: float
    gdp: float
    last_year_energy_tce: float
    last_year_gdp: float
    basic_target_cut: float
    incentive_target_cut: float
    prorated_cap_tce: float
    new_renewable_tce: float = 0.0

    def __post_init__(self) -> None:
        if min(self.gdp, self.last_year_gdp, self.last_year_energy_tce) <= 0:
            raise ValueError(f"{self.region}: GDP and last year's energy must be positive")
        if self.prorated_cap_tce <= 0:
            raise ValueError(f"{self.region}: the total-consumption cap must be positive")

    @property
    def intensity_fall(self) -> float:
        """How much intensity fell year on year, as a fraction (negative: it rose)."""
        # 1 - (E/G) / (E0/G0), written so whole-number inputs give exact boundaries
        before = self.last_year_energy_tce * self.gdp
        return (before - self.energy_tce * self.last_year_gdp) / before


def _condition(
    rule: str,
    period: RegionPeriod,
    level: Level,
    value: float,
    threshold: float | None,
    message: str,
) -> Condition:
    return Condition(
        rule_id=rule,
        subject=period.region,
        at=period.at,
        severity=level.severity,
        value=value,
        threshold=threshold,
        unit="share",
        message=f"{message}: {level.name} {level.name_zh}",
        higher_is_worse=rule == TOTAL_RULE,
        level=level.name,
    )


def _intensity(period: RegionPeriod, config: BarometerConfig) -> Condition:
    fall = period.intensity_fall
    if fall < 0:
        level, line = config.red, 0.0
    elif fall < period.basic_target_cut:
        level, line = config.yellow, period.basic_target_cut
    else:
        level, line = config.green, period.basic_target_cut
    message = (
        f"{period.region} energy intensity 能耗强度 {'rose' if fall < 0 else 'fell'} "
        f"{abs(fall):.2%} year on year against a basic target of {period.basic_target_cut:.2%}"
    )
    return _condition(INTENSITY_RULE, period, level, fall, line, message)


def _total(period: RegionPeriod, config: BarometerConfig) -> Condition:
    counted = period.energy_tce - period.new_renewable_tce
    over = (counted - period.prorated_cap_tce) / period.prorated_cap_tce
    message = (
        f"{period.region} energy consumption 能源消费总量 {counted:,.0f} tce, {over:+.2%} "
        f"against the pro-rated cap of {period.prorated_cap_tce:,.0f} tce"
    )
    if period.intensity_fall >= period.incentive_target_cut:
        # no line applies this period: an alert left from the last one resolves outright
        message += f" (incentive target {period.incentive_target_cut:.2%} met)"
        return _condition(TOTAL_RULE, period, config.exempt, over, None, message)
    if over <= 0:
        level, line = config.green, 0.0
    elif over <= config.total_yellow_band:
        level, line = config.yellow, 0.0
    else:
        level, line = config.red, config.total_yellow_band
    return _condition(TOTAL_RULE, period, level, over, line, message)


def evaluate_barometer(period: RegionPeriod, config: BarometerConfig) -> list[Condition]:
    """The intensity condition (value: the fall, lower is worse) and the total condition
    (value: the share over the cap, higher is worse) of one region's period."""
    return [_intensity(period, config), _total(period, config)]


@dataclass(frozen=True)
class Band:
    """Rates from ``at_least`` up (to the next better band) get ``level``; ``inclusive``
    says whether ``at_least`` itself belongs here or to the band below."""

    at_least: float
    level: Level
    inclusive: bool = True


@dataclass(frozen=True)
class CompletionScheme:
    """A local scheme grading a completion rate, best band first; the last band catches
    everything below (give it ``at_least=-inf``)."""

    bands: tuple[Band, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        floors = [band.at_least for band in self.bands]
        if not floors or floors != sorted(floors, reverse=True):
            raise ValueError("a completion scheme lists its bands best (highest) first")

    def grade(self, rate: float) -> tuple[Level, float]:
        """The band ``rate`` falls in, and the floor of the band above it (the line back up;
        for the best band, its own floor)."""
        above = self.bands[0].at_least
        for band in self.bands:
            if rate > band.at_least or (band.inclusive and rate == band.at_least):
                return band.level, above
            above = band.at_least
        return self.bands[-1].level, above


def evaluate_completion(
    region: str, at: datetime, rate: float, scheme: CompletionScheme, rule_id: str
) -> Condition:
    """A local scheme's condition for one region's completion rate (lower is worse)."""
    level, line = scheme.grade(rate)
    return Condition(
        rule_id=rule_id,
        subject=region,
        at=at,
        severity=level.severity,
        value=rate,
        threshold=line,
        unit="share",
        message=f"{region} completion 完成率 {rate:.1%}: {level.name} {level.name_zh}",
        higher_is_worse=False,
        level=level.name,
    )
