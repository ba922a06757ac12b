"""The job every contender does, as the peers do it (pure: no IO).

A record becomes a unit's tce for one interval: the reading decoded and validated against the
contract (``contracts.readings``), its consumption converted with the project's GB/T 2589
factors (``stream.standard_coal``) and rounded to 1e-9 t as the worker rounds it
(``stream.accounting.TCE_DECIMALS``). Water is metered beside energy but is not energy, so it
is in no tce total, as it is in none of EnergyWatch's ``all`` rollups. The peers then sum these
into per-unit 15-minute and per-unit daily windows, days cut at China Standard Time midnight.

The peers read the consumption the meter reported. EnergyWatch derives a counter meter's
consumption from its register instead; on the simulator's clean data the two agree to the
digit (the simulator moves each register by the reported consumption), which the benchmark
checks at the end rather than assumes. The one place they part: EnergyWatch holds a real load
step's first reading until the next confirms it (``benchmarks.side_by_side.HeldJump``). A
counter-only reading has no reported consumption: the peers skip it, and the check would then
fail loudly.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from contracts.readings import EnergyType, ReadingDecodeError, decode_reading
from plans.coal_factors import CoalFactors
from stream.accounting import TCE_DECIMALS
from stream.standard_coal import StandardCoal

#: China Standard Time is UTC+8 all year: a CST day is a UTC day shifted by this
CST_OFFSET: Final = timedelta(hours=8)
CST_OFFSET_MS: Final = 8 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class UnitTce:
    """One reading's part in its unit's totals."""

    unit: str  # the enterprise's unified social credit code
    period_start: datetime  # aware UTC: the interval the reading covers starts here
    tce: float  # rounded to 1e-9 t


class ReadingTce:
    """Turns a raw record into its unit's tce, or None (not a reading, water, no quantity)."""

    def __init__(self, coal: StandardCoal | None = None) -> None:
        self._coal = coal or StandardCoal(CoalFactors.load())

    def __call__(self, raw: bytes | None) -> UnitTce | None:
        if raw is None:
            return None
        try:
            reading = decode_reading(raw)
        except ReadingDecodeError:
            return None  # EnergyWatch dead-letters it; a peer drops it
        if reading.energy_type is EnergyType.WATER:
            return None
        quantity = reading.physical_quantity
        if quantity is None:
            return None
        amount = self._coal.convert(reading.energy_type, quantity, reading.period_start)
        if amount is None:
            return None
        return UnitTce(
            reading.enterprise_code, reading.period_start, round(amount.tce, TCE_DECIMALS)
        )


def epoch_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)
