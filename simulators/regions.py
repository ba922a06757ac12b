"""The five seed cities and their counties (packaged data, ``data/regions.yaml``)."""

from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from energywatch.config_files import load_model


class County(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    division: str = Field(pattern=r"^\d{6}$", description="GB/T 2260 code")
    name_zh: str


class City(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z]+$")
    name_zh: str
    seed: str = Field(description="the seed plan's number in ../shared/seeds/")
    division: str = Field(pattern=r"^\d{6}$")
    counties: tuple[County, ...] = Field(min_length=1)


class Regions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    cities: tuple[City, ...]

    def city(self, code: str) -> City:
        for city in self.cities:
            if city.code == code:
                return city
        known = ", ".join(c.code for c in self.cities)
        raise KeyError(f"unknown city {code!r}; known: {known}")


@cache
def load_regions() -> Regions:
    text = resources.files("simulators.data").joinpath("regions.yaml").read_text("utf-8")
    return load_model(Regions, text, "simulators/data/regions.yaml")
