"""The same job done by EnergyWatch and by its peers, in one run, with the machine's ceilings.

The job: simulated readings of a fleet, pre-loaded once into one Kafka topic, become per-unit
15-minute and per-unit daily (CST) tce rollups in TimescaleDB. Every contender reads the
whole topic with a consumer group of its own, writes into a database of its own, and runs
alone (one after the other, never two at once), as a child process so its memory is its own:

- **energywatch**: ``energywatch worker``, as deployed (ledger, rollups at four window sizes
  and five subject levels, data quality, progress; ``benchmarks.stream`` measures it alone);
- **quix_streams**: ``benchmarks.peers.quix_rollups``, Quix Streams windows and a batching sink;
- **plain_consumer**: ``benchmarks.peers.plain_consumer``, kafka-python and two row upserts per
  reading;
- ceilings: **faust_take** (``benchmarks.peers.faust_take``: a bare Faust agent taking and
  acknowledging batches, the framework's own cost per event), **raw_consume** (aiokafka reading
  the topic, nothing else) and **raw_copy** (the readings' ledger rows COPYed into a hypertable),
  both in this process.

A contender's time runs from the first progress seen (stored rows; acknowledged events for
faust_take) to the last, polled every 50 ms, and its rate counts only the work after that
first sighting, so start-up and the first batch are left out alike for every contender; the
time including start-up is reported beside it. Peak memory is the child's VmHWM.

At the end, every peer's per-unit daily and 15-minute totals must equal the worker's unit
``all`` rollups within 1e-9 t, or the benchmark fails (``RollupMismatch``). One difference in
the job is allowed for, and counted in the results: EnergyWatch holds an implausible register
jump until the meter's next reading says whether it was real (``stream.counters``), so a real
load step's first interval is counted in the next reading's window. The peers take each
reading's reported consumption as it comes. Before comparing, each held reading's tce is moved
in the peer's totals to the window where EnergyWatch counted it (``HeldJump``): the totals
must then agree exactly, and a hold that is anything but such a move still fails the run.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import yaml
from kafka.admin import KafkaAdminClient
from kafka.errors import UnknownTopicOrPartitionError
from pydantic import SecretStr

from benchmarks.peers.rollup_job import ReadingTce
from benchmarks.peers.rollup_tables import (
    TABLES,
    StoredSoFar,
    Totals,
    energywatch_totals,
    peer_totals,
)
from benchmarks.simulation import benchmark_fleet
from benchmarks.stream import (
    _accounted_rows,
    _bench_pipeline,
    _copy_ceiling,
    _produce,
    _readings,
)
from contracts.readings import EnergyType, decode_reading
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from simulators.credentials import register_for_fleet
from simulators.fleet import build_fleet
from storage.scratch_databases import scratch_database
from stream.accounting import LedgerRow
from stream.counters import Flag
from stream.windows import WindowSize, window_start

Report = Callable[[str], None]
#: the largest difference allowed between two contenders' totals, in tonnes of standard coal
TOLERANCE_TCE: Final = Decimal("1e-9")
POLL_SECONDS: Final = 0.05
#: what the issue aims at: EnergyWatch's rate at least this many times the contender's
AIMS: Final = {"quix_streams": 3.0, "plain_consumer": 20.0, "raw_copy": 0.5}

GUARANTEES: Final = {
    "energywatch": (
        "effectively exactly-once: rows, rollups and each partition's next offset in one "
        "transaction; redelivered records skipped by offset; Kafka offsets committed after"
    ),
    "quix_streams": (
        "at-least-once (Quix default): sinks flushed, then window state (RocksDB + changelog "
        "topics) and offsets committed per checkpoint; the sink SETs each window's current "
        "total, so a replay rewrites the same rows: idempotent"
    ),
    "plain_consumer": (
        "at-least-once: the batch's transaction committed, then its offsets; a crash between "
        "the two adds the batch twice (not idempotent)"
    ),
    "faust_take": "none: events acknowledged, nothing stored (a ceiling)",
    "raw_consume": "none: records read, nothing stored or committed (a ceiling)",
    "raw_copy": "none: accounted rows COPYed, no Kafka (a ceiling)",
}
KINDS: Final = {
    "energywatch": "EnergyWatch",
    "quix_streams": "peer",
    "plain_consumer": "peer",
    "faust_take": "ceiling",
    "raw_consume": "ceiling",
    "raw_copy": "ceiling",
}


@dataclass(frozen=True, slots=True)
class HeldJump:
    """A reading EnergyWatch held (an implausible register jump), counted with the meter's
    next reading instead: its tce, as the peers count it, belongs in that reading's windows."""

    unit: str
    held: datetime  # the held reading's period start
    counted_with: datetime  # the period start of the reading that carried it
    tce: Decimal


