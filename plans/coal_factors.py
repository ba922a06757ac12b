"""GB/T 2589 coal-equivalent factors: kgce per physical unit, dated and versioned.

The packaged table (``data/coal_factors.yaml``) holds each edition of the standard with the
date it took effect; ``kgce_per_unit`` picks the edition in force on a date, so history can
be recomputed when factors change. Physical units are those of the reading contracts.
"""

from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Final, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.readings import READING_MODELS, EnergyType

_TABLE_FILE: Final = "coal_factors.yaml"


class CoalFactorError(ValueError):
    """A factor that does not exist (water, a date before the first edition) or bad data."""


class CoalFactor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kgce_per_unit: float = Field(gt=0, allow_inf_nan=False)
    unit: str
    note: str | None = None
    #: The value comes from a secondary source and should be checked against the standard.
    verify: bool = False


class FactorVersion(BaseModel):
    """One edition of the standard: every energy type's factor, from ``valid_from`` on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    standard: str = Field(min_length=1)
    valid_from: date
    factors: dict[EnergyType, CoalFactor]

    @model_validator(mode="after")
    def _every_energy_type_in_its_contract_unit(self) -> Self:
        if EnergyType.WATER in self.factors:
            raise ValueError("water is not energy and has no coal factor")
        missing = set(EnergyType) - {EnergyType.WATER} - set(self.factors)
        if missing:
            raise ValueError(f"{self.standard}: no factor for {sorted(missing)}")
        for energy_type, factor in self.factors.items():
            expected = READING_MODELS[energy_type].physical_unit
            if factor.unit != expected:
                raise ValueError(
                    f"{self.standard}: {energy_type} is metered in {expected}, not {factor.unit}"
                )
        return self


class EquivalentElectricity(BaseModel):
    """One year's equal-value (等价值) electricity factor: the coal burnt to generate and
    supply a kWh that year (the national average supply coal rate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=2000, le=2100)
    kgce_per_kwh: float = Field(gt=0.1, lt=0.5)
    source: str = Field(min_length=1)
    verify: bool = False


class CoalFactors(BaseModel):
    """All editions, oldest first, and the yearly equal-value electricity factors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    versions: tuple[FactorVersion, ...] = Field(min_length=1)
    electricity_equivalent: tuple[EquivalentElectricity, ...] = ()

    @model_validator(mode="after")
    def _in_date_order(self) -> Self:
        dates = [version.valid_from for version in self.versions]
        if dates != sorted(set(dates)):
            raise ValueError("versions must be listed oldest first, one per valid_from date")
        years = [entry.year for entry in self.electricity_equivalent]
        if years != sorted(set(years)):
            raise ValueError("electricity_equivalent years must be listed oldest first, once each")
        return self

    @classmethod
    def load(cls) -> "CoalFactors":
        """The packaged table (loaded once)."""
        return _packaged_factors()

    @classmethod
    def from_yaml(cls, text: str, source: str = "<yaml>") -> "CoalFactors":
        try:
            data: Any = yaml.safe_load(text)
            return cls.model_validate(data)
        except (yaml.YAMLError, ValueError) as exc:
            raise CoalFactorError(f"{source}: {exc}") from exc

    def version_on(self, on: date) -> FactorVersion:
        """The edition in force on ``on``."""
        for version in reversed(self.versions):
            if version.valid_from <= on:
                return version
        raise CoalFactorError(f"no coal factors are in force on {on}")

    def kgce_per_unit(self, energy_type: EnergyType, on: date) -> tuple[float, str]:
        """``(kgce per physical unit, physical unit)`` for ``energy_type`` on ``on``."""
        if energy_type is EnergyType.WATER:
            raise CoalFactorError("water is metered beside energy but has no coal factor")
        factor = self.version_on(on).factors[energy_type]
        return factor.kgce_per_unit, factor.unit

    def electricity_equivalent_on(self, on: date) -> EquivalentElectricity:
        """The equal-value electricity factor for ``on``'s year, or the latest year before it
        (a year's figure is published after the year ends)."""
        for entry in reversed(self.electricity_equivalent):
            if entry.year <= on.year:
                return entry
        raise CoalFactorError(f"no equal-value electricity factor for {on.year} or earlier")


def kgce_per_unit(energy_type: EnergyType, on: date) -> tuple[float, str]:
    """``(kgce per physical unit, physical unit)`` from the packaged GB/T 2589 table.

    >>> kgce_per_unit(EnergyType.ELECTRICITY, date(2025, 1, 1))
    (0.1229, 'kWh')
    """
    return CoalFactors.load().kgce_per_unit(energy_type, on)


@cache
def _packaged_factors() -> CoalFactors:
    text = resources.files("plans").joinpath("data", _TABLE_FILE).read_text("utf-8")
    return CoalFactors.from_yaml(text, source=_TABLE_FILE)
