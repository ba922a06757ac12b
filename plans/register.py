"""The enterprise register: which units exist, their meters and VOC monitors, and how each
authenticates when it sends data.

Secrets are never stored: an enterprise's upload token and a monitor's HJ 212 password are kept
as salted SHA-256 digests (tokens are long random strings; device passwords are checked on
every packet, so a fast digest with a per-device salt is the trade-off). ``energywatch
register from-fleet`` writes a register for a simulated fleet (``plans/registers/``).
"""

import hashlib
import hmac
from functools import cached_property
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.identifiers import EnterpriseCode
from contracts.readings import EnergyType
from energywatch.config_files import load_model_file

REGISTER_VERSION: Final = 1
_STRICT = ConfigDict(frozen=True, extra="forbid")
SaltedDigest = str


def salted_digest(salt: str, secret: str) -> SaltedDigest:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


class EnterpriseEntry(BaseModel):
    model_config = _STRICT
    code: EnterpriseCode
    name: str = Field(min_length=1)
    city: str
    county: str = Field(pattern=r"^\d{6}$")
    industry: str
    token_salt: str | None = None
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

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
        codes = {e.code for e in self.enterprises}
        if len(codes) != len(self.enterprises):
            raise ValueError("an enterprise code appears twice")
        for meter in self.meters:
            if meter.enterprise_code not in codes:
                raise ValueError(
                    f"meter {meter.meter_id}: unknown enterprise {meter.enterprise_code}"
                )
        for monitor in self.voc_monitors:
            if monitor.enterprise_code not in codes:
                raise ValueError(
                    f"monitor {monitor.mn}: unknown enterprise {monitor.enterprise_code}"
                )
        if len({m.meter_id for m in self.meters}) != len(self.meters):
            raise ValueError("a meter id appears twice")
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


def load_register(path: Path) -> Register:
    return load_model_file(Register, path, "register")