def held_jumps(rows: Sequence[LedgerRow], records: Sequence[tuple[bytes, bytes]]) -> list[HeldJump]:
    """The readings among ``rows`` (EnergyWatch's accounting of ``records``, in order) that were
    held and later counted with their meter's next reading; water is in no tce total."""
    jump = Flag.IMPLAUSIBLE_JUMP.value
    held = {
        row.key
        for row in rows
        if row.consumption is None and row.physical_counter is not None
        if jump in row.quality_flags and row.energy_type != EnergyType.WATER.value
    }
    if not held:
        return []
    meters = {meter for meter, _ in held}
    following: dict[tuple[str, datetime], datetime] = {}
    waiting: dict[str, datetime] = {}  # meter -> its held period, until the next reading
    for row in rows:
        if row.meter_id not in meters:
            continue
        before = waiting.pop(row.meter_id, None)
        if before is not None and row.period_start > before and row.consumption is not None:
            following[(row.meter_id, before)] = row.period_start
        elif before is not None:
            waiting[row.meter_id] = before
        if row.key in held:
            waiting[row.meter_id] = row.period_start
    units = {row.enterprise_code.encode() for row in rows if row.key in held}
    to_tce = ReadingTce()
    out = []
    for key, value in records:  # keyed by unit (contracts.partition_keys)
        if key not in units:
            continue
        meter = decode_reading(value).meter_id
        part = to_tce(value)
        if meter not in meters or part is None or (meter, part.period_start) not in following:
            continue
        counted_with = following[(meter, part.period_start)]
        out.append(HeldJump(part.unit, part.period_start, counted_with, Decimal(str(part.tce))))
    return out


def as_energywatch_counts(
    totals: Mapping[str, Totals], jumps: Iterable[HeldJump]
) -> dict[str, Totals]:
    """A peer's ``totals`` with each held reading's tce moved to the windows EnergyWatch counted
    it in (EnergyWatch keeps a row, at zero if need be, for the held reading's window)."""
    moved = {window: dict(by_key) for window, by_key in totals.items()}
    for jump in jumps:
        for window, by_key in moved.items():
            size = WindowSize(window)
            source = (jump.unit, window_start(jump.held, size))
            target = (jump.unit, window_start(jump.counted_with, size))
            if source == target:
                continue
            by_key[source] = by_key.get(source, Decimal(0)) - jump.tce
            by_key[target] = by_key.get(target, Decimal(0)) + jump.tce
    return moved


class RollupMismatch(AssertionError):
    """A contender's rollups differ from EnergyWatch's: the comparison would be meaningless."""


