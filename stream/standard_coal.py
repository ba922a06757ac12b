"""Standard-coal accounting (pure): a reading's physical quantity in tonnes of standard coal.

GB/T 2589 factors come from ``plans/coal_factors.py`` (dated, versioned data): a quantity
converts with the edition in force on its China-local date. Physical quantities are kept beside
the tce so history can be recomputed. Meters the register tags as renewable electricity,
feedstock or a listed major project are converted and reported, but not counted in the
controlled totals (``counted`` is False, ``exclusion`` says why).
"""

from dataclasses import dataclass
from datetime import date, datetime

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType
from plans.coal_factors import CoalFactors
from plans.register import Exclusion


@dataclass(frozen=True, slots=True)
class TceAmount:
    physical: float
    physical_unit: str
    tce: float
    #: the same quantity with electricity at its equal-value (等价值) factor; None for others
    tce_equivalent: float | None
    counted: bool
    exclusion: Exclusion | None
    standard: str


def china_date(at: datetime) -> date:
    return at.astimezone(CHINA_STANDARD_TIME).date()


class StandardCoal:
    """Converts quantities; caches the factor per energy type and China-local date."""

    def __init__(self, factors: CoalFactors) -> None:
        self._factors = factors
        self._cache: dict[tuple[EnergyType, date], tuple[float, str, str, float | None]] = {}

    def _factor(self, energy_type: EnergyType, on: date) -> tuple[float, str, str, float | None]:
        key = (energy_type, on)
        cached = self._cache.get(key)
        if cached is None:
            kgce, unit = self._factors.kgce_per_unit(energy_type, on)
            standard = self._factors.version_on(on).standard
            equivalent = None
            if energy_type is EnergyType.ELECTRICITY and self._factors.electricity_equivalent:
                equivalent = self._factors.electricity_equivalent_on(on).kgce_per_kwh
            cached = self._cache[key] = (kgce, unit, standard, equivalent)
        return cached

    def convert(
        self,
        energy_type: EnergyType,
        quantity: float,
        at: datetime,
        exclusion: Exclusion | None = None,
    ) -> TceAmount | None:
        """``quantity`` (in the contract's unit for ``energy_type``) at instant ``at``; None
        for water, which is metered beside energy but is not energy."""
        if energy_type is EnergyType.WATER:
            return None
        kgce, unit, standard, equivalent = self._factor(energy_type, china_date(at))
        return TceAmount(
            physical=quantity,
            physical_unit=unit,
            tce=quantity * kgce / 1000,
            tce_equivalent=None if equivalent is None else quantity * equivalent / 1000,
            counted=exclusion is None,
            exclusion=exclusion,
            standard=standard,
        )
