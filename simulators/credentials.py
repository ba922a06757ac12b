"""Credentials of simulated enterprises and devices, and the register that knows them.

Simulation only: tokens and device passwords are derived from the fleet's seed, so a simulator
and a gateway started from the same fleet agree without sharing a secrets file. The register
keeps only salted digests, as it would for real units.
"""

import hashlib

from plans.register import (
    EnterpriseEntry,
    MeterEntry,
    Register,
    VocLimit,
    VocMonitorEntry,
    salted_digest,
)
from simulators.fleet import Fleet
from simulators.voc import VocMonitorProfile


def _derive(seed: int, purpose: str, name: str, length: int = 40) -> str:
    return hashlib.sha256(f"{seed}:{purpose}:{name}".encode()).hexdigest()[:length]


def simulated_token(seed: int, enterprise_code: str) -> str:
    """The upload token of a simulated enterprise: ``<credit code>.<secret>``."""
    return f"{enterprise_code}.{_derive(seed, 'token', enterprise_code)}"


def simulated_device_password(seed: int, monitor_id: str) -> str:
    return _derive(seed, "device-password", monitor_id, 12)


def register_for_fleet(fleet: Fleet, monitors: list[VocMonitorProfile] | None = None) -> Register:
    """The register a gateway needs to accept the fleet's data."""
    seed = fleet.seed
    enterprises = []
    meters: list[MeterEntry] = []
    for enterprise in fleet.enterprises:
        salt = _derive(seed, "token-salt", enterprise.code, 16)
        enterprises.append(
            EnterpriseEntry(
                code=enterprise.code,
                name=enterprise.name,
                city=enterprise.city.code,
                county=enterprise.county.division,
                industry=enterprise.profile.code,
                token_salt=salt,
                token_sha256=salted_digest(salt, simulated_token(seed, enterprise.code)),
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