class PeerProcess(ServiceProcess):
    """A peer of the benchmark (``python -m <module>``) as a child with its own environment."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        super().__init__([module], env, log_path)
        self.module = module

    def start(self) -> "PeerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self


@dataclass(frozen=True, slots=True)
class Drained:
    """How long a contender took to do the whole job."""

    records: int
    seconds: float  # from the first progress seen to the last
    seconds_including_startup: float
    per_second: float
    peak_rss_mib: float | None
    #: False when the first sighting came with more than half the work done (a run too
    #: small to time): ``seconds`` and the rate then include start-up
    sustained: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "seconds_including_startup": round(self.seconds_including_startup, 3),
            "per_second": round(self.per_second),
            "peak_rss_mib": None if self.peak_rss_mib is None else round(self.peak_rss_mib, 1),
            "sustained": self.sustained,
        }


def _peak_rss_mib(pid: int) -> float | None:
    """The process's high-water resident set (VmHWM), in MiB."""
    with suppress(FileNotFoundError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def drain(
    process: ServiceProcess,
    progress: Callable[[], int],
    goal: int,
    records: int,
    what: str,
    report: Report,
    timeout: float,
) -> Drained:
    """Wait until ``progress()`` reaches ``goal`` (the contender's own count of work done for
    the topic's ``records``), and time it."""
    launched = time.perf_counter()
    deadline = launched + timeout
    first: tuple[float, int] | None = None
    while True:
        if not process.alive():
            raise RuntimeError(f"{what} stopped before it finished:\n{process.log_tail()}")
        done = progress()
        now = time.perf_counter()
        if done and first is None:
            first = (now, done)
        if done >= goal:
            break
        if now > deadline:
            raise RuntimeError(
                f"{what} did only {done:,} of {goal:,} in {timeout:.0f} s:\n{process.log_tail()}"
            )
        report(f"{what}: {done:,} / {goal:,}")
        time.sleep(POLL_SECONDS)
    assert first is not None
    return timed(records, goal, launched, first, now, _peak_rss_mib(process.pid))


def timed(
    records: int,
    goal: int,
    launched: float,
    first: tuple[float, int],
    done_at: float,
    peak_rss_mib: float | None,
) -> Drained:
    """The rate over the work done after the first progress seen (``first``: when, how
    much), so neither start-up nor the first batch counts. When the first sighting came with
    more than half the work done already (a run too small for the contender's batches or
    checkpoints), what is left is no measure: the time since launch, flagged not sustained."""
    seen_at, seen = first
    sustained = seen <= goal / 2
    if sustained:
        seconds = done_at - seen_at
        per_second = records * (goal - seen) / goal / max(seconds, 1e-9)
    else:
        seconds = done_at - launched
        per_second = records / max(seconds, 1e-9)
    return Drained(records, seconds, done_at - launched, per_second, peak_rss_mib, sustained)


async def raw_consume(settings: Settings, records: int) -> Drained:
    """The consume ceiling: an aiokafka consumer reading the topic, nothing else (timed as
    the contenders are: from the first batch received to the last)."""
    from aiokafka import AIOKafkaConsumer

    launched = time.perf_counter()
    consumer = AIOKafkaConsumer(
        settings.readings_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.worker_app_id}-raw-consume",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, first = 0, None
    try:
        while seen < records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(batch) for batch in batches.values())
            if seen and first is None:
                first = (time.perf_counter(), seen)
    finally:
        await consumer.stop()
    assert first is not None
    return timed(records, records, launched, first, time.perf_counter(), None)


def differences(reference: Totals, other: Totals, tolerance: Decimal = TOLERANCE_TCE) -> list[str]:
    """What differs between two sets of totals by (unit, window start): missing or extra
    windows, and totals further apart than ``tolerance``; empty when they agree."""
    out = [f"missing {unit} {at.isoformat()}" for unit, at in sorted(reference.keys() - other)]
    out += [f"extra {unit} {at.isoformat()}" for unit, at in sorted(other.keys() - reference)]
    for key in sorted(reference.keys() & other.keys()):
        if abs(reference[key] - other[key]) > tolerance:
            unit, at = key
            out.append(f"{unit} {at.isoformat()}: {other[key]} t, EnergyWatch {reference[key]} t")
    return out


def _moved(jumps: Sequence[HeldJump]) -> str:
    if not jumps:
        return ""
    return (
        f", once {len(jumps)} held register jump(s) are moved to the reading that confirmed "
        "them, as EnergyWatch counts them"
    )


def check_same_rollups(name: str, reference: dict[str, Totals], other: dict[str, Totals]) -> None:
    """Raise ``RollupMismatch`` unless ``other`` has EnergyWatch's totals for every window."""
    problems = []
    for window in TABLES:
        found = differences(reference[window], other[window])
        problems += [f"{window} {problem}" for problem in found]
    if problems:
        shown = "\n  ".join(problems[:20])
        raise RollupMismatch(
            f"{name}'s rollups differ from EnergyWatch's in {len(problems)} places "
            f"(first {min(20, len(problems))}):\n  {shown}"
        )


def _child_env(settings: Settings) -> dict[str, str]:
    return {k: v for k, v in settings.as_env().items() if k != "EW_PROMETHEUS_TARGETS_DIR"}


def _timeout(records: int) -> float:
    """Generous: the plain consumer does a few thousand statements a second."""
    return max(180.0, records / 100)


@contextmanager
def _own_database(settings: Settings, name: str) -> Iterator[Settings]:
    """``settings`` with a scratch database and a consumer group of the contender's own."""
    with scratch_database(settings.database_url.get_secret_value(), f"ew_sbs_{name}") as url:
        yield settings.model_copy(
            update={
                "database_url": SecretStr(url),
                "worker_app_id": f"{settings.worker_app_id}-{name.replace('_', '-')}",
            }
        )


