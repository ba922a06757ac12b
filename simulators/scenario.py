"""Scenarios: a fleet, a period, injected situations and faults, and the outcomes they should
produce, in one YAML file (see ``scenarios/``).

Situations are what happens to enterprises and devices (a unit overrunning its budget, product
energy above its limit, a VOC exceedance, a device offline for days, a unit ignoring a
heavy-pollution alert); faults are how meters misbehave (``simulators/faults.py``). ``expected``
states what EnergyWatch should conclude, so tests and demos can check it once the rules exist.

Targets are written the way people think of them: an enterprise by its fleet id
(``yc-cement``), a meter as ``<enterprise id>/<energy type>`` (``yc-steel/electricity``), a VOC
monitor by its id. ``load_scenario`` resolves them and reports every unknown one.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from contracts.identifiers import UtcDatetime
from contracts.readings import EnergyType
from energywatch.config_files import ConfigFileError, load_model_file
from simulators.credentials import simulated_device_password
from simulators.energy import EnergyModel
from simulators.faults import FaultSpec, FaultType
from simulators.fleet import Fleet, FleetConfig, build_fleet
from simulators.runner import SimulationPlan
from simulators.voc import (
    AROMATICS,
    GB_31571_STACK,
    GB_37822_NMHC,
    GB_37822_NMHC_SPECIAL,
    METHANE,
    NMHC,
    ConcentrationLimit,
    ExceedanceEpisode,
    VocMonitorProfile,
)

_STRICT = ConfigDict(frozen=True, extra="forbid")
_LIMIT_PRESETS: dict[str, tuple[str, dict[str, ConcentrationLimit]]] = {
    "gb37822": ("GB 37822-2019", {NMHC: GB_37822_NMHC}),
    "gb37822_special": ("GB 37822-2019 (special limits)", {NMHC: GB_37822_NMHC_SPECIAL}),
    "gb31571": ("GB 31571-2015", dict(GB_31571_STACK)),
}
HEAVY_POLLUTION_CUTS = {"yellow": 0.10, "orange": 0.20, "red": 0.30}


class VocMonitorSpec(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=r"^[A-Za-z0-9]{1,24}$", description="the HJ 212 MN")
    enterprise: str
    limits: Literal["gb37822", "gb37822_special", "gb31571"] = "gb37822"
    nmhc_baseline_mg_m3: float = Field(default=2.5, gt=0)
    flow_m3_s: float = Field(default=12.0, gt=0)
    exceedance_probability_per_day: float = Field(default=0.0, ge=0, le=1)


class BudgetOverrun(BaseModel):
    """The unit produces ``factor``× its planned output from ``start`` (to ``end``), using
    that much more energy at its usual efficiency: the common reason a budget, set for the
    planned output, runs out early (its energy per tonne does not change)."""

    model_config = _STRICT
    type: Literal["budget_overrun"]
    enterprise: str
    start: UtcDatetime
    end: UtcDatetime | None = None
    factor: float = Field(gt=1, le=5)


class ProductEnergyAboveLimit(BaseModel):
    """The unit needs ``factor``× the energy for the same output: its product energy per tonne
    rises by that factor (it must end above the product's limit)."""

    model_config = _STRICT
    type: Literal["product_energy_above_limit"]
    enterprise: str
    product: str
    start: UtcDatetime
    end: UtcDatetime | None = None
    factor: float = Field(gt=1, le=3)
    #: From ``end`` on, this × its former energy for the same output (a repair or retrofit
    #: that leaves it better than before); None: back to what it was.
    after_factor: float | None = Field(default=None, gt=0, lt=1)


class VocExceedance(BaseModel):
    model_config = _STRICT
    type: Literal["voc_exceedance"]
    monitor: str
    start: UtcDatetime
    hours: float = Field(gt=0, le=24 * 14)
    factor: float = Field(default=1.5, gt=1, le=100, description="× the highest NMHC limit")


class DeviceOffline(BaseModel):
    """Nothing arrives from the device (a meter, a VOC monitor, or every meter of a unit)."""

    model_config = _STRICT
    type: Literal["device_offline"]
    device: str
    start: UtcDatetime
    days: float = Field(gt=0, le=60)


class HeavyPollutionAlert(BaseModel):
    """The city declares a heavy-pollution alert and lifts it at ``end``; after ``lead_hours``
    every unit in the city cuts its output (and so its energy use) by the level's required
    cut, except those in ``ignored_by``."""

    model_config = _STRICT
    type: Literal["heavy_pollution_alert"]
    city: str
    level: Literal["yellow", "orange", "red"]
    start: UtcDatetime
    end: UtcDatetime
    lead_hours: float = Field(default=12, ge=0, le=48)
    ignored_by: tuple[str, ...] = ()


Situation = Annotated[
    BudgetOverrun | ProductEnergyAboveLimit | VocExceedance | DeviceOffline | HeavyPollutionAlert,
    Field(discriminator="type"),
]


class FaultEntry(BaseModel):
    """A fault as a scenario writes it: ``target`` may be ``<enterprise id>/<energy type>``."""

    model_config = ConfigDict(frozen=True, extra="allow")
    type: FaultType
    target: str


class ExpectedOutcome(BaseModel):
    """What EnergyWatch should conclude: a rule whose id is ``rule`` or starts with
    ``rule.`` (``voc-hourly`` covers ``voc-hourly.a24088``) ``fires`` (or stays ``silent``)
    about ``subject`` between ``after`` and ``before`` (event time) and, when
    ``resolved_after`` is given, that alert resolves on data between ``resolved_after`` and
    ``resolved_before``. ``subject`` is an enterprise, a meter, a VOC monitor or a county's
    division code. ``meter-flag.*`` outcomes name a quality flag the ledger should carry
    (``stuck``, ``implausible-jump``, ``off-period``), not an alert."""

    model_config = _STRICT
    rule: str = Field(pattern=r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$")
    subject: str
    outcome: Literal["fires", "silent"] = "fires"
    severity: Literal["info", "notice", "warning", "critical"] | None = None
    after: UtcDatetime | None = None
    before: UtcDatetime | None = None
    resolved_after: UtcDatetime | None = None
    resolved_before: UtcDatetime | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _resolution_of_a_firing(self) -> Self:
        if self.resolved_before is not None and self.resolved_after is None:
            raise ValueError("resolved_before needs resolved_after")
        if self.resolved_after is not None and self.outcome != "fires":
            raise ValueError("only an alert that fires can resolve")
        return self


class CountyCap(BaseModel):
    """A county's total-consumption cap for a year, added to its city plan for the scenario:
    simulated plan data (the seed plans publish no county caps), labelled so in ``source``."""

    model_config = _STRICT
    county: str = Field(pattern=r"^\d{6}$")
    year: int = Field(ge=2000, le=2100)
    cap_tce: float = Field(gt=0)
    source: str = Field(min_length=1)


class BudgetAmendment(BaseModel):
    """A unit's energy budget for ``year`` multiplied by ``factor`` (bought energy-use
    rights, an approved capacity change): the register's next revision."""

    model_config = _STRICT
    type: Literal["unit_budget"]
    enterprise: str
    year: int = Field(ge=2000, le=2100)
    factor: float = Field(gt=0, le=10)
    reason: str = Field(min_length=1)


class CapAmendment(BaseModel):
    """A county's cap (one of ``county_caps``) multiplied by ``factor``: the plan's next
    revision (a county whose growth beats the plan may have its total raised)."""

    model_config = _STRICT
    type: Literal["county_cap"]
    county: str = Field(pattern=r"^\d{6}$")
    year: int = Field(ge=2000, le=2100)
    factor: float = Field(gt=0, le=10)
    reason: str = Field(min_length=1)


Amendment = Annotated[BudgetAmendment | CapAmendment, Field(discriminator="type")]


class OperatorActions(BaseModel):
    """What the city's operators do once the data up to ``at`` (event time) is in: acknowledge
    every alert then firing (the unit's energy manager its own, the supervision office the
    regional ones) and amend budgets and caps, which the evaluator reads when restarted."""

    model_config = _STRICT
    at: UtcDatetime
    amendments: tuple[Amendment, ...] = ()
    note: str | None = None


class ScenarioConfig(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    fleet: str = Field(description="a fleet file, relative to this scenario file")
    seed: int | None = None
    start: UtcDatetime
    days: float = Field(gt=0, le=400)
    voc_monitors: tuple[VocMonitorSpec, ...] = ()
    situations: tuple[Situation, ...] = ()
    faults: tuple[FaultEntry, ...] = ()
    county_caps: tuple[CountyCap, ...] = ()
    operator: OperatorActions | None = None
    expected: tuple[ExpectedOutcome, ...] = ()


@dataclass(frozen=True)
class Scenario:
    config: ScenarioConfig
    fleet: Fleet
    plan: SimulationPlan

    @property
    def end(self) -> datetime:
        return self.config.start + timedelta(days=self.config.days)


class _Adjustments:
    """Energy multipliers of the situations, per enterprise id and instant; ``output`` the
    part of them that is activity (output follows it), the rest being efficiency."""

    def __init__(self) -> None:
        self._windows: dict[str, list[tuple[datetime, datetime | None, float, bool]]] = {}

    def add(
        self,
        enterprise: str,
        start: datetime,
        end: datetime | None,
        factor: float,
        output: bool = False,
    ) -> None:
        self._windows.setdefault(enterprise, []).append((start, end, factor, output))

    def _factor(self, enterprise: str, at: datetime, output_only: bool) -> float:
        factor = 1.0
        for start, end, f, output in self._windows.get(enterprise, ()):
            if start <= at and (end is None or at < end) and (output or not output_only):
                factor *= f
        return factor

    def __call__(self, enterprise: str, at: datetime) -> float:
        return self._factor(enterprise, at, output_only=False)

    def output(self, enterprise: str, at: datetime) -> float:
        return self._factor(enterprise, at, output_only=True)


def _meter_id(fleet: Fleet, ref: str) -> str:
    enterprise_id, _, energy = ref.partition("/")
    enterprise = fleet.enterprise(enterprise_id)
    try:
        return enterprise.meter(EnergyType(energy)).meter_id
    except ValueError:
        raise KeyError(f"{ref}: {energy!r} is not an energy type") from None


def _device_ids(fleet: Fleet, monitors: Sequence[str], ref: str) -> list[str]:
    if ref in monitors:
        return [ref]
    if "/" in ref:
        return [_meter_id(fleet, ref)]
    return [m.meter_id for m in fleet.enterprise(ref).meters]


def build_scenario(config: ScenarioConfig, fleet_config: FleetConfig, source: str) -> Scenario:
    if config.seed is not None:
        fleet_config = fleet_config.model_copy(update={"seed": config.seed})
    fleet = build_fleet(fleet_config)
    problems: list[str] = []
    adjustments = _Adjustments()
    faults: list[FaultSpec] = []
    episodes: dict[str, list[ExceedanceEpisode]] = {}
    monitor_ids = [m.id for m in config.voc_monitors]

    def check(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (KeyError, ValueError) as exc:
            problems.append(f"{what}: {exc.args[0] if exc.args else exc}")

    for index, situation in enumerate(config.situations):
        where = f"situations.{index} ({situation.type})"
        if isinstance(situation, BudgetOverrun):

            def overrun(s: BudgetOverrun = situation) -> None:
                fleet.enterprise(s.enterprise)
                adjustments.add(s.enterprise, s.start, s.end, s.factor, output=True)

            check(where, overrun)
        elif isinstance(situation, ProductEnergyAboveLimit):
            check(where, partial(_product_above_limit, fleet, situation, adjustments))
        elif isinstance(situation, VocExceedance):
            if situation.monitor not in monitor_ids:
                problems.append(f"{where}: no VOC monitor {situation.monitor!r} in voc_monitors")
            episodes.setdefault(situation.monitor, []).append(
                ExceedanceEpisode(
                    start=situation.start,
                    duration=timedelta(hours=situation.hours),
                    factor=situation.factor,
                )
            )
        elif isinstance(situation, DeviceOffline):
            end = situation.start + timedelta(days=situation.days)

            def offline(s: DeviceOffline = situation, end: datetime = end) -> None:
                for device in _device_ids(fleet, monitor_ids, s.device):
                    faults.append(
                        FaultSpec(type=FaultType.GAP, target=device, start=s.start, end=end)
                    )

            check(where, offline)
        elif isinstance(situation, HeavyPollutionAlert):
            check(where, partial(_heavy_pollution, fleet, situation, adjustments))
    for index, entry in enumerate(config.faults):

        def fault(entry: FaultEntry = entry) -> None:
            target = _meter_id(fleet, entry.target) if "/" in entry.target else entry.target
            faults.append(FaultSpec.model_validate({**entry.model_dump(), "target": target}))

        check(f"faults.{index} ({entry.type})", fault)
    monitors: list[VocMonitorProfile] = []
    for spec in config.voc_monitors:

        def monitor(spec: VocMonitorSpec = spec) -> None:
            monitors.append(_monitor(fleet, spec, fleet.seed, episodes.get(spec.id, [])))

        check(f"voc_monitors ({spec.id})", monitor)
    for index, outcome in enumerate(config.expected):

        def subject(outcome: ExpectedOutcome = outcome) -> None:
            if outcome.subject in monitor_ids:
                return
            if is_division(outcome.subject):
                if outcome.subject not in {e.county.division for e in fleet.enterprises}:
                    raise KeyError(f"no enterprise of the fleet is in county {outcome.subject}")
                return
            _device_ids(fleet, monitor_ids, outcome.subject)

        check(f"expected.{index}", subject)
    if config.operator is not None:
        caps = {(c.county, c.year) for c in config.county_caps}
        for index, amendment in enumerate(config.operator.amendments):
            where = f"operator.amendments.{index} ({amendment.type})"
            if isinstance(amendment, BudgetAmendment):
                check(where, partial(fleet.enterprise, amendment.enterprise))
            elif (amendment.county, amendment.year) not in caps:
                problems.append(f"{where}: no county cap for {amendment.county} in county_caps")
    if problems:
        raise ConfigFileError(
            f"{source}: {len(problems)} problem(s) in the scenario\n  " + "\n  ".join(problems)
        )
    energy = EnergyModel(fleet, adjustment=adjustments, output_adjustment=adjustments.output)
    end = config.start + timedelta(days=config.days)
    plan = SimulationPlan(energy, config.start, end, faults=faults, voc_monitors=monitors)
    return Scenario(config, fleet, plan)


def _product_above_limit(
    fleet: Fleet, s: ProductEnergyAboveLimit, adjustments: _Adjustments
) -> None:
    enterprise = fleet.enterprise(s.enterprise)
    product = enterprise.profile.product(s.product)
    limits = [limit.value for limit in product.applicable_limits() if limit.unit == "kgce/t"]
    reaches = product.unit_energy_kgce_per_unit * s.factor
    if limits and reaches <= min(limits):
        raise ValueError(
            f"factor {s.factor} takes {product.code} to {reaches:.0f} kgce/t, not above its "
            f"lowest limit {min(limits):.0f}: raise the factor"
        )
    adjustments.add(s.enterprise, s.start, s.end, s.factor)
    if s.after_factor is not None:
        if s.end is None:
            raise ValueError("after_factor needs an end")
        adjustments.add(s.enterprise, s.end, None, s.after_factor)


def _heavy_pollution(fleet: Fleet, s: HeavyPollutionAlert, adjustments: _Adjustments) -> None:
    units = [e for e in fleet.enterprises if e.city.code == s.city]
    if not units:
        raise KeyError(f"no enterprise of the fleet is in city {s.city!r}")
    for ref in s.ignored_by:
        if fleet.enterprise(ref).city.code != s.city:
            raise ValueError(f"{ref} is not in {s.city}")
    effective = s.start + timedelta(hours=s.lead_hours)
    for unit in units:
        if unit.id not in s.ignored_by:
            cut = 1 - HEAVY_POLLUTION_CUTS[s.level] - 0.05
            adjustments.add(unit.id, effective, s.end, cut, output=True)


def _monitor(
    fleet: Fleet, spec: VocMonitorSpec, seed: int, episodes: list[ExceedanceEpisode]
) -> VocMonitorProfile:
    enterprise = fleet.enterprise(spec.enterprise)
    standard, limits = _LIMIT_PRESETS[spec.limits]
    baseline = {NMHC: spec.nmhc_baseline_mg_m3, METHANE: 1.6}
    baseline.update(dict(zip(AROMATICS, (0.04, 0.15, 0.05, 0.12), strict=True)))
    return VocMonitorProfile(
        monitor_id=spec.id,
        enterprise_code=enterprise.code,
        password=SecretStr(simulated_device_password(seed, spec.id)),
        standard=standard,
        limits=limits,
        baseline_mg_m3=baseline,
        flow_m3_s=spec.flow_m3_s,
        exceedance_probability_per_day=spec.exceedance_probability_per_day,
        exceedance_episodes=tuple(episodes),
    )


def is_division(ref: str) -> bool:
    """Whether a scenario's reference is a region's GB/T 2260 code (``140882``)."""
    return len(ref) == 6 and ref.isdigit()


def load_scenario(path: Path) -> Scenario:
    """Read, validate and resolve a scenario file; ``ConfigFileError`` lists every problem."""
    config = load_model_file(ScenarioConfig, path, "scenario")
    fleet_path = (path.parent / config.fleet).resolve()
    fleet_config = load_model_file(FleetConfig, fleet_path, "fleet file")
    return build_scenario(config, fleet_config, str(path))
