"""Credentials of simulated enterprises and devices, and the register that knows them.

Simulation only: tokens and device passwords are derived from the fleet's seed, so a simulator
and a gateway started from the same fleet agree without sharing a secrets file. The register
keeps only salted digests, as it would for real units.

The register also carries what the alert rules judge simulated units by, as a city would
allocate it: each industrial ("两高") unit's products with their energy limits, a heavy-
pollution performance grade, and for each year asked for an energy budget of its planned
annual use plus ``BUDGET_MARGIN`` (so a unit on plan stays under pace through an ordinary
busy month - an office heats and works five days a week in March, above its annual average
rate - and one running a third over it crosses the warning line within weeks).
"""

import hashlib
from collections.abc import Iterable
from typing import Final

from plans.register import (
    EnergyBudget,
    EnterpriseEntry,
    MeterEntry,
    Product,
    ProductEnergyLimit,
    Register,
    VocLimit,
    VocMonitorEntry,
    salted_digest,
)
from simulators.fleet import Enterprise, Fleet
from simulators.voc import VocMonitorProfile


def _derive(seed: int, purpose: str, name: str, length: int = 40) -> str:
    return hashlib.sha256(f"{seed}:{purpose}:{name}".encode()).hexdigest()[:length]


def simulated_token(seed: int, enterprise_code: str) -> str:
    """The upload token of a simulated enterprise: ``<credit code>.<secret>``."""
    return f"{enterprise_code}.{_derive(seed, 'token', enterprise_code)}"


def simulated_device_password(seed: int, monitor_id: str) -> str:
    return _derive(seed, "device-password", monitor_id, 12)


BUDGET_MARGIN: Final = 0.20
#: The grade simulated industrial units are listed with for heavy-pollution response.
EMERGENCY_GRADE: Final = "B"


def _products(enterprise: Enterprise) -> tuple[Product, ...]:
    return tuple(
        Product(
            code=product.code,
            name_zh=product.name_zh,
            unit=product.unit,
            route=product.route,
            limits=tuple(
                ProductEnergyLimit.model_validate(limit.model_dump()) for limit in product.limits
            ),
        )
        for product in enterprise.profile.products
    )


def register_for_fleet(
    fleet: Fleet,
    monitors: list[VocMonitorProfile] | None = None,
    budget_years: Iterable[int] = (),
) -> Register:
    """The register a gateway needs to accept the fleet's data, with what the rules judge the
    units by; energy budgets only for ``budget_years``."""
    seed = fleet.seed
    years = sorted(set(budget_years))
    enterprises = []
    meters: list[MeterEntry] = []
    for enterprise in fleet.enterprises:
        salt = _derive(seed, "token-salt", enterprise.code, 16)
        industrial = bool(enterprise.profile.products)
        enterprises.append(
            EnterpriseEntry(
                code=enterprise.code,
                name=enterprise.name,
                city=enterprise.city.code,
                county=enterprise.county.division,
                industry=enterprise.profile.code,
                token_salt=salt,
                token_sha256=salted_digest(salt, simulated_token(seed, enterprise.code)),
                products=_products(enterprise),
                energy_budgets=tuple(
                    EnergyBudget(
                        year=year,
                        budget_tce=round(enterprise.annual_tce * (1 + BUDGET_MARGIN), 1),
                        source="simulated: planned annual use plus the margin",
                    )
                    for year in years
                ),
                emergency_grade=EMERGENCY_GRADE if industrial else None,
                two_high=industrial,
            )
        )
        meters.extend(
            MeterEntry(
                meter_id=m.meter_id, enterprise_code=enterprise.code, energy_type=m.energy_type
            )
            for m in enterprise.meters
        )
    devices = []
    for monitor in monitors or []:
        salt = _derive(seed, "device-salt", monitor.monitor_id, 16)
        devices.append(
            VocMonitorEntry(
                mn=monitor.monitor_id,
                enterprise_code=monitor.enterprise_code,
                password_salt=salt,
                password_sha256=salted_digest(salt, monitor.password.get_secret_value()),
                standard=monitor.standard,
                limits={
                    code: VocLimit(
                        hourly_avg_mg_m3=limit.hourly_avg_mg_m3, single_mg_m3=limit.single_mg_m3
                    )
                    for code, limit in monitor.limits.items()
                },
            )
        )
    return Register(
        name=f"simulated {fleet.name}",
        enterprises=tuple(enterprises),
        meters=tuple(meters),
        voc_monitors=tuple(devices),
    )
