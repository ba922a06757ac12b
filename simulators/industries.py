"""Industry profiles: how a simulated key energy-using unit of each industry behaves.

Profiles are data (``data/industries.yaml``), checked on load: energy mixes sum to 1, bands
are ordered, product limits carry their source. ``production.py`` turns a profile into a
production level over time; a generator multiplies that by the unit's annual tce and its
energy mix to produce meter readings.
"""

import math
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Any, Final, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.readings import EnergyType

_PROFILES_FILE: Final = "industries.yaml"
_MIX_TOLERANCE: Final = 1e-9

Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Factor = Annotated[float, Field(gt=0, le=2, allow_inf_nan=False)]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class IndustryDataError(ValueError):
    """A profile table that cannot be used, saying where and what is wrong."""


class OperatingPattern(StrEnum):
    #: 24/7 in three shifts: a slight night dip and short dips at the shift changes.
    CONTINUOUS = "continuous"
    #: Office hours high, a base load outside them (public institutions).
    DAY_SHIFT = "day_shift"
    #: Two shifts, working hours 08:00-24:00 by default.
    TWO_SHIFT = "two_shift"


class LimitLevel(StrEnum):
    #: A local limit (限额): above it the unit must retrofit or is restricted first.
    LIMIT = "limit"
    #: National efficiency benchmark (能效标杆水平): the advanced level.
    BENCHMARK = "benchmark"
    #: National efficiency baseline (能效基准水平): below standard above it.
    BASELINE = "baseline"


class EnergyLimit(BaseModel):
    """One unit-product energy limit and where it comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: LimitLevel
    scope: Literal["yuncheng", "national"]
    value: float = Field(gt=0, allow_inf_nan=False)
    #: kgce per tonne, kWh per tonne, or kgce per MWh (numerically gce/kWh).
    unit: Literal["kgce/t", "kWh/t", "kgce/MWh"]
    #: The feedstock or process route it applies to; None for every route.
    route: Code | None = None
    source: str = Field(min_length=1)
    #: The source is secondary (DOMAIN.md says "verify").
    verify: bool = False
    note: str | None = None


class Product(BaseModel):
    """A product with an energy limit, as the unit reports its monthly output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    #: Tonnes, or MWh for electricity supplied by a power plant.
    unit: Literal["t", "MWh"]
    #: The route simulated units use, when the limits depend on the route.
    route: Code | None = None
    #: Typical comprehensive energy per unit of product, kgce (per t, or per MWh).
    unit_energy_kgce_per_unit: float = Field(gt=0, allow_inf_nan=False)
    #: The share of the unit's total energy that ``unit_energy_kgce_per_unit`` covers.
    energy_share: float = Field(gt=0, le=1)
    limits: tuple[EnergyLimit, ...] = ()

    def applicable_limits(self) -> tuple[EnergyLimit, ...]:
        """The limits for this product's route (and those for every route)."""
        return tuple(
            limit for limit in self.limits if limit.route is None or limit.route == self.route
        )

    def output(self, energy_tce: float) -> float:
        """Product output (in ``unit``) that ``energy_tce`` of the unit's energy yields."""
        return energy_tce * self.energy_share * 1000 / self.unit_energy_kgce_per_unit


