"""The electricity simulator: deterministic, plausible, and able to trip the threshold."""

from datetime import UTC, datetime

from contracts.readings import encode_reading
from simulators.electricity import INTERVAL, electricity_readings, simulated_fleet

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def produce(seed: int, units: int = 10, intervals: int = 96) -> bytes:
    fleet = simulated_fleet(units, seed)
    return b"\n".join(
        encode_reading(r) for r in electricity_readings(fleet, START, intervals, seed)
    )


def test_the_same_seed_gives_byte_identical_output():
    assert produce(3) == produce(3)


def test_a_different_seed_gives_different_output():
    assert produce(3) != produce(4)


def test_every_meter_reports_every_interval_once():
    fleet = simulated_fleet(7, 1)
    rows = list(electricity_readings(fleet, START, 10, 1))
    keys = {(r.meter_id, r.period_start) for r in rows}
    assert len(rows) == len(keys) == 70
    assert max(r.period_start for r in rows) == START + 9 * INTERVAL


def test_units_are_key_energy_using_units_by_size():
    fleet = simulated_fleet(50, 2)
    for unit in fleet:
        yearly_tce = unit.mean_load_kw * 8760 * 0.1229 / 1000
        assert 1_500 <= yearly_tce <= 13_000


def test_day_shift_load_exceeds_night_load():
    fleet = simulated_fleet(20, 5)
    rows = list(electricity_readings(fleet, START, 96, 5, overload_probability=0))
    # China time 14:00 is 06:00 UTC; 02:00 is 18:00 UTC the day before
    day = sum((r.consumption_kwh or 0.0) for r in rows if r.period_start.hour == 6)
    night = sum((r.consumption_kwh or 0.0) for r in rows if r.period_start.hour == 18)
    assert day > night * 1.2


def test_overload_episodes_happen_and_only_when_asked_for():
    fleet = simulated_fleet(20, 5)
    calm = list(electricity_readings(fleet, START, 96, 5, overload_probability=0))
    stormy = list(electricity_readings(fleet, START, 96, 5, overload_probability=0.05))
    peak = max(u.mean_load_kw for u in fleet) * 0.25
    assert max((r.consumption_kwh or 0.0) for r in calm) < peak * 1.6
    assert max((r.consumption_kwh or 0.0) for r in stormy) > peak * 1.6
