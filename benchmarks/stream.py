"""How fast the readings worker turns Kafka records into stored rows and rollups, and how that
compares with the ceilings of the services it sits between. All in one run, on this machine,
every service local:

1. **consume ceiling**: an aiokafka consumer reads the readings topic and does nothing else;
2. **COPY ceiling**: the same readings, already accounted, COPYed straight into a ledger
   hypertable (2,000 rows a transaction): what TimescaleDB takes with no stream in front;
3. **end to end**: ``energywatch worker`` (a separate process, as deployed) consumes the
   pre-loaded topic: decode, counters, standard coal, watermarks, ledger, rollups at four
   window sizes and five subject levels, data-quality flags, progress, commit. Sustained
   readings/s from its first commit to its last, and its peak memory;
4. **latency**: with the worker idle, readings produced at a steady rate; the worker's
   ``energywatch_stream_event_to_row_seconds`` histogram gives percentiles (Kafka timestamp
   to commit);
5. **profile**: the worker's code path (``LedgerWriter.write``, no Faust) run in this process
   under cProfile on a sample, to say where the time goes.
"""

import asyncio
import cProfile
import io
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from benchmarks.ingest import free_port
from benchmarks.simulation import benchmark_fleet
from contracts.partition_keys import unit_key
from energywatch.kafka_topics import delete_topics, ensure_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from plans.coal_factors import CoalFactors
from simulators.credentials import register_for_fleet
from simulators.energy import EnergyModel
from simulators.fleet import build_fleet
from simulators.runner import Simulation, SimulationPlan
from storage.migrate import migrate
from storage.scratch_databases import scratch_database
from storage.stream_state import records_made_durable
from stream.accounting import Accountant, PartitionState, decode_records
from stream.batch import RawRecord
from stream.counters import CounterConfig, CounterTracker
from stream.ledger_writer import LedgerWriter
from stream.standard_coal import StandardCoal

START = datetime(2026, 3, 1, 16, tzinfo=UTC)  # 2026-03-02 00:00 China time
Report = Callable[[str], None]
LATENCY_METRIC = "energywatch_stream_event_to_row_seconds"


@contextmanager
def _bench_pipeline(base: Settings, run_id: str) -> Iterator[Settings]:
    """A database and topics of this run's own; the database is dropped afterwards."""
    with scratch_database(base.database_url.get_secret_value(), "ew_bench") as url:
        settings = base.named_pipeline(
            f"ew-bench-{run_id}", database_url=SecretStr(url), worker_metrics_port=free_port()
        )
        ensure_topics(settings)
        try:
            yield settings
        finally:
            delete_topics(settings)