class MonthDayRange(BaseModel):
    """An inclusive range of month-days, e.g. 07-10..08-31; may wrap over the new year."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str = Field(pattern=r"^\d\d-\d\d$")
    end: str = Field(pattern=r"^\d\d-\d\d$")

    @model_validator(mode="after")
    def _real_days(self) -> Self:
        for text in (self.start, self.end):
            month, day = (int(part) for part in text.split("-"))
            date(2024, month, day)  # a leap year, so 02-29 is allowed; raises if not a day
        return self

    def contains(self, d: date) -> bool:
        key = f"{d.month:02d}-{d.day:02d}"
        if self.start <= self.end:
            return self.start <= key <= self.end
        return key >= self.start or key <= self.end


class IndustryProfile(BaseModel):
    """Everything a generator needs to make one industry's units behave like real ones.

    Hashable by ``code`` (profiles are loaded once and shared), so functions of a profile can
    be cached.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    annual_tce_band: tuple[float, float]
    energy_mix: dict[EnergyType, Share]
    feedstock_fraction: dict[EnergyType, Share] = Field(default_factory=dict)
    water_m3_per_tce: float = Field(ge=0, allow_inf_nan=False)
    operating_pattern: OperatingPattern
    #: China local hours [start, end) of the working day, for day and two shifts.
    working_hours: tuple[int, int] | None = None
    night_level: Factor
    shift_change_dip: Factor = 1.0
    weekend_factor: Factor
    holiday_factor: Factor
    vacations: tuple[MonthDayRange, ...] = ()
    vacation_factor: Factor = 1.0
    seasonal: tuple[Factor, ...] = Field(min_length=12, max_length=12)
    planned_outages_per_year: float = Field(ge=0, le=12)
    outage_days: tuple[float, float]
    outage_reason: str = "planned maintenance"
    outage_level: float = Field(default=0.08, ge=0.05, le=0.1)
    products: tuple[Product, ...] = ()
    output_value_cny_per_tce: float = Field(ge=0, allow_inf_nan=False)
    floor_area_m2_per_tce: float | None = Field(default=None, gt=0)
    occupants_per_tce: float | None = Field(default=None, gt=0)

    def __hash__(self) -> int:
        return hash(self.code)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        low, high = self.annual_tce_band
        if not 0 < low < high or not math.isfinite(high):
            raise ValueError(f"{self.code}: annual_tce_band must be 0 < low < high")
        if EnergyType.WATER in self.energy_mix:
            raise ValueError(f"{self.code}: water is metered, not part of the energy mix")
        total = math.fsum(self.energy_mix.values())
        if abs(total - 1) > _MIX_TOLERANCE:
            raise ValueError(f"{self.code}: energy_mix sums to {total!r}, not 1")
        stray = set(self.feedstock_fraction) - set(self.energy_mix)
        if stray:
            raise ValueError(f"{self.code}: feedstock of {sorted(stray)} not in the energy mix")
        if self.operating_pattern is not OperatingPattern.CONTINUOUS:
            start, end = self.working_hours or (8, 24)
            if not 0 <= start < end <= 24:
                raise ValueError(f"{self.code}: working_hours must be 0 <= start < end <= 24")
        shortest, longest = self.outage_days
        if not 0 <= shortest <= longest:
            raise ValueError(f"{self.code}: outage_days must be 0 <= shortest <= longest")
        if self.planned_outages_per_year > 0 and shortest <= 0:
            raise ValueError(f"{self.code}: planned outages need outage_days above 0")
        codes = [product.code for product in self.products]
        if len(codes) != len(set(codes)):
            raise ValueError(f"{self.code}: product codes repeat")
        return self

    def working_hours_or_default(self) -> tuple[int, int]:
        if self.working_hours is not None:
            return self.working_hours
        return (8, 18) if self.operating_pattern is OperatingPattern.DAY_SHIFT else (8, 24)

    def in_vacation(self, d: date) -> bool:
        return any(vacation.contains(d) for vacation in self.vacations)

    def product(self, code: str) -> Product:
        for product in self.products:
            if product.code == code:
                return product
        raise KeyError(f"{self.code} makes no product {code!r}")


class IndustryCatalogue(BaseModel):
    """Every profile, by code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profiles: tuple[IndustryProfile, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        codes = [profile.code for profile in self.profiles]
        if len(codes) != len(set(codes)):
            raise ValueError("profile codes repeat")
        return self

    @classmethod
    def load(cls) -> "IndustryCatalogue":
        """The packaged profiles (loaded once; the same instance every time)."""
        return _packaged_catalogue()

    @classmethod
    def from_yaml(cls, text: str, source: str = "<yaml>") -> "IndustryCatalogue":
        try:
            data: Any = yaml.safe_load(text)
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "\n".join(
                f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise IndustryDataError(f"{source}: invalid industry profiles\n{problems}") from exc
        except yaml.YAMLError as exc:
            raise IndustryDataError(f"{source}: not valid YAML: {exc}") from exc

    def __getitem__(self, code: str) -> IndustryProfile:
        for profile in self.profiles:
            if profile.code == code:
                return profile
        raise KeyError(f"no industry profile {code!r}")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(profile.code for profile in self.profiles)


@cache
def _packaged_catalogue() -> IndustryCatalogue:
    text = resources.files("simulators").joinpath("data", _PROFILES_FILE).read_text("utf-8")
    return IndustryCatalogue.from_yaml(text, source=_PROFILES_FILE)
