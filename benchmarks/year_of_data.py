"""What a year of EnergyWatch data looks like for a simulated fleet (pure: no IO).

The dashboards benchmark (``benchmarks/dashboards.py``) needs the tables the dashboards read
filled at the row counts the real pipeline would produce. Producing them by running the
simulator through Kafka and the worker would take days, so this module plans the data from the
fleet's own description instead, and ``benchmarks/year_of_data_fill.py`` writes it set-based
in SQL. What is planned here, per unit, meter and VOC monitor, is what gives the rows a
realistic shape (values need not follow the simulator's physics):

- every meter of the benchmark fleet (``benchmarks.simulation.benchmark_fleet``) reporting at
  the fleet's interval, its mean from the unit's annual tce and energy mix, with the industry's
  working hours, night level, weekends, seasons and planned outages;
- gaps: a few devices offline for hours to days (the completeness rule's subject);
- one VOC monitor at every coking and methanol unit (the fleet's key VOC emitters), with the
  standard's limits and a few exceedance episodes a year;
- the alerts those situations raise, with their lifecycle events (``plan_alerts``).
"""

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from pydantic import SecretStr

from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType
from plans.coal_factors import CoalFactors
from plans.register import Register
from simulators.credentials import register_for_fleet, simulated_device_password
from simulators.fleet import Enterprise, Fleet, build_fleet
from simulators.industries import OperatingPattern
from simulators.voc import (
    AROMATICS,
    GB_31571_STACK,
    GB_37822_NMHC,
    METHANE,
    NMHC,
    PARAMETER_CODES,
    VocMonitorProfile,
)

#: industries whose units carry a VOC monitor in the benchmark fleet
VOC_INDUSTRIES: Final = ("coking", "methanol")
#: the pollutant codes every benchmark monitor reports (analysers, then stack parameters)
VOC_CODES: Final = (NMHC, METHANE, *AROMATICS, *PARAMETER_CODES)
#: device gaps: share of meters with at least one, and how long one lasts
_GAPPY_METER_SHARE: Final = 0.08
_GAP_HOURS: Final = (2.0, 96.0)
#: VOC exceedance episodes per monitor and day, and how long one lasts (hours)
_EPISODES_PER_DAY: Final = 0.03
_EPISODE_HOURS: Final = (1, 5)
_YEAR_INTERVALS: Final = 365 * 96


@dataclass(frozen=True)
class DatasetSpec:
    """How much data: ``units`` of the benchmark fleet over ``days`` up to ``end`` (UTC, on a
    quarter hour); VOC minute samples only for the last ``voc_minute_days``, and 15-minute
    rollups only for the last ``quarter_hour_days`` (None: every day, as the pipeline keeps
    them; fewer when the disk cannot hold a year of them)."""

    units: int = 500
    days: int = 365
    end: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    voc_minute_days: int = 7
    quarter_hour_days: int | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        if self.end.tzinfo is None or self.end.minute % 15 or self.end.second:
            raise ValueError("end must be timezone-aware and on a quarter hour")
        if self.units < 1 or self.days < 1 or self.voc_minute_days < 0:
            raise ValueError("units and days must be positive, voc_minute_days not negative")

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def quarter_hours_from(self) -> datetime:
        if self.quarter_hour_days is None:
            return self.start
        return max(self.start, self.end - timedelta(days=self.quarter_hour_days))

    @property
    def voc_minutes_from(self) -> datetime:
        return max(self.start, self.end - timedelta(days=self.voc_minute_days))


@dataclass(frozen=True)
class MeterPlan:
    meter_id: str
    enterprise_code: str
    energy_type: str
    physical_unit: str
    interval_seconds: int
    mean_per_interval: float  # physical units per interval before shape factors
    counter: bool
    work_start: int  # CST hour the working day starts; outside it the night level applies
    work_end: int
    night_level: float
    weekend_factor: float
    seasonal: tuple[float, ...]  # 12 monthly factors