def _readings(units: int, count: int, offset_intervals: int = 0) -> list[tuple[bytes, bytes]]:
    """``count`` simulated readings (key, JSON) of a ``units``-unit fleet, in time order."""
    fleet = build_fleet(benchmark_fleet(units))
    intervals = -(-count // max(1, fleet.meter_count())) + 1
    start = START + timedelta(minutes=15 * offset_intervals)
    plan = SimulationPlan(EnergyModel(fleet), start, start + timedelta(minutes=15 * intervals))
    out: list[tuple[bytes, bytes]] = []
    for record in Simulation(plan).records():
        if record.channel.value == "readings":
            out.append((unit_key(record.payload, record.key), record.payload))
            if len(out) == count:
                break
    return out


def _produce(settings: Settings, records: list[tuple[bytes, bytes]], rate: float = 0) -> float:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=5 if rate else 20,
        batch_size=256 * 1024,
    )
    started = time.perf_counter()
    for n, (key, value) in enumerate(records):
        if rate:
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.send(settings.readings_topic, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


async def _consume_ceiling(settings: Settings, expected: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.readings_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.worker_app_id}-ceiling",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batches:
                started = time.perf_counter()
            seen += sum(len(b) for b in batches.values())
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
    return {"records": seen, "seconds": round(elapsed, 3), "per_second": round(seen / elapsed)}


async def _accounted_rows(units: int, records: list[tuple[bytes, bytes]]) -> list[Any]:
    accountant = Accountant(register_for_fleet(build_fleet(benchmark_fleet(units))), _coal())
    raw = [RawRecord(v, "t", 0, n) for n, (_, v) in enumerate(records)]
    accounting = accountant.account(
        decode_records(raw), {0: PartitionState()}, CounterTracker(CounterConfig()), _now()
    )
    return [a.row for a in accounting.rows]


def _now() -> datetime:
    return datetime.now(UTC)


def _coal() -> StandardCoal:
    return StandardCoal(CoalFactors.load())


async def _copy_ceiling(settings: Settings, rows: list[Any]) -> dict[str, Any]:
    from storage.ledger import COLUMNS, copy_values

    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn)
        await conn.execute(
            "CREATE TABLE copy_ceiling (LIKE meter_readings INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS, PRIMARY KEY (meter_id, period_start))"
        )
        await conn.execute(
            "SELECT create_hypertable('copy_ceiling', 'period_start', "
            "chunk_time_interval => INTERVAL '7 days')"
        )
        await conn.commit()
        started = time.perf_counter()
        for first in range(0, len(rows), 2000):
            async with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY copy_ceiling ({COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows[first : first + 2000]:
                    await copy.write_row(copy_values(row))
        elapsed = time.perf_counter() - started
    return {
        "rows": len(rows),
        "seconds": round(elapsed, 3),
        "per_second": round(len(rows) / elapsed),
    }


def _progress(settings: Settings) -> int:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return records_made_durable(conn, settings.readings_topic)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _histogram(port: int, name: str) -> dict[float, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def _percentiles(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """Percentiles of the observations between two scrapes, interpolated within buckets."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    out: dict[str, float] = {"observations": total}
    for q in (0.5, 0.9, 0.99):
        rank, lower, below = q * total, 0.0, 0.0
        for bound, cumulative in zip(bounds, counts, strict=True):
            if cumulative >= rank:
                if bound == float("inf"):
                    out[f"p{int(q * 100)}_seconds"] = lower
                else:
                    share = (rank - below) / max(cumulative - below, 1e-9)
                    out[f"p{int(q * 100)}_seconds"] = round(lower + share * (bound - lower), 4)
                break
            lower, below = bound, cumulative
    return out


async def _profile(
    settings: Settings, units: int, records: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    """The worker's path without Faust, under cProfile: where the time goes."""
    register = register_for_fleet(build_fleet(benchmark_fleet(units)))
    writer = LedgerWriter(Accountant(register, _coal()), consumer="profile")
    raw = [RawRecord(v, "profile", 0, n) for n, (_, v) in enumerate(records)]

    async def no_letters(letters: Any) -> None:
        return None

    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        stages: Counter[str] = Counter()
        for first in range(0, len(raw), 2000):
            result = await writer.write(conn, raw[first : first + 2000], _now(), no_letters)
            stages.update(result.stages)
        profiler.disable()
        elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    total_cpu = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:15]  # type: ignore[attr-defined]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return {
        "readings": len(raw),
        "seconds": round(elapsed, 3),
        "per_second_in_process": round(len(raw) / elapsed),
        "stage_seconds_under_profiler": {k: round(v, 3) for k, v in stages.most_common()},
        "python_cpu_seconds": round(total_cpu, 3),
        "waiting_on_postgres_seconds": round(max(0.0, elapsed - total_cpu), 3),
        "top_self_time": [
            {"function": f"{path.split('/')[-1]}:{line}({name})", "self_seconds": round(t, 3)}
            for (path, line, name), (_, _, t, _, _) in top
        ],
        "cumulative_text": text.getvalue().splitlines()[:60],
    }


def run(
    base: Settings,
    readings: int,
    units: int,
    latency_rate: float,
    latency_seconds: float,
    report: Report,
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    report(f"simulating {readings:,} readings from {units} units")
    records = _readings(units, readings)
    fleet = build_fleet(benchmark_fleet(units))
    results: dict[str, Any] = {
        "readings": len(records),
        "fleet": {"units": units, "meters": fleet.meter_count()},
    }
    with tempfile.TemporaryDirectory() as folder, _bench_pipeline(base, run_id) as settings:
        register_path = Path(folder) / "register.yaml"
        register_path.write_text(
            yaml.safe_dump(register_for_fleet(fleet).model_dump(mode="json"), allow_unicode=True)
        )
        settings = settings.model_copy(update={"register_path": register_path})
        report("producing to Kafka")
        results["produce_seconds"] = round(_produce(settings, records), 3)

        report("ceiling: raw Kafka consume")
        results["consume_ceiling"] = asyncio.run(_consume_ceiling(settings, len(records)))
        report("ceiling: raw COPY into a hypertable")
        rows = asyncio.run(_accounted_rows(units, records))
        results["copy_ceiling"] = asyncio.run(_copy_ceiling(settings, rows))

        report("end to end: the worker drains the topic")
        env = {
            k: v
            for k, v in settings.as_env().items()
            if k != "EW_PROMETHEUS_TARGETS_DIR"  # no scrape target for a benchmark
        }
        worker = ServiceProcess(["worker"], env, Path(folder) / "worker.log").start()
        sampler = _start_py_spy(worker.pid, Path(folder) / "worker.raw")
        try:
            peak_rss, first_at, last_seen = 0.0, None, 0
            launched = time.perf_counter()
            deadline = launched + 600
            while last_seen < len(records):
                if not worker.alive() or time.perf_counter() > deadline:
                    raise RuntimeError(f"the worker stopped or stalled:\n{worker.log_tail()}")
                peak_rss = max(peak_rss, _rss_mib(worker.pid))
                last_seen = _progress(settings)
                if last_seen and first_at is None:
                    first_at = time.perf_counter()
                report(f"end to end: {last_seen:,} / {len(records):,} readings")
                time.sleep(0.1)
            done_at = time.perf_counter()
            assert first_at is not None
            # from the first commit seen: the first batch's own time is not counted
            sustained = len(records) / max(done_at - first_at, 1e-9)
            results["end_to_end"] = {
                "readings": len(records),
                "seconds_from_first_commit": round(done_at - first_at, 3),
                "seconds_including_startup": round(done_at - launched, 3),
                "per_second": round(sustained),
                "worker_peak_rss_mib": round(peak_rss, 1),
            }
            results.update(_database_sizes(settings))
            results["worker_profile"] = _stop_py_spy(sampler, Path(folder) / "worker.raw")

            report(f"latency: {latency_rate:.0f} readings/s for {latency_seconds:.0f} s")
            before = _histogram(
                settings.worker_metrics_port, "energywatch_stream_event_to_row_seconds"
            )
            more = _readings(units, int(latency_rate * latency_seconds), offset_intervals=10_000)
            _produce(settings, more, rate=latency_rate)
            total = len(records) + len(more)
            while _progress(settings) < total:
                time.sleep(0.1)
            time.sleep(0.5)
            after = _histogram(
                settings.worker_metrics_port, "energywatch_stream_event_to_row_seconds"
            )
            results["latency"] = {"rate_per_second": latency_rate, **_percentiles(before, after)}
            results["worker_rss_after_mib"] = round(_rss_mib(worker.pid), 1)
        finally:
            worker.stop()

    report("profile: the worker's path in this process")
    with _bench_pipeline(base, f"{run_id}p") as settings:
        sample = records[: min(len(records), 60_000)]
        results["profile"] = asyncio.run(_profile(settings, units, sample))

    e2e = results["end_to_end"]["per_second"]
    results["ratios"] = {
        "end_to_end_vs_copy_ceiling": round(e2e / results["copy_ceiling"]["per_second"], 3),
        "end_to_end_vs_consume_ceiling": round(e2e / results["consume_ceiling"]["per_second"], 3),
    }
    return results


def _start_py_spy(pid: int, out: Path) -> "subprocess.Popen[bytes] | None":
    """Sample the worker process with py-spy (a dev dependency), if it is installed."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        return None
    return subprocess.Popen(
        [
            binary,
            "record",
            "-p",
            str(pid),
            "-f",
            "raw",
            "-o",
            str(out),
            "-r",
            "50",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_py_spy(sampler: "subprocess.Popen[bytes] | None", out: Path) -> dict[str, Any]:
    """Where the worker's samples were: own time per function, and time inside our modules."""
    if sampler is None:
        return {"skipped": "py-spy is not installed (pip install -e '.[dev]')"}
    sampler.send_signal(signal.SIGINT)
    sampler.wait(timeout=30)
    if not out.exists():
        return {"skipped": "py-spy wrote nothing (ptrace not permitted?)"}
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[_frame(frames[-1])] += n
        ours = {_frame(f) for f in frames if "site-packages" not in f and "/lib/python" not in f}
        for name in ours:
            inside[name] += n

    def share(n: int) -> float:
        return round(n / max(total, 1), 3)

    return {
        "samples": total,
        "own_time_share": {name: share(n) for name, n in own.most_common(20)},
        "inclusive_share_of_project_functions": {
            name: share(n) for name, n in inside.most_common(20)
        },
    }


def _frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``file.py:func``."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{file}:{name}"


def _database_sizes(settings: Settings) -> dict[str, Any]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        rows = conn.execute(
            "SELECT (SELECT count(*) FROM meter_readings), (SELECT count(*) FROM energy_rollups)"
        ).fetchone()
    assert rows is not None
    return {"stored": {"ledger_rows": int(rows[0]), "rollup_rows": int(rows[1])}}
