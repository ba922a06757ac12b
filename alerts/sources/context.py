"""What the rules are judged against: the register, the city plans, the statistics and each
rule's configuration (``RuleContext``), and the lookups the sources derive from them once
(``Lookup``): a unit's meters and monitors, its city plan, its products' limits.

``load_rule_context`` builds the context a process runs with from its settings.
"""

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Final, Protocol

from alerts.routing import registration_area
from alerts.rules.barometer import BarometerConfig
from alerts.rules.budget_forecast import ForecastConfig
from alerts.rules.data_quality import DataQualityConfig
from alerts.rules.device_silence import DeviceSilenceConfig
from alerts.rules.energy_budget import BudgetConfig
from alerts.rules.heavy_pollution import EmergencyLevel, HeavyPollutionConfig, ListedUnit
from alerts.rules.product_energy import ProductEnergyConfig
from alerts.rules.product_energy import ProductEnergyLimit as RuleProductLimit
from alerts.rules.voc_limits import VocLimit, VocLimitsConfig
from energywatch.config_files import ConfigFileError
from energywatch.settings import Settings
from plans.cn_calendar import ChinaCalendar
from plans.register import (
    EnterpriseEntry,
    LimitLevel,
    MeterEntry,
    Product,
    ProductEnergyLimit,
    Register,
    VocMonitorEntry,
    load_register,
)
from plans.statistics import StatisticsTable, load_statistics
from plans.targets import CITY_PLANS_DIR, CityPlan, known_regions, load_city_plans

_DIVISION: Final = re.compile(r"^\d{6}$")
#: Limit levels that are a ceiling: above the local limit (限额) or the national baseline
#: (基准水平) a unit is below standard.
_CEILINGS: Final = (LimitLevel.LIMIT, LimitLevel.BASELINE)
#: Limits in kWh per tonne need the electricity per tonne, which no view computes yet.
_ENERGY_UNITS: Final = {"kgce/t": "t", "kgce/MWh": "MWh"}

Cuts = Mapping[EmergencyLevel, float]


def _default_cuts() -> dict[tuple[str, str], Cuts]:
    return {
        # DOMAIN.md §8: a yellow / orange / red alert requires city-wide cuts of at least
        # 10% / 20% / 30%; a listed unit with no measures of its own is held to those
        ("*", "*"): {
            EmergencyLevel.YELLOW: 0.10,
            EmergencyLevel.ORANGE: 0.20,
            EmergencyLevel.RED: 0.30,
        },
        # DOMAIN.md §8, cement clinker: grade B −20% at orange and stop at red; grade C stops
        # half its lines at yellow and stops at orange
        ("cement", "B"): {EmergencyLevel.ORANGE: 0.20, EmergencyLevel.RED: 1.0},
        ("cement", "C"): {
            EmergencyLevel.YELLOW: 0.50,
            EmergencyLevel.ORANGE: 1.0,
            EmergencyLevel.RED: 1.0,
        },
    }


@dataclass(frozen=True)
class EmergencyMeasures:
    """The cut (a fraction of baseline energy, 1.0: stop) a listed unit's pre-agreed measures
    require at each heavy-pollution level, by (industry, performance grade); ``*`` stands for
    any industry or grade, the most specific entry wins. The city's emergency list
    (应急减排清单) gives the real measures; the defaults are DOMAIN.md §8's."""

    cuts: Mapping[tuple[str, str], Cuts] = field(default_factory=_default_cuts)

    def required_cuts(self, industry: str, grade: str) -> Cuts:
        for key in ((industry, grade), ("*", grade), (industry, "*"), ("*", "*")):
            if key in self.cuts:
                return self.cuts[key]
        return {}


