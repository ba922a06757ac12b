"""Simulated fleets and scenarios: deterministic, statistically sane, faults where scheduled."""

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType, decode_reading
from energywatch.config_files import ConfigFileError, load_model
from simulators.energy import EnergyModel
from simulators.faults import FaultType
from simulators.fleet import FleetConfig, build_fleet
from simulators.record_file import write_records
from simulators.records import Channel
from simulators.runner import Simulation
from simulators.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
ONE_OF_EACH = SCENARIOS / "fleets/one-of-each.yaml"


def one_of_each(interval_minutes: int = 15, seed: int = 3) -> EnergyModel:
    config = load_model(FleetConfig, ONE_OF_EACH.read_text(), str(ONE_OF_EACH))
    config = config.model_copy(update={"interval_minutes": interval_minutes, "seed": seed})
    return EnergyModel(build_fleet(config))


def test_the_same_scenario_gives_byte_identical_files(tmp_path):
    for name in ("a.jsonl.gz", "b.jsonl.gz"):
        write_records(
            tmp_path / name,
            Simulation(load_scenario(SCENARIOS / "misbehaving-meters.yaml").plan).records(),
        )
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_another_seed_gives_other_data_from_the_same_fleet():
    start = datetime(2026, 3, 1, tzinfo=UTC)
    first = next(one_of_each(seed=3).interval_samples(start))
    other = next(one_of_each(seed=4).interval_samples(start))
    assert [s.consumption for s in first] != [s.consumption for s in other]


def test_every_scenario_file_validates_and_runs_its_first_day():
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert len(files) >= 6
    for path in files:
        scenario = load_scenario(path)
        assert scenario.config.description
        plan = scenario.plan
        plan.end = plan.start + timedelta(hours=3)
        assert sum(1 for _ in Simulation(plan).records()) > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fleet": "fleets/nope.yaml"}, "nope.yaml: cannot read it"),
        ({"days": -1}, "days: Input should be greater than 0"),
        ({"start": "2026-03-01T00:00:00"}, "start: Input should have timezone info"),
        (
            {
                "situations": [
                    {
                        "type": "budget_overrun",
                        "enterprise": "ghost",
                        "start": "2026-03-01T00:00:00Z",
                        "factor": 1.2,
                    }
                ]
            },
            "situations.0 (budget_overrun): no enterprise 'ghost'",
        ),
        ({"situations": [{"type": "meteor_strike", "enterprise": "hj-steel"}]}, "situations.0"),
        (
            {
                "faults": [
                    {"type": "gap", "target": "hj-steel/plutonium", "start": "2026-03-01T00:00:00Z"}
                ]
            },
            "'plutonium' is not an energy type",
        ),
        (
            {
                "situations": [
                    {
                        "type": "product_energy_above_limit",
                        "enterprise": "yj-alumina",
                        "product": "alumina",
                        "start": "2026-03-01T00:00:00Z",
                        "factor": 1.01,
                    }
                ]
            },
            "raise the factor",
        ),
    ],
)
def test_a_bad_scenario_is_rejected_with_a_message_that_says_where_and_what(
    tmp_path, change, message
):
    base = {
        "name": "bad",
        "description": "a scenario with one thing wrong",
        "fleet": str(SCENARIOS / "fleets/yuncheng-industrial.yaml"),
        "start": "2026-03-01T00:00:00+08:00",
        "days": 1,
    }
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**base, **change}))
    with pytest.raises(ConfigFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_scenario(path)


def test_each_unit_uses_about_its_annual_tce_in_a_year_within_its_industry_band():
    model = one_of_each(interval_minutes=60)
    start = datetime(2025, 1, 1, tzinfo=CHINA_STANDARD_TIME)
    by_meter = {m.meter_id: e for e in model.fleet.enterprises for m in e.meters}
    totals = dict.fromkeys((e.id for e in model.fleet.enterprises), 0.0)
    for step, samples in enumerate(model.interval_samples(start)):
        if step == 24 * 365:
            break
        for s in samples:
            if s.energy_type is not EnergyType.WATER:
                factor, _ = model.factors.kgce_per_unit(s.energy_type, s.period_start.date())
                totals[by_meter[s.meter_id].id] += (s.consumption or 0) * factor / 1000
    for enterprise in model.fleet.enterprises:
        low, high = enterprise.profile.annual_tce_band
        assert low <= totals[enterprise.id] <= high, enterprise.id
        assert totals[enterprise.id] == pytest.approx(enterprise.annual_tce, rel=0.02), (
            enterprise.id
        )


def electricity_by_hour_and_weekday(
    industry: str, days: int = 28
) -> tuple[float, float, float, float]:
    """Mean electricity on weekday days, weekend days, weekday 10:00-16:00 and 01:00-04:00."""
    model = one_of_each()
    enterprise = next(e for e in model.fleet.enterprises if e.profile.code == industry)
    meter = enterprise.meter(EnergyType.ELECTRICITY)
    start = datetime(2025, 3, 3, tzinfo=CHINA_STANDARD_TIME)  # a Monday, no holidays for weeks
    weekday: list[float] = []
    weekend: list[float] = []
    day: list[float] = []
    night: list[float] = []
    for s, _ in zip(model.meter_series(enterprise, meter, start), range(96 * days), strict=False):
        local = s.period_start.astimezone(CHINA_STANDARD_TIME)
        value = s.consumption or 0.0
        (weekend if local.weekday() >= 5 else weekday).append(value)
        if local.weekday() < 5 and 10 <= local.hour < 16:
            day.append(value)
        if local.weekday() < 5 and 1 <= local.hour < 4:
            night.append(value)
    return tuple(statistics.fmean(v) for v in (weekday, weekend, day, night))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("industry", "weekday_over_weekend", "day_over_night"),
    [("government", 1.3, 1.5), ("school", 1.3, 1.5), ("hospital", 1.05, 1.3)],  # wards never close
)
def test_public_institutions_work_weekdays_and_daytime(
    industry, weekday_over_weekend, day_over_night
):
    weekday, weekend, day, night = electricity_by_hour_and_weekday(industry)
    assert weekday > weekend * weekday_over_weekend
    assert day > night * day_over_night


