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

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.production import OutputValueReport, ProductOutputReport
from contracts.readings import EnergyType
from plans.cn_calendar import ChinaCalendar
from plans.coal_factors import CoalFactors
from simulators.fleet import Enterprise, Fleet, Meter
from simulators.production import Outage, planned_outages, production_model
from simulators.records import MeterSample

SECONDS_PER_YEAR = 365 * 86_400
_NOISE = {EnergyType.RAW_COAL: 0.08, EnergyType.COKE: 0.08, EnergyType.DIESEL: 0.15}
_DEFAULT_NOISE = 0.04
_TRIANGULAR_SCALE = math.sqrt(6)  # U1 + U2 - 1 has variance 1/6

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
    #: Of the energy adjustment, the part that is more or less activity (a unit producing
    #: more, or cutting output in a heavy-pollution alert): production output follows it.
    #: What ``adjustment`` changes beyond it is efficiency (energy per tonne).
    output_adjustment: Adjustment = no_adjustment

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

    def enterprise_series(
        self, enterprise: Enterprise, start: datetime
    ) -> Iterator[tuple[list[MeterSample], float]]:
        """Every meter's sample for each interval from ``start`` on, forever, with the tce the
        unit would have used at its planned efficiency (production output follows it): without
        scenario adjustments but for ``output_adjustment``.

        The production level is worked out once per unit and interval; each meter keeps its
        own random stream, so a meter's values do not depend on the other meters.
        """
        meters = enterprise.meters
        rngs = [random.Random(f"{self.fleet.seed}:meter:{m.meter_id}") for m in meters]
        counters = [
            round(rng.uniform(1e4, 1e6), 3) if m.counter else None
            for rng, m in zip(rngs, meters, strict=True)
        ]
        # noise as the sum of two uniforms (triangular, same standard deviation as the
        # configured one): as plausible as a Gaussian here, and three times cheaper to draw
        spreads = [_NOISE.get(m.energy_type, _DEFAULT_NOISE) * _TRIANGULAR_SCALE for m in meters]
        draws = [rng.random for rng in rngs]
        identities = [(m.meter_id, m.energy_type, m.counter_only) for m in meters]
        code = enterprise.code
        new_sample = tuple.__new__
        model = production_model(enterprise.profile, self.calendar)
        interval = self.interval
        interval_seconds = int(interval.total_seconds())
        share_of_year = interval_seconds / SECONDS_PER_YEAR
        adjusted = self.adjustment is not no_adjustment
        output_adjusted = self.output_adjustment is not no_adjustment
        at = start
        next_year = at  # forces the yearly set-up on the first interval
        outages: list[Outage] = []
        expected: list[float] = []
        kgce: list[float] = []
        scale = 0.0
        while True:
            if at >= next_year:
                local = at.astimezone(CHINA_STANDARD_TIME)
                next_year = datetime(local.year + 1, 1, 1, tzinfo=CHINA_STANDARD_TIME)
                outages = self.outages(enterprise, local.year)
                scale = self._year_scale(enterprise, local.year)
                expected = [
                    self.annual_physical(enterprise, m, local.date()) * share_of_year
                    for m in meters
                ]
                kgce = [
                    0.0
                    if m.energy_type is EnergyType.WATER
                    else self.factors.kgce_per_unit(m.energy_type, local.date())[0] / 1000
                    for m in meters
                ]
            level = model.level(at, outages) * scale
            adjustment = self.adjustment(enterprise.id, at) if adjusted else 1.0
            output = self.output_adjustment(enterprise.id, at) if output_adjusted else 1.0
            samples = []
            baseline_tce = 0.0
            for index, (meter_id, energy_type, counter_only) in enumerate(identities):
                draw = draws[index]
                noise = 1.0 + (draw() + draw() - 1.0) * spreads[index]
                base = expected[index] * level * noise
                baseline_tce += base * kgce[index]
                consumption = round(base * adjustment, 3)
                counter = counters[index]
                if counter is not None:
                    counter = counters[index] = round(counter + consumption, 3)
                # tuple.__new__ skips the named tuple's Python-level constructor: this line
                # runs for every reading
                samples.append(
                    new_sample(
                        MeterSample,
                        (
                            code,
                            meter_id,
                            energy_type,
                            at,
                            interval_seconds,
                            None if counter_only else consumption,
                            counter,
                        ),
                    )
                )
            yield samples, baseline_tce * output
            at += interval

    def meter_series(
        self, enterprise: Enterprise, meter: Meter, start: datetime
    ) -> Iterator[MeterSample]:
        """One meter's samples from ``start`` on, forever (the same values as in the fleet)."""
        index = enterprise.meters.index(meter)
        for samples, _tce in self.enterprise_series(enterprise, start):
            yield samples[index]

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
        for per_unit in self.unit_intervals(start):
            yield [sample for samples, _tce in per_unit for sample in samples]

    def unit_intervals(self, start: datetime) -> Iterator[list[tuple[list[MeterSample], float]]]:
        """Per interval, each unit's samples and baseline tce, in fleet order."""
        series = [self.enterprise_series(e, start) for e in self.fleet.enterprises]
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