@dataclass(frozen=True)
class UnitPlan:
    code: str
    name: str
    county: str
    city: str
    industry: str
    annual_tce: float
    output_value_cny_per_tce: float
    #: (product code, 't' or 'MWh', kgce per unit of product, share of the unit's energy)
    products: tuple[tuple[str, str, float, float], ...]


@dataclass(frozen=True)
class MonitorPlan:
    monitor_id: str
    enterprise_code: str
    county: str
    baseline_mg_m3: dict[str, float]  # analyser codes
    hourly_limit_mg_m3: float  # NMHC
    single_limit_mg_m3: float | None
    flow_m3_s: float


@dataclass(frozen=True)
class Span:
    """A stretch of time for one key (a unit's planned outage, a meter's gap, an episode)."""

    key: str
    start: datetime
    end: datetime
    level: float = 0.0


@dataclass(frozen=True)
class Chunk:
    """One China-local month of the dataset (clipped to its start and end)."""

    start: datetime
    end: datetime
    cst_month: date


@dataclass(frozen=True)
class DatasetPlan:
    spec: DatasetSpec
    fleet: Fleet
    register: Register
    units: tuple[UnitPlan, ...]
    meters: tuple[MeterPlan, ...]
    monitors: tuple[MonitorPlan, ...]
    unit_outages: tuple[Span, ...]
    meter_gaps: tuple[Span, ...]
    voc_episodes: tuple[Span, ...]


def cst_month_start(at: datetime) -> datetime:
    local = at.astimezone(CHINA_STANDARD_TIME)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _next_month(start: datetime) -> datetime:
    local = start.astimezone(CHINA_STANDARD_TIME)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return local.replace(year=year, month=month).astimezone(UTC)


def chunks(spec: DatasetSpec) -> list[Chunk]:
    """The dataset's China-local months, oldest first: each generated in one go, so a
    month's rollups are complete within its chunk."""
    out = []
    first = cst_month_start(spec.start)
    while first < spec.end:
        following = _next_month(first)
        local = first.astimezone(CHINA_STANDARD_TIME)
        out.append(
            Chunk(
                max(first, spec.start), min(following, spec.end), date(local.year, local.month, 1)
            )
        )
        first = following
    return out


def _working_hours(enterprise: Enterprise) -> tuple[int, int]:
    profile = enterprise.profile
    if profile.operating_pattern is OperatingPattern.CONTINUOUS:
        return (6, 22)  # continuous plants dip slightly at night
    return profile.working_hours_or_default()


def _meters(enterprise: Enterprise, interval_minutes: int, factors: CoalFactors) -> list[MeterPlan]:
    profile = enterprise.profile
    intervals = _YEAR_INTERVALS * 15 / interval_minutes
    work_start, work_end = _working_hours(enterprise)
    out = []
    for meter in enterprise.meters:
        if meter.energy_type is EnergyType.WATER:
            unit, annual = "m3", enterprise.annual_tce * profile.water_m3_per_tce
        else:
            kgce, unit = factors.kgce_per_unit(meter.energy_type, date(2025, 1, 1))
            share = profile.energy_mix.get(meter.energy_type, 0.0)
            annual = enterprise.annual_tce * share * 1000 / kgce
        out.append(
            MeterPlan(
                meter_id=meter.meter_id,
                enterprise_code=enterprise.code,
                energy_type=meter.energy_type.value,
                physical_unit=unit,
                interval_seconds=interval_minutes * 60,
                mean_per_interval=annual / intervals,
                counter=meter.counter,
                work_start=work_start,
                work_end=work_end,
                night_level=profile.night_level,
                weekend_factor=profile.weekend_factor,
                seasonal=tuple(profile.seasonal),
            )
        )
    return out


def _unit(enterprise: Enterprise) -> UnitPlan:
    profile = enterprise.profile
    return UnitPlan(
        code=enterprise.code,
        name=enterprise.name,
        county=enterprise.county.division,
        city=enterprise.city.code,
        industry=profile.code,
        annual_tce=enterprise.annual_tce,
        output_value_cny_per_tce=profile.output_value_cny_per_tce,
        products=tuple(
            (p.code, p.unit, p.unit_energy_kgce_per_unit, p.energy_share) for p in profile.products
        ),
    )