def _delete_topics_of(settings: Settings, marker: str) -> None:
    """Delete the topics a framework made for itself (Quix's repartition and changelog topics
    carry its consumer group in their names)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        doomed = [name for name in admin.list_topics() if marker in name]
        if doomed:
            with suppress(UnknownTopicOrPartitionError):
                admin.delete_topics(doomed)
    finally:
        admin.close()


def _run_energywatch(
    settings: Settings, folder: Path, records: int, report: Report
) -> tuple[Drained, dict[str, Totals]]:
    url = settings.database_url.get_secret_value()
    progress = StoredSoFar.energywatch(url, settings.readings_topic)
    worker = ServiceProcess(["worker"], _child_env(settings), folder / "energywatch.log").start()
    try:
        drained = drain(
            worker,
            progress,
            records,
            records,
            "energywatch",
            report,
            _timeout(records),
        )
    finally:
        worker.stop()
        progress.close()
    return drained, {window: energywatch_totals(url, window) for window in TABLES}


def _run_peer(
    settings: Settings,
    name: str,
    module: str,
    folder: Path,
    records: int,
    stored_goal: int,
    report: Report,
) -> tuple[Drained, dict[str, Totals]]:
    with _own_database(settings, name) as own:
        url = own.database_url.get_secret_value()
        progress = StoredSoFar.peer(url)
        peer = PeerProcess(module, _child_env(own), folder / f"{name}.log").start()
        try:
            drained = drain(
                peer,
                progress,
                stored_goal,
                records,
                name,
                report,
                _timeout(records),
            )
        finally:
            peer.stop()
            progress.close()
            _delete_topics_of(own, own.worker_app_id)
        return drained, {window: peer_totals(url, window) for window in TABLES}


def _run_faust_take(settings: Settings, folder: Path, records: int, report: Report) -> Drained:
    own = settings.model_copy(update={"worker_app_id": f"{settings.worker_app_id}-faust-take"})
    progress_file = folder / "faust_take.progress"

    def progress() -> int:
        try:
            return int(progress_file.read_text() or 0)
        except FileNotFoundError:
            return 0

    env = {**_child_env(own), "EW_BENCH_PROGRESS_FILE": str(progress_file)}
    peer = PeerProcess("benchmarks.peers.faust_take", env, folder / "faust_take.log").start()
    try:
        return drain(peer, progress, records, records, "faust_take", report, _timeout(records))
    finally:
        peer.stop()


def _in_process(measured: dict[str, Any], records: int) -> Drained:
    """A ceiling measured in this process (its own timing; memory not separable)."""
    seconds = float(measured["seconds"])
    return Drained(records, seconds, seconds, records / max(seconds, 1e-9), None, True)


def run(base: Settings, readings: int, units: int, report: Report) -> dict[str, Any]:
    """Every contender on the same ``readings`` of a ``units``-unit fleet; the results."""
    run_id = uuid.uuid4().hex[:8]
    report(f"simulating {readings:,} readings from {units} units")
    records = _readings(units, readings)
    to_tce = ReadingTce()
    stored_goal = sum(1 for _, value in records if to_tce(value) is not None)
    fleet = build_fleet(benchmark_fleet(units))
    drained: dict[str, Drained] = {}
    checked: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        _bench_pipeline(base, f"sbs-{run_id}") as pipeline,
    ):
        folder = Path(tmp)
        register_path = folder / "register.yaml"
        register_path.write_text(
            yaml.safe_dump(register_for_fleet(fleet).model_dump(mode="json"), allow_unicode=True)
        )
        settings = pipeline.model_copy(
            update={"register_path": register_path, "worker_data_dir": folder / "data"}
        )
        report(f"producing {len(records):,} readings to {settings.readings_topic}")
        produce_seconds = _produce(settings, records)

        report("raw_consume: aiokafka reads the topic")
        drained["raw_consume"] = asyncio.run(raw_consume(settings, len(records)))

        report("raw_copy: the accounted rows COPYed into a hypertable")
        rows = asyncio.run(_accounted_rows(units, records))
        jumps = held_jumps(rows, records)
        with _own_database(settings, "raw_copy") as own:
            copied = asyncio.run(_copy_ceiling(own, rows))
        drained["raw_copy"] = _in_process(copied, len(records))

        drained["faust_take"] = _run_faust_take(settings, folder, len(records), report)

        drained["energywatch"], reference = _run_energywatch(settings, folder, len(records), report)
        if not reference["1d"]:
            raise RollupMismatch("EnergyWatch stored no unit rollups: nothing to compare with")

        for name, module in (
            ("quix_streams", "benchmarks.peers.quix_rollups"),
            ("plain_consumer", "benchmarks.peers.plain_consumer"),
        ):
            drained[name], totals = _run_peer(
                settings, name, module, folder, len(records), stored_goal, report
            )
            check_same_rollups(name, reference, as_energywatch_counts(totals, jumps))
            checked[name] = (
                f"equal to EnergyWatch's within {TOLERANCE_TCE} t: "
                f"{len(totals['1d']):,} unit-days, {len(totals['15m']):,} unit-quarter-hours"
                f"{_moved(jumps)}"
            )

    ours = drained["energywatch"].per_second
    contenders = {
        name: {
            "kind": KINDS[name],
            **result.as_json(),
            "energywatch_ratio": round(ours / result.per_second, 3),
            "guarantees": GUARANTEES[name],
        }
        for name, result in drained.items()
    }
    return {
        "readings": len(records),
        "readings_in_tce_rollups": stored_goal,
        "fleet": {"units": units, "meters": fleet.meter_count()},
        "produce_seconds": round(produce_seconds, 3),
        "contenders": contenders,
        "aims": {
            name: {
                "energywatch_ratio_at_least": aim,
                "energywatch_ratio": contenders[name]["energywatch_ratio"],
                "met": contenders[name]["energywatch_ratio"] >= aim,
            }
            for name, aim in AIMS.items()
        },
        "same_result": checked,
        "held_jumps": len(jumps),
        "method": (
            "one topic, pre-loaded once; each contender alone with its own consumer group and "
            "database; seconds from the first progress seen to the last (polled every 50 ms), "
            "rate over the work after that first sighting; peak RSS = the child's VmHWM; "
            "energywatch_ratio = EnergyWatch's readings/s / the contender's"
        ),
    }


ORDER: Final = (
    "energywatch",
    "quix_streams",
    "plain_consumer",
    "faust_take",
    "raw_consume",
    "raw_copy",
)


def markdown(document: dict[str, Any]) -> str:
    """The results file's document as the table ``benchmarks/SIDE_BY_SIDE.md`` keeps."""
    results = document["results"]
    machine = document["machine"]
    lines = [
        "# Side by side: EnergyWatch, its peers and the machine's ceilings",
        "",
        "The same job for every contender: simulated readings in Kafka -> per-unit 15-minute "
        "and daily (CST) tce rollups in TimescaleDB. Written by "
        "`energywatch bench side-by-side`; the latest run only (its JSON is in "
        "`benchmarks/results/`).",
        "",
        f"- run: {document['at']}, commit `{document['commit']}`",
        f"- machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}",
        f"- input: {results['readings']:,} readings ({results['readings_in_tce_rollups']:,} "
        f"in tce rollups; water is not energy) from {results['fleet']['units']} units, "
        f"{results['fleet']['meters']} meters",
        "",
        "| contender | kind | readings/s | seconds | with start-up | peak RSS MiB "
        "| EnergyWatch ÷ it |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ORDER:
        c = results["contenders"][name]
        rss = "in-process" if c["peak_rss_mib"] is None else f"{c['peak_rss_mib']:.0f}"
        rate = f"{c['per_second']:,}" + ("" if c["sustained"] else " *")
        lines.append(
            f"| {name} | {c['kind']} | {rate} | {c['seconds']:.2f} "
            f"| {c['seconds_including_startup']:.2f} | {rss} | {c['energywatch_ratio']:.2f} |"
        )
    lines += ["", "Aims (issue 8):", ""]
    for name, aim in results["aims"].items():
        verdict = "met" if aim["met"] else "**not met**"
        lines.append(
            f"- EnergyWatch ≥ {aim['energywatch_ratio_at_least']}× {name}: "
            f"{aim['energywatch_ratio']:.2f}×, {verdict}"
        )
    lines += ["", "Same result (checked every run, the benchmark fails otherwise):", ""]
    lines += [f"- {name}: {text}" for name, text in results["same_result"].items()]
    lines += ["", "What each guarantees:", ""]
    lines += [f"- {name}: {results['contenders'][name]['guarantees']}" for name in ORDER]
    lines += ["", f"Method: {results['method']}.", ""]
    if not all(c["sustained"] for c in results["contenders"].values()):
        lines += [
            "\\* more than half done at its first progress sighting: the run was too small "
            "to time it apart from its start-up, which its rate includes (a smoke run, not a "
            "measurement).",
            "",
        ]
    return "\n".join(lines)
