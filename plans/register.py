"""The enterprise register: which units exist, their meters and VOC monitors, and how each
authenticates when it sends data; and what the plans hold each unit to (its products' energy
limits, its annual energy budgets, its heavy-pollution performance grade, whether it is a
"两高" project).

Secrets are never stored: an enterprise's upload token and a monitor's HJ 212 password are kept
as salted SHA-256 digests (tokens are long random strings; device passwords are checked on
every packet, so a fast digest with a per-device salt is the trade-off). ``energywatch
register from-fleet`` writes a register for a simulated fleet (``plans/registers/``).

Every field added for the plans is optional with an empty default, so registers written before
them still load. Consistency problems are raised with their place (``inconsistent``), so a file
checker can point at each one; ``located_errors`` unpacks them.
"""

import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from contracts.identifiers import EnterpriseCode
from contracts.readings import EnergyType
from energywatch.config_files import ConfigFileError, parse_yaml

REGISTER_VERSION: Final = 1
_STRICT = ConfigDict(frozen=True, extra="forbid")
SaltedDigest = str
M = TypeVar("M", bound=BaseModel)

#: Where a value sits in a file: keys and list indices, outermost first.
Location = tuple[str | int, ...]
#: A problem and its place, relative to the model that found it.
Located = tuple[Location, str]

_INCONSISTENT: Final = "inconsistent"


def format_location(location: Location) -> str:
    """``("targets", "intensity", "annual", 2)`` -> ``targets.intensity.annual[2]``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def inconsistent(problems: Sequence[Located]) -> PydanticCustomError:
    """An error for a model validator to raise that carries every problem with its place.

    Pydantic keeps one error per validator; the places ride along in ``ctx["problems"]`` so a
    file checker can report (and find the line of) each one."""
    summary = "; ".join(f"{format_location(loc)}: {message}" for loc, message in problems)
    return PydanticCustomError(
        _INCONSISTENT, "{summary}", {"summary": summary, "problems": list(problems)}
    )


class Finding(NamedTuple):
    """One problem in a file: its place, what is wrong, pydantic's error type (or
    ``inconsistent``) and the offending value, shortened, when there is one."""

    location: Location
    message: str
    kind: str
    got: str | None = None


def located_errors(error: ValidationError) -> list[Finding]:
    """Every problem in ``error``, with the problems an ``inconsistent`` error carries
    unpacked to their own places."""
    found: list[Finding] = []
    for problem in error.errors():
        base: Location = tuple(problem["loc"])
        ctx = problem.get("ctx") or {}
        if problem["type"] == _INCONSISTENT and "problems" in ctx:
            found.extend(
                Finding(base + tuple(loc), msg, _INCONSISTENT) for loc, msg in ctx["problems"]
            )
        elif problem["type"] == "missing":
            found.append(Finding(base, problem["msg"], "missing"))
        else:
            value = problem["input"]
            # a whole mapping or list says nothing the place does not
            got = None if isinstance(value, dict | list | tuple) else repr(value)
            if got is not None and len(got) > 60:
                got = got[:57] + "..."
            message = problem["msg"].removeprefix("Value error, ")
            if base[-1:] == ("[key]",):  # a mapping key that is not allowed
                base = base[:-1]
                message = f"{base[-1]!r} is not an allowed key: {message}"
            found.append(Finding(base, message, problem["type"], got))
    return found


def describe_problems(source: str, error: ValidationError, what: str = "file") -> str:
    """``error`` as a message naming the file and each problem's place."""
    findings = located_errors(error)
    lines = [f"{source}: {len(findings)} problem(s) in the {what}"]
    for finding in findings:
        got = f" (got {finding.got})" if finding.got is not None else ""
        lines.append(f"  {format_location(finding.location)}: {finding.message}{got}")
    return "\n".join(lines)