def _monitor_profiles(fleet: Fleet) -> list[VocMonitorProfile]:
    """One monitor per coking and methanol unit: coking under GB 37822 (fugitive NMHC inside
    the plant), methanol on a GB 31571 stack."""
    rng = random.Random(f"voc:{fleet.name}:{fleet.seed}")  # noqa: S311 - seeded test data, not secrets
    profiles = []
    for index, enterprise in enumerate(fleet.enterprises):
        if enterprise.profile.code not in VOC_INDUSTRIES:
            continue
        monitor_id = f"{enterprise.county.division}VOC{index:04d}"
        if enterprise.profile.code == "coking":
            standard, limits = "GB 37822-2019", {NMHC: GB_37822_NMHC}
            level = GB_37822_NMHC.hourly_avg_mg_m3 * rng.uniform(0.15, 0.3)
        else:
            standard, limits = "GB 31571-2015", dict(GB_31571_STACK)
            level = rng.uniform(15, 40)
        baseline = {NMHC: level, METHANE: rng.uniform(1.2, 1.9)}
        baseline |= dict(zip(AROMATICS, (0.01, 0.05, 0.02, 0.04), strict=True))
        baseline = {k: round(v * (level if k in AROMATICS else 1), 3) for k, v in baseline.items()}
        profiles.append(
            VocMonitorProfile(
                monitor_id=monitor_id,
                enterprise_code=enterprise.code,
                password=SecretStr(simulated_device_password(fleet.seed, monitor_id)),
                standard=standard,
                limits=limits,
                baseline_mg_m3=baseline,
                flow_m3_s=round(rng.uniform(5, 60), 1),
            )
        )
    return profiles


def _spans(
    rng: random.Random, key: str, spec: DatasetSpec, count: int, hours: tuple[float, float]
) -> list[Span]:
    out = []
    total = spec.days * 24
    for _ in range(count):
        length = rng.uniform(*hours)
        begin = rng.uniform(0, max(total - length, 0))
        # on quarter hours, like the readings they cut out
        start = spec.start + timedelta(minutes=15 * math.floor(begin * 4))
        end = start + timedelta(minutes=15 * max(1, round(length * 4)))
        out.append(Span(key, start, min(end, spec.end)))
    return out


def plan_dataset(spec: DatasetSpec) -> DatasetPlan:
    """Everything about the fleet the SQL generator needs, deterministically from ``spec``."""
    from benchmarks.simulation import benchmark_fleet

    fleet = build_fleet(benchmark_fleet(spec.units, seed=spec.seed))
    factors = CoalFactors.load()
    profiles = _monitor_profiles(fleet)
    years = range(spec.start.astimezone(CHINA_STANDARD_TIME).year, spec.end.year + 1)
    register = register_for_fleet(fleet, profiles, years)
    rng = random.Random(f"year-of-data:{spec.seed}")  # noqa: S311 - seeded test data, not secrets
    outages: list[Span] = []
    gaps: list[Span] = []
    for enterprise in fleet.enterprises:
        profile = enterprise.profile
        expected = profile.planned_outages_per_year * spec.days / 365
        count = int(expected) + (rng.random() < expected - int(expected))
        low, high = profile.outage_days
        for span in _spans(rng, enterprise.code, spec, count, (low * 24, high * 24)):
            outages.append(Span(span.key, span.start, span.end, profile.outage_level))
        for meter in enterprise.meters:
            if rng.random() < _GAPPY_METER_SHARE:
                gaps.extend(_spans(rng, meter.meter_id, spec, rng.randint(1, 3), _GAP_HOURS))
    episodes: list[Span] = []
    for monitor in profiles:
        count = sum(rng.random() < _EPISODES_PER_DAY for _ in range(spec.days))
        for span in _spans(rng, monitor.monitor_id, spec, count, _EPISODE_HOURS):
            # whole hours, so the hourly averages of the episode are above the limit
            start = span.start.replace(minute=0)
            hours = max(1, round((span.end - span.start).total_seconds() / 3600))
            episodes.append(
                Span(span.key, start, start + timedelta(hours=hours), rng.uniform(1.2, 3.0))
            )
    counties = {e.code: e.county.division for e in fleet.enterprises}
    monitors = tuple(
        MonitorPlan(
            monitor_id=p.monitor_id,
            enterprise_code=p.enterprise_code,
            county=counties[p.enterprise_code],
            baseline_mg_m3=dict(p.baseline_mg_m3),
            hourly_limit_mg_m3=p.limits[NMHC].hourly_avg_mg_m3,
            single_limit_mg_m3=p.limits[NMHC].single_mg_m3,
            flow_m3_s=p.flow_m3_s,
        )
        for p in profiles
    )
    return DatasetPlan(
        spec=spec,
        fleet=fleet,
        register=register,
        units=tuple(_unit(e) for e in fleet.enterprises),
        meters=tuple(
            m for e in fleet.enterprises for m in _meters(e, fleet.interval_minutes, factors)
        ),
        monitors=monitors,
        unit_outages=tuple(outages),
        meter_gaps=tuple(gaps),
        voc_episodes=tuple(episodes),
    )


