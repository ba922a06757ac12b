"""Who is calling the Alerts API, and what they may see and do.

Three kinds of principal, each with a bearer token (``Authorization: Bearer <token>``):

* **enterprise**: a unit, with its upload token from the register (``<credit code>.<secret>``,
  ``plans/register.py``); sees and acts on its own alerts only.
* **supervisor**: a supervising department with a region (GB/T 2260: a county, a city covering
  its counties, a province covering its cities), from the access file; sees the alerts of its
  region.
* **admin**: an operator, from the access file; sees everything, may declare emergencies.

The access file (``settings.access_path``; ``plans/access.example.yaml`` shows the shape)
keeps tokens as salted SHA-256 digests only. Its tokens read ``<name>.<secret>``: the name
finds the entry and the whole token is compared with its digest in constant time.
``energywatch alerts token-digest`` makes a token and its entry. Tokens are never logged and
never stored: commands record the principal's ``name`` (``supervisor:yuncheng-city``).
"""

import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.routing import region_covers
from contracts.alert_events import RegionCode
from energywatch.config_files import ConfigFileError, parse_yaml
from plans.register import Register, salted_digest
from storage.alert_queries import Scope

ACCESS_VERSION: Final = 1
_STRICT = ConfigDict(frozen=True, extra="forbid")
_WILDCARDS: Final = frozenset("*?[]")
#: Compared against when a token names nobody, so unknown names take as long as wrong secrets.
_NOBODY: Final = (secrets.token_hex(16), salted_digest("nobody", secrets.token_hex(16)))

#: An access-file name: lower case, so it can never be mistaken for a credit code (digits and
#: upper case), and without dots, which end the name in a token.
PrincipalName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


class PrincipalKind(StrEnum):
    ENTERPRISE = "enterprise"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class _TokenDigest(BaseModel):
    model_config = _STRICT
    name: PrincipalName
    description: str = ""
    token_salt: str = Field(min_length=16, max_length=128)
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(salted_digest(self.token_salt, token), self.token_sha256)


class SupervisorAccess(_TokenDigest):
    """A supervising department: sees its region's alerts, may act on them."""

    kind: Literal["supervisor"] = "supervisor"
    region_code: RegionCode

    @model_validator(mode="after")
    def _a_real_region(self) -> "SupervisorAccess":
        if self.region_code.startswith("00"):
            raise ValueError(f"{self.region_code} is not a province, city or county code")
        return self


class AdminAccess(_TokenDigest):
    """An operator: sees everything, may declare heavy-pollution emergencies."""

    kind: Literal["admin"] = "admin"


AccessEntry = Annotated[SupervisorAccess | AdminAccess, Field(discriminator="kind")]


