"""Fleets: which simulated enterprises exist, where, in which industry, with which meters.

A fleet file (YAML) names enterprises explicitly, asks for generated ones by city, industry and
count, or both. ``build_fleet`` turns it into ``Enterprise`` objects deterministically: the
same file and seed give the same codes, sizes and meters. Example: ``scenarios/fleets/``.
"""

import math
import random
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.identifiers import uscc_check_character
from contracts.readings import EnergyType
from energywatch.config_files import ConfigFileError, load_model_file
from simulators.industries import IndustryCatalogue, IndustryProfile
from simulators.regions import City, County, load_regions

_ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: Short meter-id tags per energy type.
ENERGY_TAGS: dict[EnergyType, str] = {
    EnergyType.ELECTRICITY: "EL",
    EnergyType.NATURAL_GAS: "NG",
    EnergyType.RAW_COAL: "CO",
    EnergyType.COKE: "CK",
    EnergyType.STEAM: "ST",
    EnergyType.HEAT: "HT",
    EnergyType.DIESEL: "DS",
    EnergyType.WATER: "WA",
}


class EnterpriseSpec(BaseModel):
    """One enterprise named in the fleet file; what is left out is drawn from the seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="how scenarios refer to it")
    industry: str
    city: str
    county: str | None = Field(default=None, pattern=r"^\d{6}$", description="GB/T 2260 code")
    name: str | None = None
    annual_tce: float | None = Field(default=None, gt=0)
    counter_only: tuple[EnergyType, ...] = Field(
        default=(), description="meters of these types report only their cumulative counter"
    )


class GeneratedGroup(BaseModel):
    """``count`` enterprises of one industry in one city, spread over its counties."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    industry: str
    city: str
    count: int = Field(ge=1, le=10_000)


class FleetConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    seed: int = 0
    interval_minutes: int = Field(default=15, description="15, 30 or 60 (DOMAIN.md §5)")
    counter_types: tuple[EnergyType, ...] = Field(
        default=(EnergyType.ELECTRICITY, EnergyType.NATURAL_GAS, EnergyType.WATER),
        description="energy types whose meters also report a cumulative counter",
    )
    enterprises: tuple[EnterpriseSpec, ...] = ()
    generate: tuple[GeneratedGroup, ...] = ()

    @model_validator(mode="after")
    def _sound(self) -> "FleetConfig":
        if self.interval_minutes not in (15, 30, 60):
            raise ValueError("interval_minutes must be 15, 30 or 60")
        if not self.enterprises and not self.generate:
            raise ValueError("a fleet needs enterprises, generate, or both")
        ids = [e.id for e in self.enterprises]
        if len(set(ids)) != len(ids):
            raise ValueError(f"enterprise ids must be unique: {sorted(ids)}")
        return self


@dataclass(frozen=True)
class Meter:
    meter_id: str
    energy_type: EnergyType
    counter: bool
    counter_only: bool


@dataclass(frozen=True)
class Enterprise:
    id: str
    code: str
    name: str
    city: City
    county: County
    profile: IndustryProfile
    annual_tce: float
    meters: tuple[Meter, ...]

    def meter(self, energy_type: EnergyType) -> Meter:
        for meter in self.meters:
            if meter.energy_type is energy_type:
                return meter
        raise KeyError(f"{self.id} has no {energy_type.value} meter")


@dataclass(frozen=True)
class Fleet:
    name: str
    seed: int
    interval_minutes: int
    enterprises: tuple[Enterprise, ...]

    def enterprise(self, ref: str) -> Enterprise:
        """By fleet id or by unified social credit code."""
        for enterprise in self.enterprises:
            if ref in (enterprise.id, enterprise.code):
                return enterprise
        raise KeyError(f"no enterprise {ref!r} in fleet {self.name}")

    def meter_count(self) -> int:
        return sum(len(e.meters) for e in self.enterprises)


def _credit_code(rng: random.Random, county: County) -> str:
    first17 = "91" + county.division + "".join(rng.choices(_ORG_CHARS, k=9))
    return first17 + uscc_check_character(first17)


def _annual_tce(rng: random.Random, profile: IndustryProfile) -> float:
    low, high = profile.annual_tce_band
    # log-uniform: many mid-sized units, few giants, as in real registers
    return round(math.exp(rng.uniform(math.log(low), math.log(high))), -1)


def _meters(
    code: str, profile: IndustryProfile, spec: EnterpriseSpec | None, config: FleetConfig
) -> tuple[Meter, ...]:
    types = [t for t in EnergyType if t in profile.energy_mix or t is EnergyType.WATER]
    counter_only = set(spec.counter_only) if spec else set()
    return tuple(
        Meter(
            meter_id=f"{code}-{ENERGY_TAGS[t]}01",
            energy_type=t,
            counter=t in config.counter_types or t in counter_only,
            counter_only=t in counter_only,
        )
        for t in types
    )


def build_fleet(config: FleetConfig, catalogue: IndustryCatalogue | None = None) -> Fleet:
    """Resolve a fleet file into enterprises; raises ``ConfigFileError`` on unknown names."""
    catalogue = catalogue or IndustryCatalogue.load()
    regions = load_regions()
    rng = random.Random(f"fleet:{config.name}:{config.seed}")
    problems: list[str] = []
    enterprises: list[Enterprise] = []

    def add(
        spec: EnterpriseSpec | None,
        ident: str,
        industry: str,
        city_code: str,
        county_code: str | None,
        tce: float | None,
    ) -> None:
        try:
            profile = catalogue[industry]
            city = regions.city(city_code)
        except KeyError as exc:
            problems.append(f"{ident}: {exc.args[0]}")
            return
        if county_code is None:
            county = rng.choice(city.counties)
        else:
            matches = [c for c in city.counties if c.division == county_code]
            if not matches:
                problems.append(f"{ident}: county {county_code} is not in {city.code}")
                return
            county = matches[0]
        code = _credit_code(rng, county)
        enterprises.append(
            Enterprise(
                id=ident,
                code=code,
                name=(
                    spec.name
                    if spec and spec.name
                    else f"{county.name_zh}{profile.name_zh}{len(enterprises) + 1:03d}"
                ),
                city=city,
                county=county,
                profile=profile,
                annual_tce=tce if tce is not None else _annual_tce(rng, profile),
                meters=_meters(code, profile, spec, config),
            )
        )

    for spec in config.enterprises:
        add(spec, spec.id, spec.industry, spec.city, spec.county, spec.annual_tce)
    for group in config.generate:
        for n in range(1, group.count + 1):
            add(
                None,
                f"{group.city}-{group.industry}-{n}".replace("_", "-")[:40],
                group.industry,
                group.city,
                None,
                None,
            )
    if problems:
        raise ConfigFileError(f"fleet {config.name}: " + "; ".join(problems))
    return Fleet(config.name, config.seed, config.interval_minutes, tuple(enterprises))


def load_fleet(path: Path) -> Fleet:
    return build_fleet(load_model_file(FleetConfig, path, "fleet file"))