def expected_rows(plan: DatasetPlan) -> dict[str, int]:
    """Roughly how many rows each big table gets (before gaps), to say what is coming and to
    check the disk has room for it."""
    spec = plan.spec
    intervals = spec.days * 96
    units = {u.code: u for u in plan.units}
    regional_series: set[tuple[str, str, str]] = set()
    for meter in plan.meters:
        unit = units[meter.enterprise_code]
        for kind in ("county", "city", "industry"):
            regional_series.add((kind, getattr(unit, kind), meter.energy_type))
            regional_series.add((kind, getattr(unit, kind), "all"))
    quarter_days = min(spec.quarter_hour_days or spec.days, spec.days)
    per_series = quarter_days * 96 + spec.days * 24 + spec.days + spec.days // 30 + 1
    codes = len(VOC_CODES)
    return {
        "meter_readings": len(plan.meters) * intervals,
        "energy_rollups": (len(plan.meters) + len(plan.units) + len(regional_series)) * per_series
        + len(plan.meters) * (spec.days + spec.days // 30 + 1),
        "voc_samples": len(plan.monitors)
        * codes
        * (spec.days * 24 + min(spec.voc_minute_days, spec.days) * 1440),
        "voc_hourly": len(plan.monitors) * codes * spec.days * 24,
        "voc_daily": len(plan.monitors) * codes * spec.days,
    }


# -- alerts ---------------------------------------------------------------------------------


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32]


def _events(
    rule_id: str,
    subject: str,
    enterprise: str | None,
    region: str,
    severity: AlertSeverity,
    span: Span,
    message: str,
    value: float | None,
    threshold: float | None,
    unit: str,
    rng: random.Random,
    now: datetime,
) -> list[AlertEvent]:
    """One alert's lifecycle: fired; sometimes acknowledged; resolved unless still on at
    ``now``. Emitted a little after the data behind each event."""
    alert_id = _digest(rule_id, subject, span.start.isoformat())
    lag = timedelta(minutes=rng.uniform(1, 20))

    def event(kind: AlertKind, at: datetime, **extra: object) -> AlertEvent:
        return AlertEvent.model_validate(
            {
                "event_id": _digest(alert_id, kind.value, at.isoformat()),
                "alert_id": alert_id,
                "kind": kind,
                "rule_id": rule_id,
                "subject": subject,
                "enterprise_code": enterprise,
                "region_code": region,
                "severity": severity,
                "value": value,
                "threshold": threshold,
                "unit": unit,
                "message": message,
                "started_at": span.start,
                "at": at,
                "emitted_at": min(at + lag, now),
                **extra,
            }
        )

    out = [event(AlertKind.FIRED, span.start)]
    if rng.random() < 0.4:
        at = span.start + (span.end - span.start) / 3
        out.append(
            event(
                AlertKind.ACKNOWLEDGED,
                at,
                acknowledgement={
                    "user": "supervisor-bench",
                    "comment": "已通知企业核查",
                    "at": at,
                    "expires_at": at + timedelta(days=1),
                },
            )
        )
    if span.end < now:
        out.append(event(AlertKind.RESOLVED, span.end))
    return out