def load_located(model: type[M], path: Path, what: str) -> M:
    """Read YAML ``path`` into ``model`` or raise ``ConfigFileError`` naming every problem's
    place (consistency problems included, each at its own place)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror}") from exc
    data = parse_yaml(text, str(path))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(describe_problems(str(path), exc, what)) from exc


def salted_digest(salt: str, secret: str) -> SaltedDigest:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class LimitLevel(StrEnum):
    #: A local limit (限额), e.g. Yuncheng's: above it the unit must retrofit, and it is
    #: restricted first under orderly power use (DOMAIN.md §3).
    LIMIT = "limit"
    #: National efficiency benchmark (能效标杆水平): the advanced level.
    BENCHMARK = "benchmark"
    #: National efficiency baseline (能效基准水平): below standard above it.
    BASELINE = "baseline"


class ProductEnergyLimit(BaseModel):
    """One unit-product energy level a product is judged against, and where it comes from."""

    model_config = _STRICT
    level: LimitLevel
    #: ``national`` or the city whose plan sets it (a city id, e.g. ``yuncheng``).
    scope: str = Field(pattern=r"^[a-z]+$")
    value: float = Field(gt=0, allow_inf_nan=False)
    #: kgce per tonne, kWh per tonne (electrolytic aluminium's national levels), or kgce per
    #: MWh (numerically gce/kWh, a power plant's supply coal rate).
    unit: Literal["kgce/t", "kWh/t", "kgce/MWh"]
    #: The feedstock or process route it applies to; None for every route.
    route: Code | None = None
    source: str = Field(min_length=1)
    #: The source is secondary (DOMAIN.md says "verify").
    verify: bool = False
    note: str | None = None


class Product(BaseModel):
    """A product with energy limits: ``code`` is the ``product_code`` of the unit's output
    reports (``contracts.production.ProductOutputReport``)."""

    model_config = _STRICT
    code: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    name_zh: str | None = None
    #: Tonnes, or MWh for electricity supplied by a power plant.
    unit: Literal["t", "MWh"] = "t"
    #: The unit's route, when the limits depend on it (e.g. ammonia from natural gas).
    route: Code | None = None
    limits: tuple[ProductEnergyLimit, ...] = ()

    @model_validator(mode="after")
    def _one_limit_per_level_scope_route(self) -> "Product":
        seen: dict[tuple[str, str, str | None], int] = {}
        problems: list[Located] = []
        for i, limit in enumerate(self.limits):
            key = (limit.level.value, limit.scope, limit.route)
            if key in seen:
                problems.append(
                    (
                        ("limits", i),
                        f"repeats limits[{seen[key]}] ({key[0]}, {key[1]}, route "
                        f"{key[2]}): keep one",
                    )
                )
            seen.setdefault(key, i)
        if problems:
            raise inconsistent(problems)
        return self

    def applicable_limits(self) -> tuple[ProductEnergyLimit, ...]:
        """The limits for this product's route (and those for every route)."""
        return tuple(
            limit for limit in self.limits if limit.route is None or limit.route == self.route
        )


class EnergyBudget(BaseModel):
    """A year's energy budget (用能预算) allocated to the unit, in tce of the controlled total
    (excluded energy - renewable, feedstock, listed projects - is not charged against it)."""

    model_config = _STRICT
    year: int = Field(ge=2000, le=2100)
    budget_tce: float = Field(gt=0, allow_inf_nan=False)
    source: str | None = Field(default=None, min_length=1)


#: Heavy-pollution weather performance grade (重污染天气应急减排绩效分级, DOMAIN.md §8): the
#: grade fixes the unit's pre-agreed cuts at yellow, orange and red alerts.
PerformanceGrade = Literal["A", "B", "C", "D"]


class EnterpriseEntry(BaseModel):
    model_config = _STRICT
    code: EnterpriseCode
    name: str = Field(min_length=1)
    city: str
    county: str = Field(pattern=r"^\d{6}$")
    industry: str
    token_salt: str | None = None
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    products: tuple[Product, ...] = ()
    energy_budgets: tuple[EnergyBudget, ...] = ()
    emergency_grade: PerformanceGrade | None = None
    #: On the city's list of "两高" (high energy use, high emissions) projects.
    two_high: bool = False

    @model_validator(mode="after")
    def _products_and_years_once(self) -> "EnterpriseEntry":
        problems: list[Located] = []
        codes = [p.code for p in self.products]
        problems += [
            (("products", i, "code"), f"product {code} is listed twice: merge the entries")
            for i, code in enumerate(codes)
            if code in codes[:i]
        ]
        years = [b.year for b in self.energy_budgets]
        problems += [
            (("energy_budgets", i, "year"), f"{year} has two budgets: keep one")
            for i, year in enumerate(years)
            if year in years[:i]
        ]
        if problems:
            raise inconsistent(problems)
        return self

    def budget_tce(self, year: int) -> float | None:
        """The unit's energy budget for ``year``, if one is allocated."""
        return next((b.budget_tce for b in self.energy_budgets if b.year == year), None)

    def token_matches(self, token: str) -> bool:
        if self.token_salt is None or self.token_sha256 is None:
            return False
        return hmac.compare_digest(salted_digest(self.token_salt, token), self.token_sha256)