@dataclass(frozen=True)
class RuleContext:
    """Everything the rules are judged against, fixed for the life of a process.

    ``voc`` None takes each monitor's limits from the register. Product limits come from the
    register's products (or, for a product it lists without limits, the unit's city plan);
    ``product.limits`` is the fallback for products neither names. The budget's seasonal
    profile also pro-rates the barometer's consumption caps.
    """

    register: Register
    plans: Sequence[CityPlan] = ()
    statistics: StatisticsTable | None = None
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    voc: VocLimitsConfig | None = None
    product: ProductEnergyConfig = field(default_factory=ProductEnergyConfig)
    quality: DataQualityConfig = field(default_factory=DataQualityConfig)
    silence: DeviceSilenceConfig = field(default_factory=DeviceSilenceConfig)
    heavy: HeavyPollutionConfig = field(default_factory=HeavyPollutionConfig)
    barometer: BarometerConfig = field(default_factory=BarometerConfig)
    emergency: EmergencyMeasures = field(default_factory=EmergencyMeasures)
    calendar: ChinaCalendar = field(default_factory=ChinaCalendar.load)
    #: A period is judged once it ended this long ago (the stream's watermark grace).
    settle: timedelta = timedelta(minutes=30)
    #: The heavy-pollution baseline: the same hour of the week over this many weeks before.
    baseline_weeks: int = 4
    #: Declarations that ended longer ago than this are forgotten (generous: a replay of last
    #: winter still finds its declarations, and a city makes a handful a year).
    declaration_retention: timedelta = timedelta(days=366)
    #: Judge time-driven rules (silent devices, the last settled hour) at the latest data
    #: time heard instead of the wall clock: for replays of past data, where every device
    #: would otherwise look silent since the replay's end (``EW_EVALUATOR_CLOCK=data``).
    data_clock: bool = False
    #: Whose watermark says which periods the stream has finished: a period is judged only
    #: once it ended ``settle`` before both the wall clock and this watermark (None: the wall
    #: clock alone).
    readings_topic: str | None = None
    stream_consumer: str | None = None


def load_rule_context(settings: Settings) -> RuleContext:
    """The context of a process: the register (``register_path``; none: an empty one), the
    city plans (``plans_dir``, default the packaged seed plans) and the statistics
    (``statistics_path``; none: no barometer). ``ConfigFileError`` names every problem, and
    refuses a statistics file of invented numbers (``# status: illustrative``)."""
    register = (
        load_register(settings.register_path)
        if settings.register_path is not None
        else Register(name="(no register)", enterprises=())
    )
    plans = load_city_plans(settings.plans_dir or CITY_PLANS_DIR)
    statistics = None
    if settings.statistics_path is not None:
        statistics = load_statistics(settings.statistics_path, known_regions(plans))
        if statistics.illustrative:
            raise ConfigFileError(
                f"{settings.statistics_path}: illustrative numbers (# status: illustrative) "
                "are not statistics; give the statistics bureau's figures"
            )
    return RuleContext(
        register=register,
        plans=tuple(plans.values()),
        statistics=statistics,
        data_clock=settings.evaluator_clock == "data",
        readings_topic=settings.readings_topic,
        stream_consumer=settings.worker_app_id,
    )


class Placed(Protocol):
    """Anything about a subject that may belong to a unit: a ``Condition``, a lifecycle
    event, an ``AlertEvent``."""

    @property
    def subject(self) -> str: ...

    @property
    def enterprise_code(self) -> str | None: ...


def region_of(condition: Placed, register: Register) -> str | None:
    """The county (GB/T 2260) a condition belongs to, for routing: a unit's county from the
    register (or the area in its credit code if the register lacks it); for a regional
    subject (a county or city code), the subject itself. Takes a ``Condition`` or anything
    else with a ``subject`` and an ``enterprise_code`` (a lifecycle event)."""
    code = condition.enterprise_code
    if code is not None:
        enterprise = register.enterprises_by_code.get(code)
        if enterprise is not None:
            return enterprise.county
        area = registration_area(code)
        return area if _DIVISION.match(area) else None
    return condition.subject if _DIVISION.match(condition.subject) else None


def voc_limits_from_register(register: Register) -> VocLimitsConfig:
    """Each registered monitor's limits, under its standard."""
    return VocLimitsConfig(
        by_monitor={
            monitor.mn: tuple(
                VocLimit(code, limit.single_mg_m3, limit.hourly_avg_mg_m3, monitor.standard)
                for code, limit in sorted(monitor.limits.items())
            )
            for monitor in register.voc_monitors
            if monitor.limits
        }
    )


