"""Simulated VOC monitors with a register that knows them, for the HJ 212 gateway tests."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.voc import VocSample
from ingest.hj212 import CpSegment, Packet, encode_packet
from simulators.credentials import register_for_fleet
from simulators.scenario import load_scenario
from simulators.voc import voc_packet, voc_samples

SCENARIO = load_scenario(Path(__file__).resolve().parent.parent / "scenarios/voc-exceedance.yaml")
MONITORS = SCENARIO.plan.voc_monitors
REGISTER = register_for_fleet(SCENARIO.fleet, MONITORS)
MONITOR = MONITORS[0]
PASSWORD = MONITOR.password.get_secret_value()
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def minute_samples(count: int, monitor=MONITOR) -> list[VocSample]:
    samples = [s for s in voc_samples(monitor, START, count, seed=1) if s.interval_seconds == 60]
    return samples[:count]


def minute_packets(count: int, monitor=MONITOR) -> list[bytes]:
    password = monitor.password.get_secret_value()
    return [voc_packet(s, password, s.data_time) for s in minute_samples(count, monitor)]


def packet(cn: str, password: str = PASSWORD, mn: str | None = None, flag: int | None = 5) -> bytes:
    return encode_packet(
        Packet(
            qn="20260302080000000",
            st="27",
            cn=cn,
            pw=password,
            mn=mn or MONITOR.monitor_id,
            flag=flag,
            cp=CpSegment.of({"DataTime": "20260302080000"}, {}),
        )
    )