#: Why a meter's energy is reported but kept out of the controlled totals (DOMAIN.md §2):
#: newly added renewable electricity, energy used as feedstock (原料用能), or a nationally
#: listed major project (能耗单列).
Exclusion = Literal["renewable", "feedstock", "listed_project"]


class MeterEntry(BaseModel):
    model_config = _STRICT
    meter_id: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")
    enterprise_code: EnterpriseCode
    energy_type: EnergyType
    excluded_from_totals: Exclusion | None = None


class VocLimit(BaseModel):
    """A pollutant's limit under the monitor's standard (DOMAIN.md §7): an hourly average and,
    for some standards (GB 37822), any single reading."""

    model_config = _STRICT
    hourly_avg_mg_m3: float = Field(gt=0)
    single_mg_m3: float | None = Field(default=None, gt=0)


class VocMonitorEntry(BaseModel):
    model_config = _STRICT
    mn: str = Field(pattern=r"^[A-Za-z0-9]{1,24}$")
    enterprise_code: EnterpriseCode
    password_salt: str
    password_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    crc_variant: Literal["standard", "modbus", "swapped"] = "standard"
    standard: str = "GB 37822-2019"
    limits: dict[str, VocLimit] = Field(
        default_factory=dict, description="by HJ 212 pollutant code, e.g. a24088 (NMHC)"
    )

    def password_matches(self, password: str) -> bool:
        return hmac.compare_digest(
            salted_digest(self.password_salt, password), self.password_sha256
        )


class Register(BaseModel):
    model_config = _STRICT
    version: Literal[1] = REGISTER_VERSION
    name: str
    enterprises: tuple[EnterpriseEntry, ...]
    meters: tuple[MeterEntry, ...] = ()
    voc_monitors: tuple[VocMonitorEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> "Register":
        problems: list[Located] = []
        codes: set[str] = set()
        for i, enterprise in enumerate(self.enterprises):
            if enterprise.code in codes:
                problems.append((("enterprises", i, "code"), "an enterprise code appears twice"))
            codes.add(enterprise.code)
        meter_ids: set[str] = set()
        for i, meter in enumerate(self.meters):
            if meter.enterprise_code not in codes:
                problems.append(
                    (
                        ("meters", i, "enterprise_code"),
                        f"meter {meter.meter_id}: unknown enterprise {meter.enterprise_code}",
                    )
                )
            if meter.meter_id in meter_ids:
                problems.append((("meters", i, "meter_id"), "a meter id appears twice"))
            meter_ids.add(meter.meter_id)
        for i, monitor in enumerate(self.voc_monitors):
            if monitor.enterprise_code not in codes:
                problems.append(
                    (
                        ("voc_monitors", i, "enterprise_code"),
                        f"monitor {monitor.mn}: unknown enterprise {monitor.enterprise_code}",
                    )
                )
        if problems:
            raise inconsistent(problems)
        return self

    @cached_property
    def meters_by_id(self) -> dict[str, MeterEntry]:
        return {m.meter_id: m for m in self.meters}

    @cached_property
    def monitors_by_mn(self) -> dict[str, VocMonitorEntry]:
        return {m.mn: m for m in self.voc_monitors}

    @cached_property
    def enterprises_by_code(self) -> dict[str, EnterpriseEntry]:
        return {e.code: e for e in self.enterprises}

    def enterprise_for_token(self, token: str) -> EnterpriseEntry | None:
        """The enterprise whose upload token this is. Tokens read ``<credit code>.<secret>``:
        the code finds the entry, the secret is compared in constant time."""
        code, _, _secret = token.partition(".")
        enterprise = self.enterprises_by_code.get(code)
        if enterprise is not None and enterprise.token_matches(token):
            return enterprise
        return None


def region_problems(register: Register, counties_by_city: dict[str, set[str]]) -> list[Located]:
    """Enterprises whose city has no plan, or whose county is not one of that city's counties
    (``counties_by_city``: city id -> county division codes, from the city plans)."""
    problems: list[Located] = []
    for i, enterprise in enumerate(register.enterprises):
        counties = counties_by_city.get(enterprise.city)
        if counties is None:
            known = ", ".join(sorted(counties_by_city)) or "none"
            problems.append(
                (
                    ("enterprises", i, "city"),
                    f"no plan for city {enterprise.city!r} (plans: {known}): fix the city id or "
                    "add its plan",
                )
            )
        elif enterprise.county not in counties:
            problems.append(
                (
                    ("enterprises", i, "county"),
                    f"{enterprise.county} is not a county of {enterprise.city}: fix the "
                    "GB/T 2260 code",
                )
            )
    return problems


def load_register(path: Path) -> Register:
    return load_located(Register, path, "register")
