"""A unit's own monthly energy figures, as the simulator reports them, and the scenario that
shows daily sums falling short of one (DOMAIN.md §5: within 5%) end to end."""

import io
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.production import EnergyTotalReport, decode_production_report
from contracts.readings import EnergyType, decode_reading
from simulators.runner import Simulation
from simulators.scenario import load_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"
MARCH = datetime(2026, 3, 1, tzinfo=CHINA_STANDARD_TIME)


def quantity(report: EnergyTotalReport) -> float:
    given = (report.consumption_kwh, report.consumption_m3, report.consumption_t)
    return next(q for q in (*given, report.consumption_gj) if q is not None)


def simulate(name: str, start: datetime | None = None):
    """The scenario's monthly figures by (unit, energy type), and the readings' sums for
    February by the same key (from ``start`` when given)."""
    scenario = load_scenario(SCENARIOS / name)
    if start is not None:
        scenario.plan.start = start
    figures: dict[tuple[str, str], float] = {}
    metered: dict[tuple[str, str], float] = {}
    for record in Simulation(scenario.plan).records():
        if record.channel.value == "production":
            report = decode_production_report(record.payload)
            if isinstance(report, EnergyTotalReport):
                assert report.period == "month"
                figures[report.enterprise_code, report.energy_type.value] = quantity(report)
        elif record.channel.value == "readings" and not record.malformed:
            reading = decode_reading(record.payload)
            if reading.period_start < MARCH and reading.physical_quantity is not None:
                key = (reading.enterprise_code, reading.energy_type.value)
                metered[key] = metered.get(key, 0.0) + reading.physical_quantity
    return scenario, figures, metered


def test_a_whole_months_figures_are_what_was_used_and_a_lost_link_falls_short_of_one():
    scenario, figures, metered = simulate("monthly-deviation.yaml")
    steel = scenario.fleet.enterprise("hj-steel").code
    coking = scenario.fleet.enterprise("hj-coking").code
    power = scenario.fleet.enterprise("yh-power")
    # every metered energy type of every unit has its February figure
    assert set(figures) == {
        (e.code, m.energy_type.value) for e in scenario.fleet.enterprises for m in e.meters
    }
    for energy in ("electricity", "raw_coal", "steam", "water"):
        assert figures[coking, energy] == pytest.approx(metered[coking, energy], rel=1e-9)
    # the weigher's three lost days: about 3/28 of the month missing from what was sent
    short = 1 - metered[steel, "raw_coal"] / figures[steel, "raw_coal"]
    assert 0.08 < short < 0.13
    # a counter-only meter sends no consumption, but the unit's books count its use
    assert power.meter(EnergyType.ELECTRICITY).counter_only
    assert figures[power.code, "electricity"] > 0


def test_a_month_the_simulation_did_not_see_whole_has_no_figure():
    # from 2 February: a figure for the whole month would read as a 1/28 deviation
    _, figures, _ = simulate("monthly-deviation.yaml", datetime(2026, 2, 2, tzinfo=MARCH.tzinfo))
    assert figures == {}


@pytest.mark.services
@pytest.mark.timeout(900)
def test_the_monthly_deviation_scenario_raises_tells_and_acknowledges_it(local_stack):
    """``energywatch run --scenario scenarios/monthly-deviation.yaml``: the main job checks
    that the deviation fires at the month's end, reaches the works and the office, and is
    acknowledged, and that the coking plant's agreeing figures stay silent."""
    from energywatch.main_job import MainJob

    output = io.StringIO()
    job = MainJob(SCENARIOS / "monthly-deviation.yaml", 800.0, Console(file=output, width=160))
    assert job.run() == 0, output.getvalue()[-3000:]
    assert "data-quality.monthly-deviation" in output.getvalue()