def plan_alerts(plan: DatasetPlan) -> list[AlertEvent]:
    """The alert history the dataset's situations raise: completeness for every device gap
    longer than a few hours (by CST day), VOC hourly exceedances for every episode, and a
    product-energy and a budget-pace alert now and then per industrial unit."""
    spec = plan.spec
    rng = random.Random(f"alerts:{spec.seed}")  # noqa: S311 - seeded test data, not secrets
    counties = {u.code: u.county for u in plan.units}
    events: list[list[AlertEvent]] = []
    for gap in plan.meter_gaps:
        code = gap.key.rsplit("-", 1)[0]
        if gap.end - gap.start < timedelta(hours=3):
            continue
        day = gap.start.astimezone(CHINA_STANDARD_TIME).replace(hour=0, minute=0, second=0)
        share = max(0.0, 1 - (gap.end - gap.start).total_seconds() / 86_400)
        events.append(
            _events(
                "data-quality.completeness",
                gap.key,
                code,
                counties[code],
                AlertSeverity.WARNING,
                Span(gap.key, day.astimezone(UTC) + timedelta(days=1), gap.end + timedelta(days=1)),
                f"{gap.key} sent {share:.0%} of expected uploads on {day.date()} (required 90%)",
                round(share, 4),
                0.9,
                "share",
                rng,
                spec.end,
            )
        )
    monitors = {m.monitor_id: m for m in plan.monitors}
    for episode in plan.voc_episodes:
        monitor = monitors[episode.key]
        value = monitor.hourly_limit_mg_m3 * episode.level
        events.append(
            _events(
                f"voc-hourly.{NMHC}",
                f"{monitor.monitor_id}.{NMHC}",
                monitor.enterprise_code,
                monitor.county,
                AlertSeverity.CRITICAL,
                episode,
                f"{monitor.monitor_id} NMHC hourly average {value:.1f} mg/m3 above its limit",
                round(value, 3),
                monitor.hourly_limit_mg_m3,
                "mg/m3",
                rng,
                spec.end,
            )
        )
    for unit in plan.units:
        for product, unit_name, kgce, _ in unit.products:
            for span in _spans(rng, unit.code, plan.spec, rng.randint(0, 2), (24, 24 * 10)):
                events.append(
                    _events(
                        f"product-energy.{product}.day",
                        unit.code,
                        unit.code,
                        unit.county,
                        AlertSeverity.WARNING,
                        span,
                        f"{product} at {unit.code}: above its limit",
                        round(kgce * rng.uniform(1.05, 1.2), 1),
                        kgce,
                        f"kgce/{unit_name.lower()}",
                        rng,
                        spec.end,
                    )
                )
        if rng.random() < 0.15:
            span = _spans(rng, unit.code, plan.spec, 1, (24 * 7, 24 * 60))[0]
            events.append(
                _events(
                    "energy-budget.unit.pace",
                    unit.code,
                    unit.code,
                    unit.county,
                    AlertSeverity.NOTICE,
                    span,
                    f"{unit.code} is using its energy budget faster than planned",
                    round(rng.uniform(1.0, 1.2), 3),
                    1.0,
                    "pace",
                    rng,
                    spec.end,
                )
            )
    # two situations on one subject starting together are one alert: keep the first
    out: list[AlertEvent] = []
    seen: set[str] = set()
    for group in events:
        if group[0].alert_id not in seen:
            seen.add(group[0].alert_id)
            out.extend(group)
    return out
