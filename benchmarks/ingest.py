"""How fast the gateways take data in, each running as its own process on one core.

* HJ 212: ``devices`` simulated VOC monitors connect at once and upload minute data as fast as
  the gateway answers (each 9014 reply means the sample is in Kafka, acknowledged);
* HTTPS: one enterprise uploads readings in batches of ``batch`` over ``concurrency``
  connections; every response item is an acknowledgement after Kafka has the readings.

The load generator runs in this process on the other core.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.simulation import benchmark_fleet
from energywatch.settings import Settings
from plans.register import EnterpriseEntry, Register, VocMonitorEntry, salted_digest
from simulators.credentials import register_for_fleet, simulated_token
from simulators.fleet import build_fleet
from simulators.voc import simulated_voc_monitors, voc_packet, voc_samples


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def _gateway(command: str, register: Path, env: dict[str, str], port: int) -> Iterator[None]:
    """``energywatch ingest <command>`` in its own process, pinned to one CPU, until done."""
    cpus = sorted(os.sched_getaffinity(0))
    gateway_cpu, load_cpus = cpus[0], set(cpus[1:]) or {cpus[0]}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "energywatch.cli",
            "ingest",
            command,
            "--register",
            str(register),
            "--loglevel",
            "warning",
        ],
        env={**os.environ, **env},
        preexec_fn=lambda: os.sched_setaffinity(0, {gateway_cpu}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.sched_setaffinity(0, load_cpus)
    try:
        deadline = time.monotonic() + 60
        while not _port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the {command} gateway did not start: {error[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        os.sched_setaffinity(0, set(cpus))


def _write_register(register: Register, folder: Path) -> Path:
    path = folder / "register.yaml"
    path.write_text(yaml.safe_dump(register.model_dump(mode="json"), allow_unicode=True))
    return path


def _topic_env(settings: Settings, run: str) -> dict[str, str]:
    return {
        "EW_READINGS_TOPIC": f"ew-bench-{run}.readings",
        "EW_PRODUCTION_TOPIC": f"ew-bench-{run}.production",
        "EW_VOC_TOPIC": f"ew-bench-{run}.voc",
        "EW_ALERTS_TOPIC": f"ew-bench-{run}.alerts",
        "EW_DEAD_LETTER_TOPIC": f"ew-bench-{run}.dead-letters",
        "EW_INGEST_METRICS_PORT": "0",
    }


def bench_hj212(
    devices: int, packets_per_device: int, run: str, report: Callable[[str], None]
) -> dict[str, Any]:
    monitors = simulated_voc_monitors(devices, seed=7)
    salt = "bench"
    register = Register(
        name="hj212 benchmark",
        enterprises=tuple(
            EnterpriseEntry(
                code=m.enterprise_code,
                name=m.monitor_id,
                city="yuncheng",
                county="140802",
                industry="coking",
            )
            for m in monitors
        ),
        voc_monitors=tuple(
            VocMonitorEntry(
                mn=m.monitor_id,
                enterprise_code=m.enterprise_code,
                password_salt=salt,
                password_sha256=salted_digest(salt, m.password.get_secret_value()),
            )
            for m in monitors
        ),
    )
    report(f"building {devices * packets_per_device:,} HJ 212 packets")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    streams = []
    for monitor in monitors:
        password = monitor.password.get_secret_value()
        samples = (
            s
            for s in voc_samples(monitor, start, packets_per_device * 2, seed=1)
            if s.interval_seconds == 60
        )
        streams.append(
            [
                voc_packet(s, password, s.data_time)
                for _, s in zip(range(packets_per_device), samples, strict=False)
            ]
        )
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = _write_register(register, Path(folder))
        env = {
            **_topic_env(Settings.load(), run),
            "EW_HJ212_PORT": str(port),
            "EW_HJ212_PACKETS_PER_SECOND": "1000000",
        }
        with _gateway("hj212", path, env, port):
            report(f"{devices} devices uploading to the HJ 212 gateway")
            elapsed, replies = asyncio.run(_hj212_load(port, streams))
    total = sum(len(s) for s in streams)
    return {
        "devices": devices,
        "packets": total,
        "replies": replies,
        "seconds": round(elapsed, 3),
        "packets_per_second": round(replies / elapsed),
        "packet_bytes_mean": round(sum(len(p) for s in streams for p in s) / total),
    }


async def _hj212_load(port: int, streams: list[list[bytes]]) -> tuple[float, int]:
    async def device(packets: list[bytes]) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = 0
        for raw in packets:  # like a logger: send, wait for the 9014, send the next
            writer.write(raw)
            await writer.drain()
            await reader.readuntil(b"\r\n")
            replies += 1
        writer.close()
        return replies

    started = time.perf_counter()
    counts = await asyncio.gather(*(device(s) for s in streams))
    return time.perf_counter() - started, sum(counts)


def bench_http(
    readings: int, batch: int, concurrency: int, run: str, report: Callable[[str], None]
) -> dict[str, Any]:
    fleet = build_fleet(benchmark_fleet(20))
    register = register_for_fleet(fleet)
    enterprise = max(fleet.enterprises, key=lambda e: len(e.meters))
    token = simulated_token(fleet.seed, enterprise.code)
    meters = [(m.meter_id, m.energy_type) for m in enterprise.meters]
    units = {"electricity": "kWh", "natural_gas": "m3", "water": "m3", "heat": "GJ"}
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=300)
    items = []
    for n in range(readings):
        meter_id, energy = meters[n % len(meters)]
        at = start + timedelta(minutes=15 * (n // len(meters)))
        items.append(
            {
                "meter_id": meter_id,
                "period_start": at.isoformat(),
                "unit": units.get(energy.value, "t"),
                "value": 0.5 + (n % 97) / 100,
            }
        )
    batches = [items[i : i + batch] for i in range(0, len(items), batch)]
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = _write_register(register, Path(folder))
        env = {**_topic_env(Settings.load(), run), "EW_HTTP_PORT": str(port)}
        with _gateway("http", path, env, port):
            report(f"uploading {readings:,} readings in batches of {batch}")
            elapsed, accepted = asyncio.run(_http_load(port, token, batches, concurrency))
    return {
        "readings": readings,
        "accepted": accepted,
        "batch": batch,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "readings_per_second": round(accepted / elapsed),
    }


async def _http_load(
    port: int, token: str, batches: list[list[dict[str, Any]]], concurrency: int
) -> tuple[float, int]:
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    accepted = 0

    async def uploader(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post("/v1/readings", json={"items": body})
            response.raise_for_status()
            accepted += response.json()["accepted"]

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(uploader(client) for _ in range(concurrency)))
        return time.perf_counter() - started, accepted