def _rule_limit(code: str, levels: Sequence[ProductEnergyLimit]) -> RuleProductLimit | None:
    """The strictest ceiling (local limit or national baseline) and the benchmark below it,
    in one energy unit."""
    ceilings = [x for x in levels if x.level in _CEILINGS and x.unit in _ENERGY_UNITS]
    if not ceilings:
        return None
    ceiling = min(ceilings, key=lambda x: x.value)
    benchmarks = [
        x.value
        for x in levels
        if x.level is LimitLevel.BENCHMARK and x.unit == ceiling.unit and x.value < ceiling.value
    ]
    return RuleProductLimit(
        product=code,
        limit_per_t=ceiling.value,
        benchmark_per_t=min(benchmarks) if benchmarks else None,
        unit=ceiling.unit,
        source=ceiling.source,
    )


def _levels(
    enterprise: EnterpriseEntry, code: str, plan: CityPlan | None
) -> tuple[ProductEnergyLimit, ...]:
    listed = next((p for p in enterprise.products if p.code == code), None)
    levels = listed.applicable_limits() if listed else ()
    if not levels and plan is not None:
        planned = next((p for p in plan.product_limits if p.code == code), None)
        if planned is not None:
            route = listed.route if listed else None
            levels = Product(code=code, route=route, limits=planned.limits).applicable_limits()
    return tuple(x for x in levels if x.scope in ("national", enterprise.city))


def output_unit(limit: RuleProductLimit) -> str | None:
    """What a limit divides by: ``t`` or ``MWh`` (None: a unit the sources cannot judge)."""
    return _ENERGY_UNITS.get(limit.unit)


class Lookup:
    """Indexes over the context, built once: who owns which device, where a unit is, what
    its products are held to."""

    def __init__(self, context: RuleContext) -> None:
        self.context = context
        register = context.register
        self.enterprises = register.enterprises_by_code
        self.plans_by_city = {plan.city.id: plan for plan in context.plans}
        self.voc = context.voc or voc_limits_from_register(register)
        meters: dict[str, list[MeterEntry]] = defaultdict(list)
        for meter in register.meters:
            meters[meter.enterprise_code].append(meter)
        self.meters = dict(meters)
        monitors: dict[str, list[VocMonitorEntry]] = defaultdict(list)
        for monitor in register.voc_monitors:
            monitors[monitor.enterprise_code].append(monitor)
        self.monitors = dict(monitors)
        self.limited_pollutants = sorted(
            {limit.pollutant for limits in self.voc.by_monitor.values() for limit in limits}
        )
        self._products: dict[str, ProductEnergyConfig] = {}

    def plan_of(self, enterprise: EnterpriseEntry) -> CityPlan | None:
        return self.plans_by_city.get(enterprise.city)

    def product_config(self, code: str) -> ProductEnergyConfig:
        """The product-energy configuration of unit ``code``: its products' limits."""
        config = self._products.get(code)
        if config is None:
            enterprise = self.enterprises.get(code)
            limits = dict(self.context.product.limits)
            if enterprise is not None:
                plan = self.plan_of(enterprise)
                codes = {p.code for p in enterprise.products}
                codes |= {p.code for p in plan.product_limits} if plan else set()
                for product in sorted(codes):
                    limit = _rule_limit(product, _levels(enterprise, product, plan))
                    if limit is not None:
                        limits[product] = limit
            config = self._products[code] = replace(self.context.product, limits=limits)
        return config

    def listed_units(self, cities: set[str]) -> list[ListedUnit]:
        """Units on the emergency list (with a performance grade) in ``cities`` (city ids, as
        the register and the declarations name them), with the cuts their measures require."""
        listed = []
        for enterprise in self.context.register.enterprises:
            grade = enterprise.emergency_grade
            if grade is None or enterprise.city not in cities:
                continue
            cuts = self.context.emergency.required_cuts(enterprise.industry, grade)
            listed.append(ListedUnit(enterprise.code, enterprise.city, grade, cuts))
        return listed
