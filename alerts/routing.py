"""Who is told about an alert event (pure): the enterprise it concerns, the supervisors of
the region it is in, and the platform's operators. Nobody else: an enterprise never sees
another's alerts, nor any regional alert (a county's barometer, a county budget).

Regions are administrative division codes (GB/T 2260, six digits): a county (区县) such as
``140882``, a city (地级市) ``140800`` covering every county ``1408xx``, or a province
``140000`` covering ``14xxxx``. An event's region is its ``region_code`` when it has one (a
regional alert always should); else its enterprise's county from the register; for a unit
not in it, its unified social credit code's characters 3–8, the division code of the
authority that registered it (GB 32100-2015).
"""

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.channels.targets import ChannelTarget
from alerts.rate_limit import RateLimit
from contracts.alert_events import AlertEvent, RegionCode
from contracts.identifiers import EnterpriseCode
from energywatch.config_files import ConfigFileError, parse_yaml

ROUTING_VERSION: Final = 1
_STRICT = ConfigDict(frozen=True, extra="forbid")


class EnterpriseRecipient(BaseModel):
    """A unit, told only about its own alerts."""

    model_config = _STRICT
    kind: Literal["enterprise"] = "enterprise"
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str = Field(min_length=1)
    enterprise_code: EnterpriseCode
    channels: tuple[ChannelTarget, ...] = Field(min_length=1)
    rate_limit: RateLimit | None = None


class SupervisorRecipient(BaseModel):
    """A supervising department (e.g. a city's or county's energy-conservation office), told
    about every alert of the enterprises in its region."""

    model_config = _STRICT
    kind: Literal["supervisor"] = "supervisor"
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str = Field(min_length=1)
    region_code: RegionCode
    channels: tuple[ChannelTarget, ...] = Field(min_length=1)
    rate_limit: RateLimit | None = None

    @model_validator(mode="after")
    def _a_real_region(self) -> "SupervisorRecipient":
        if self.region_code.startswith("00"):
            raise ValueError(f"{self.region_code} is not a province, city or county code")
        return self


class OperatorRecipient(BaseModel):
    """The platform's own operations desk, told about every event wherever it is. Without a
    recipients file, the one configured webhook is such a recipient (``everything_to``)."""

    model_config = _STRICT
    kind: Literal["operator"] = "operator"
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str = Field(min_length=1)
    channels: tuple[ChannelTarget, ...] = Field(min_length=1)
    rate_limit: RateLimit | None = None


AnyRecipient = EnterpriseRecipient | SupervisorRecipient | OperatorRecipient
Recipient = Annotated[AnyRecipient, Field(discriminator="kind")]


class RoutingConfig(BaseModel):
    """Every recipient, and the rate limit for those that do not set their own."""

    model_config = _STRICT
    version: Literal[1] = ROUTING_VERSION
    default_rate_limit: RateLimit = RateLimit(max_messages=10, per_seconds=600)
    recipients: tuple[Recipient, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> "RoutingConfig":
        ids = [r.id for r in self.recipients]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"recipient id(s) appear more than once: {', '.join(duplicates)}")
        return self

    @cached_property
    def by_id(self) -> dict[str, AnyRecipient]:
        return {r.id: r for r in self.recipients}

    @cached_property
    def enterprise_names(self) -> dict[str, str]:
        """Enterprise recipients' names by credit code, for messages."""
        return {
            r.enterprise_code: r.name for r in self.recipients if isinstance(r, EnterpriseRecipient)
        }

    @cached_property
    def rate_limit_overrides(self) -> dict[str, RateLimit]:
        """Recipients' own limits, by id, for ``alerts.rate_limit.RateLimiter``."""
        return {r.id: r.rate_limit for r in self.recipients if r.rate_limit is not None}


def region_covers(region_code: str, county_code: str) -> bool:
    """Whether a province, city or county code includes a county."""
    if region_code.endswith("0000"):
        return county_code[:2] == region_code[:2]
    if region_code.endswith("00"):
        return county_code[:4] == region_code[:4]
    return county_code == region_code


def registration_area(enterprise_code: str) -> str:
    """The division code inside a unified social credit code (characters 3–8)."""
    return enterprise_code[2:8]


def region_of(event: AlertEvent, county_of: Mapping[str, str]) -> str | None:
    """The division an event belongs to: its own ``region_code``, else its enterprise's
    county (register first, credit code second); None for a regional event without one."""
    if event.region_code is not None:
        return event.region_code
    if event.enterprise_code is None:
        return None
    return county_of.get(event.enterprise_code) or registration_area(event.enterprise_code)


def recipients_for(
    event: AlertEvent, config: RoutingConfig, county_of: Mapping[str, str]
) -> tuple[AnyRecipient, ...]:
    """Everyone to tell about ``event``, in configuration order. ``county_of`` maps enterprise
    codes to their county codes (the register's ``county``)."""
    region = region_of(event, county_of)

    def told(recipient: AnyRecipient) -> bool:
        match recipient:
            case EnterpriseRecipient():
                return recipient.enterprise_code == event.enterprise_code
            case SupervisorRecipient():
                return region is not None and region_covers(recipient.region_code, region)
            case OperatorRecipient():
                return True

    return tuple(r for r in config.recipients if told(r))


def everything_to(target: ChannelTarget, rate_limit: RateLimit) -> RoutingConfig:
    """Routing without a recipients file: one operator, told about every event over one
    channel (the configured webhook)."""
    operator = OperatorRecipient(
        id="default", name="EnergyWatch", channels=(target,), rate_limit=rate_limit
    )
    return RoutingConfig(default_rate_limit=rate_limit, recipients=(operator,))


def load_routing(path: Path) -> RoutingConfig:
    """Read a routing file (``plans/recipients.example.yaml`` shows the shape).

    Problems are reported by place and reason but, unlike other configuration files, without
    the offending values: they may be webhook URLs or secrets.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        return RoutingConfig.model_validate(parse_yaml(text, str(path)))
    except ValidationError as exc:
        lines = [f"{path}: {exc.error_count()} problem(s) in the recipients file"]
        for problem in exc.errors(include_input=False):
            where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
            lines.append(f"  {where}: {problem['msg']}")
        raise ConfigFileError("\n".join(lines)) from None
