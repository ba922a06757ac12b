"""Energy use of a simulated fleet: every meter's 15-minute readings, and production reports.

Each meter has its own seeded random stream, so one meter's series can be regenerated alone
(fault injection does this to find a counter's value at a given time) and adding an enterprise
to a fleet does not change the others' data.

Expected consumption per interval = the unit's annual physical use of that energy type
(annual tce × energy-mix share ÷ GB/T 2589 factor) × the interval's share of the year ×
``production level / mean level of the year`` × noise × scenario adjustments. Dividing by the
year's mean level (planned outages included) makes the annual total land on the unit's annual
tce in expectation.
"""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from contracts.production import OutputValueReport, ProductOutputReport
from contracts.readings import EnergyType
from simulators.cn_calendar import ChinaCalendar
from simulators.coal_factors import CoalFactors
from simulators.fleet import Enterprise, Fleet, Meter
from simulators.production import (
    CHINA_STANDARD_TIME,
    Outage,
    planned_outages,
    production_model,
)
from simulators.records import MeterSample

SECONDS_PER_YEAR = 365 * 86_400
_NOISE = {EnergyType.RAW_COAL: 0.08, EnergyType.COKE: 0.08, EnergyType.DIESEL: 0.15}
_DEFAULT_NOISE = 0.04

#: Scenario adjustments: (enterprise id, instant) -> multiplier of energy use.
Adjustment = Callable[[str, datetime], float]


def no_adjustment(_enterprise: str, _at: datetime) -> float:
    return 1.0


@dataclass
class EnergyModel:
    """How one fleet uses energy. Cheap to build; per-unit work is cached as it is needed."""

    fleet: Fleet
    calendar: ChinaCalendar = field(default_factory=ChinaCalendar.load)
    factors: CoalFactors = field(default_factory=CoalFactors.load)
    adjustment: Adjustment = no_adjustment

    def __post_init__(self) -> None:
        self._outages: dict[tuple[str, int], list[Outage]] = {}
        self._scale: dict[tuple[str, int], float] = {}

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.fleet.interval_minutes)

    def outages(self, enterprise: Enterprise, year: int) -> list[Outage]:
        key = (enterprise.id, year)
        if key not in self._outages:
            rng = random.Random(f"{self.fleet.seed}:outages:{enterprise.code}:{year}")
            self._outages[key] = planned_outages(enterprise.profile, year, rng)
        return self._outages[key]

    def _year_scale(self, enterprise: Enterprise, year: int) -> float:
        key = (enterprise.id, year)
        if key not in self._scale:
            model = production_model(enterprise.profile, self.calendar)
            self._scale[key] = 1.0 / model.mean_level(year, self.outages(enterprise, year))
        return self._scale[key]

    def annual_physical(self, enterprise: Enterprise, meter: Meter, on: date) -> float:
        """The meter's expected yearly use, in its energy type's contract unit."""
        if meter.energy_type is EnergyType.WATER:
            return enterprise.annual_tce * enterprise.profile.water_m3_per_tce
        share = enterprise.profile.energy_mix[meter.energy_type]
        kgce_per_unit, _unit = self.factors.kgce_per_unit(meter.energy_type, on)
        return enterprise.annual_tce * share * 1000 / kgce_per_unit

    def meter_series(
        self, enterprise: Enterprise, meter: Meter, start: datetime
    ) -> Iterator[MeterSample]:
        """The meter's samples from ``start`` on, interval after interval, forever."""
        rng = random.Random(f"{self.fleet.seed}:meter:{meter.meter_id}")
        model = production_model(enterprise.profile, self.calendar)
        interval = self.interval
        interval_seconds = int(interval.total_seconds())
        share_of_year = interval_seconds / SECONDS_PER_YEAR
        noise = _NOISE.get(meter.energy_type, _DEFAULT_NOISE)
        counter = round(rng.uniform(1e4, 1e6), 3) if meter.counter else None
        at = start
        year = -1
        expected = scale = 0.0
        outages: list[Outage] = []
        while True:
            local = at.astimezone(CHINA_STANDARD_TIME)
            if local.year != year:
                year = local.year
                outages = self.outages(enterprise, year)
                scale = self._year_scale(enterprise, year)
                expected = self.annual_physical(enterprise, meter, local.date()) * share_of_year
            level = model.level(at, outages) * scale
            factor = max(0.0, rng.gauss(1.0, noise)) * self.adjustment(enterprise.id, at)
            consumption = round(expected * level * factor, 3)
            if counter is not None:
                counter = round(counter + consumption, 3)
            yield MeterSample(
                enterprise_code=enterprise.code,
                meter_id=meter.meter_id,
                energy_type=meter.energy_type,
                period_start=at,
                interval_seconds=interval_seconds,
                consumption=None if meter.counter_only else consumption,
                counter=counter,
            )
            at += interval

    def counter_before(self, meter_id: str, at: datetime, start: datetime) -> float:
        """The meter's counter at the end of the interval before ``at`` (regenerated alone)."""
        for enterprise in self.fleet.enterprises:
            for meter in enterprise.meters:
                if meter.meter_id == meter_id:
                    value = 0.0
                    for sample in self.meter_series(enterprise, meter, start):
                        if sample.period_start >= at:
                            return value
                        value = sample.counter or 0.0
        raise KeyError(f"no meter {meter_id} in fleet {self.fleet.name}")

    def interval_samples(self, start: datetime) -> Iterator[list[MeterSample]]:
        """All meters' samples, one list per interval, in fleet order."""
        series = [
            self.meter_series(enterprise, meter, start)
            for enterprise in self.fleet.enterprises
            for meter in enterprise.meters
        ]
        while True:
            yield [next(s) for s in series]

    def production_reports(
        self, enterprise: Enterprise, day_start: datetime, day_tce: float
    ) -> list[ProductOutputReport]:
        """The day's output of each limited product, from the day's baseline energy."""
        reports = []
        for product in enterprise.profile.products:
            amount = round(product.output(day_tce), 3)
            reports.append(
                ProductOutputReport(
                    enterprise_code=enterprise.code,
                    product_code=product.code,
                    period="day",
                    period_start=day_start.astimezone(UTC),
                    output_t=amount if product.unit == "t" else None,
                    output_mwh=amount if product.unit == "MWh" else None,
                )
            )
        return reports

    def output_value(
        self, enterprise: Enterprise, month_start: datetime, month_tce: float
    ) -> OutputValueReport:
        return OutputValueReport(
            enterprise_code=enterprise.code,
            period_start=month_start.astimezone(UTC),
            output_value_cny=round(month_tce * enterprise.profile.output_value_cny_per_tce, 2),
        )