class AccessConfig(BaseModel):
    """The access file: supervisors' and operators' token digests."""

    model_config = _STRICT
    version: Literal[1] = ACCESS_VERSION
    principals: tuple[AccessEntry, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> "AccessConfig":
        names = [p.name for p in self.principals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"principal name(s) appear more than once: {', '.join(duplicates)}")
        return self

    @cached_property
    def by_name(self) -> dict[str, SupervisorAccess | AdminAccess]:
        return {p.name: p for p in self.principals}


def load_access(path: Path) -> AccessConfig:
    """Read an access file (``plans/access.example.yaml`` shows the shape)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror}") from exc
    return parse_access(text, str(path))


def parse_access(text: str, source: str) -> AccessConfig:
    """An access file's text as its model. Problems are named by place and reason, without
    the values (a careless edit may have put a token where its digest belongs)."""
    try:
        return AccessConfig.model_validate(parse_yaml(text, source))
    except ValidationError as exc:
        lines = [f"{source}: {exc.error_count()} problem(s) in the access file"]
        for problem in exc.errors(include_input=False):
            where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
            lines.append(f"  {where}: {problem['msg']}")
        raise ConfigFileError("\n".join(lines)) from None


def new_token(name: str) -> tuple[str, str, str]:
    """A fresh token for ``name``, a new salt and the token's salted digest."""
    token = f"{name}.{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    return token, salt, salted_digest(salt, token)


def region_prefix(region_code: str) -> str:
    """The leading digits every county a region covers starts with (``alerts.routing
    .region_covers``): ``140000`` -> ``14``, ``140800`` -> ``1408``, ``140882`` -> itself."""
    if region_code.endswith("0000"):
        return region_code[:2]
    if region_code.endswith("00"):
        return region_code[:4]
    return region_code


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``id`` is the credit code of an enterprise, or the access
    file's name of a supervisor or an operator."""

    kind: PrincipalKind
    id: str
    region_code: str | None = None

    @property
    def name(self) -> str:
        """Who asked, as recorded with commands: ``enterprise:<code>``, ``supervisor:<name>``."""
        return f"{self.kind.value}:{self.id}"


class Authenticator:
    """Tokens to principals, and principals to what they may read."""

    def __init__(self, register: Register, access: AccessConfig) -> None:
        self._register = register
        self._access = access
        self._region_units: dict[str, tuple[str, ...]] = {}

    def principal_for(self, token: str) -> Principal | None:
        """The principal holding ``token``, or None. The part before the first dot picks the
        entry (a credit code from the register, or a name from the access file); the token
        is then compared with that entry's digest in constant time."""
        enterprise = self._register.enterprise_for_token(token)
        if enterprise is not None:
            return Principal(PrincipalKind.ENTERPRISE, enterprise.code)
        name = token.partition(".")[0]
        entry = self._access.by_name.get(name)
        if entry is None:
            hmac.compare_digest(salted_digest(_NOBODY[0], token), _NOBODY[1])
            return None
        if not entry.token_matches(token):
            return None
        if isinstance(entry, SupervisorAccess):
            return Principal(PrincipalKind.SUPERVISOR, entry.name, entry.region_code)
        return Principal(PrincipalKind.ADMIN, entry.name)

    def scope_of(self, principal: Principal) -> Scope:
        match principal.kind:
            case PrincipalKind.ADMIN:
                return Scope(everything=True)
            case PrincipalKind.ENTERPRISE:
                return Scope(enterprise_code=principal.id)
            case PrincipalKind.SUPERVISOR:
                assert principal.region_code is not None  # every supervisor has a region
                region = principal.region_code
                return Scope(
                    region_prefix=region_prefix(region),
                    region_enterprises=self._units_in(region),
                )

    def _units_in(self, region_code: str) -> tuple[str, ...]:
        if region_code not in self._region_units:
            self._region_units[region_code] = tuple(
                e.code for e in self._register.enterprises if region_covers(region_code, e.county)
            )
        return self._region_units[region_code]

    def silence_enterprise(self, principal: Principal, enterprise: str | None, subject: str) -> str:
        """The enterprise pattern a silence asked for by ``principal`` is stored with, or
        ``SilenceRefused`` saying what the principal may silence.

        An enterprise silences only its own alerts (the pattern is its code). A supervisor
        names one registered unit of its region by its exact code, or leaves the enterprise out
        and names one exact subject of its region: a division code inside it (regional
        alerts), or a registered meter, monitor or unit there (stored with that unit's code).
        An operator may silence anything."""
        match principal.kind:
            case PrincipalKind.ADMIN:
                return enterprise or "*"
            case PrincipalKind.ENTERPRISE:
                if enterprise in (None, principal.id):
                    return principal.id
                raise SilenceRefused(
                    f"an enterprise may silence only its own alerts: set enterprise to "
                    f"{principal.id} or leave it out (got {enterprise!r})"
                )
        region = principal.region_code
        assert region is not None  # every supervisor has a region
        units = self._units_in(region)
        if enterprise not in (None, "*"):
            if enterprise in units:
                return enterprise
            raise SilenceRefused(
                f"{principal.name} may silence only units registered in region {region}, "
                f"named by their exact credit code; {enterprise!r} is not one"
            )
        if not _WILDCARDS.isdisjoint(subject):
            raise SilenceRefused(
                f"{principal.name}: name one unit of region {region} as enterprise, or one "
                "exact subject there (no wildcards) when enterprise is left out"
            )
        if subject.isdigit() and len(subject) == 6 and region_covers(region, subject):
            return "*"  # a regional alert's subject: a division code of the region
        owner = self._owner_of(subject)
        if owner is not None and owner in units:
            return owner
        raise SilenceRefused(
            f"{principal.name} may silence only subjects in region {region}: a division code "
            f"there, or a registered meter, monitor or unit there; {subject!r} is not one"
        )

    def _owner_of(self, subject: str) -> str | None:
        """The registered unit a subject belongs to: a meter's, a monitor's, or the unit."""
        if subject in self._register.enterprises_by_code:
            return subject
        meter = self._register.meters_by_id.get(subject)
        if meter is not None:
            return meter.enterprise_code
        monitor = self._register.monitors_by_mn.get(subject)
        return monitor.enterprise_code if monitor is not None else None


class SilenceRefused(Exception):
    """A silence the principal may not set; the message says what it may set instead."""
