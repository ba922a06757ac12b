"""A seeded fleet of key energy-using units with electricity meters.

Pure and deterministic: the same seed, start and count give the same readings, in the same
order, byte for byte. Load follows a day/night and weekday/weekend shape with noise; rare
overload episodes push a meter over the static threshold so alerts have something to find.
"""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.identifiers import uscc_check_character
from contracts.readings import ElectricityReading

INTERVAL = timedelta(minutes=15)
# County-level administrative division codes of the five seed cities (GB/T 2260), so the
# simulated credit codes look like units registered there.
_AREA_CODES = ("610702", "211402", "512002", "610402", "140802")
_ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@dataclass(frozen=True)
class SimulatedUnit:
    enterprise_code: str
    meter_id: str
    mean_load_kw: float


def simulated_enterprise_code(rng: random.Random) -> str:
    """A valid unified social credit code (with its check character) for an enterprise."""
    first17 = "91" + rng.choice(_AREA_CODES) + "".join(rng.choices(_ORG_CHARS, k=9))
    return first17 + uscc_check_character(first17)


def simulated_fleet(units: int, seed: int) -> list[SimulatedUnit]:
    """``units`` key units whose mean electric load spans 1.5–12 MW (about 1,600–13,000 tce/yr
    of electricity alone at 0.1229 kgce/kWh)."""
    rng = random.Random(seed)
    fleet = []
    for index in range(units):
        code = simulated_enterprise_code(rng)
        fleet.append(
            SimulatedUnit(
                enterprise_code=code,
                meter_id=f"{code}-E{index:04d}",
                mean_load_kw=round(rng.uniform(1_500, 12_000), 1),
            )
        )
    return fleet


def _shape(at: datetime) -> float:
    """Relative load: higher on day shifts than at night, lower on weekends (China time)."""
    local_hour = (at.hour + 8) % 24 + at.minute / 60
    daily = 1.0 + 0.25 * math.sin((local_hour - 8) / 24 * 2 * math.pi)
    weekend = 0.8 if ((at + timedelta(hours=8)).weekday() >= 5) else 1.0
    return daily * weekend


def electricity_readings(
    fleet: list[SimulatedUnit],
    start: datetime,
    intervals: int,
    seed: int,
    overload_probability: float = 0.01,
) -> Iterator[ElectricityReading]:
    """Readings for every unit, interval by interval, starting at ``start`` (UTC-aware).

    An overload episode (probability per meter and interval) lasts 1–4 intervals at 2.2–3×
    the normal load.
    """
    rng = random.Random(seed)
    overload_left = {unit.meter_id: 0 for unit in fleet}
    for step in range(intervals):
        period_start = start + step * INTERVAL
        shape = _shape(period_start)
        for unit in fleet:
            factor = shape * rng.gauss(1.0, 0.05)
            if overload_left[unit.meter_id] == 0 and rng.random() < overload_probability:
                overload_left[unit.meter_id] = rng.randint(1, 4)
            if overload_left[unit.meter_id] > 0:
                overload_left[unit.meter_id] -= 1
                factor *= rng.uniform(2.2, 3.0)
            kwh = max(0.0, unit.mean_load_kw * 0.25 * factor)
            yield ElectricityReading(
                enterprise_code=unit.enterprise_code,
                meter_id=unit.meter_id,
                period_start=period_start,
                consumption_kwh=round(kwh, 3),
            )