@pytest.mark.parametrize("industry", ["steel", "cement", "aluminium", "data_centre"])
def test_continuous_processes_barely_notice_weekends_or_nights(industry):
    weekday, weekend, day, night = electricity_by_hour_and_weekday(industry)
    assert weekend == pytest.approx(weekday, rel=0.1)
    assert night == pytest.approx(day, rel=0.15)


def test_counter_only_meters_send_counters_that_only_grow():
    scenario = load_scenario(SCENARIOS / "budget-overrun.yaml")
    power = scenario.fleet.enterprise("yh-power").meter(EnergyType.ELECTRICITY)
    assert power.counter_only
    counters: list[float] = []
    for record in Simulation(scenario.plan).records():
        if record.key == power.meter_id:
            reading = decode_reading(record.payload)
            assert reading.physical_quantity is None
            assert reading.physical_counter is not None
            counters.append(reading.physical_counter)
        if len(counters) == 200:
            break
    assert counters == sorted(counters)
    assert len(set(counters)) == len(counters)


def test_a_budget_overrun_raises_energy_use_from_its_start_only():
    scenario = load_scenario(SCENARIOS / "budget-overrun.yaml")
    cement = scenario.fleet.enterprise("jx-cement")
    switch = datetime(2026, 3, 10, tzinfo=CHINA_STANDARD_TIME)
    assert scenario.plan.energy.adjustment(cement.id, switch - timedelta(minutes=15)) == 1.0
    assert scenario.plan.energy.adjustment(cement.id, switch) == pytest.approx(1.35)
    assert scenario.plan.energy.adjustment("hj-steel", switch) == 1.0


def test_in_a_heavy_pollution_alert_everyone_cuts_after_the_lead_time_but_the_one_who_ignores_it():
    scenario = load_scenario(SCENARIOS / "heavy-pollution-ignored.yaml")
    adjust = scenario.plan.energy.adjustment
    effective = datetime(2026, 3, 12, 12, tzinfo=CHINA_STANDARD_TIME)
    assert adjust("jx-cement", effective - timedelta(minutes=15)) == 1.0
    assert adjust("jx-cement", effective) <= 0.8
    assert adjust("hj-steel", effective) == 1.0


def test_every_scheduled_fault_fires_exactly_at_its_scheduled_interval():
    scenario = load_scenario(SCENARIOS / "misbehaving-meters.yaml")
    simulation = Simulation(scenario.plan)
    records = list(simulation.records())
    fired: dict[tuple[FaultType, str], list[datetime]] = {
        (e.type, e.target): [] for e in simulation.injector.events
    }
    for event in simulation.injector.events:
        fired[(event.type, event.target)].append(event.period_start)
    for spec in scenario.plan.faults:
        if spec.start is None or spec.probability is not None:
            continue
        times = fired[(spec.type, spec.target)]
        assert min(times) == spec.start, spec
        if spec.end is not None:
            assert max(times) < spec.end, spec
    assert {t for t, _ in fired} == set(FaultType)

    steel = scenario.fleet.enterprise("hj-steel").meter(EnergyType.ELECTRICITY).meter_id
    gap_start = datetime(2026, 3, 2, 10, tzinfo=CHINA_STANDARD_TIME)
    sent = {decode_reading(r.payload).period_start for r in records if r.key == steel}
    assert gap_start - timedelta(minutes=15) in sent
    assert not any(gap_start <= t < gap_start + timedelta(hours=2) for t in sent)
    assert any(r.malformed and r.channel is Channel.VOC for r in records)
