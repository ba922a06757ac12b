"""The soak (issue 8, part 2): a steady load on the worker and the alert evaluator for minutes,
the worker's resident memory and the consumer lag sampled every few seconds.

    calibration (without --rate): a backlog of simulated readings; the worker's sustained
      rate is what it stores per second while working it off (the evaluator judging alongside)
    soak: a 500-unit fleet's readings at the rate (a process of its own,
      ``benchmarks.background_load``), event time running on from the calibration's
    every ``sample_seconds``: the worker's and the evaluator's RSS (``/proc``), the worker
      group's lag (``kafka_offsets``), readings produced and stored
    verdict: RSS bounded after the warm-up, lag not growing over the second half (``trend``)

Without ``--rate`` the soak runs at ``headroom`` (60%) of the calibrated rate. At 100% a queue
has no slack, and its lag drifts up and down like a random walk however healthy the worker.
And the calibration has the machine to itself, while during the soak the load generator shares
it: on 2 cores, at 80% (3,215 readings/s of a calibrated 4,018) the worker stored about 3,000/s
and the lag grew by 180 records/s, steadily for ten minutes with memory flat; at 2,400/s it held
steady (``prove-soak-20261121T085346Z``, ``-090442Z`` in ``benchmarks/results``).
"""

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
import yaml
from kafka import KafkaProducer
from pydantic import SecretStr

from benchmarks.background_load import BackgroundLoad, LoadPlan
from benchmarks.simulation import benchmark_fleet
from contracts.partition_keys import unit_key
from energywatch.kafka_topics import delete_topics, ensure_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from proving_ground.kafka_offsets import OffsetProbe
from proving_ground.process_memory import rss_mib
from proving_ground.trend import LagVerdict, MemoryVerdict, SoakBounds, judge_lag, judge_memory
from simulators.credentials import register_for_fleet
from simulators.energy import EnergyModel
from simulators.fleet import Fleet, build_fleet
from simulators.records import Channel, SimRecord
from simulators.runner import Simulation, SimulationPlan
from storage.scratch_databases import recreate_database
from storage.stream_state import records_made_durable

DATABASE: Final = "prove_soak"
PREFIX: Final = "prove-soak"
INTERVAL: Final = timedelta(minutes=15)
Report = Callable[[str], None]


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 10.0
    rate: float | None = None  # readings/s; None: ``headroom`` x the calibrated rate
    units: int = 500
    sample_seconds: float = 5.0
    calibration_records: int = 100_000
    headroom: float = 0.6  # see the module docstring
    bounds: SoakBounds = field(default_factory=SoakBounds)


@dataclass(frozen=True)
class SoakSample:
    seconds: float
    worker_rss_mib: float | None
    evaluator_rss_mib: float | None
    lag_records: int | None
    produced: int
    stored: int | None


@dataclass
class SoakResult:
    config: SoakConfig
    rate: float
    calibration: dict[str, Any] | None
    achieved_rate: float
    samples: list[SoakSample]
    memory: MemoryVerdict
    lag: LagVerdict
    problems: list[str]

    @property
    def passed(self) -> bool:
        return self.memory.bounded and not self.lag.grows and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "problems": self.problems,
            "config": {
                "minutes": self.config.minutes,
                "rate_given": self.config.rate,
                "units": self.config.units,
                "sample_seconds": self.config.sample_seconds,
                "headroom": self.config.headroom,
            },
            "bounds": asdict(self.config.bounds),
            "rate": self.rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "calibration": self.calibration,
            "memory": asdict(self.memory),
            "lag": asdict(self.lag),
            "series": [asdict(s) for s in self.samples],
        }


class Soak:
    """One soak on ``base`` (a stack's settings): its own database and topics, a worker and an
    evaluator as child processes, a load process."""

    def __init__(
        self,
        base: Settings,
        config: SoakConfig,
        workdir: Path,
        report: Report,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.report = report
        url = recreate_database(base.database_url.get_secret_value(), DATABASE)
        self.settings = base.named_pipeline(PREFIX, database_url=SecretStr(url))
        self.extra_env = dict(extra_env or {})
        self.fleet: Fleet = build_fleet(benchmark_fleet(config.units))
        self.services: dict[str, _Watched] = {}

    def run(self) -> SoakResult:
        delete_topics(self.settings)
        ensure_topics(self.settings)
        self._start_services()
        try:
            seconds = self.config.minutes * 60
            rate = self.config.rate
            calibration = None
            start = self._data_start(seconds)
            if rate is None:
                calibration = self._calibrate(start)
                rate = round(calibration["sustained_per_second"] * self.config.headroom)
                start += INTERVAL * calibration["intervals"]
            samples, achieved = self._soak(rate, seconds, start)
        finally:
            for service in self.services.values():
                service.stop()
            delete_topics(self.settings)
        bounds = self.config.bounds
        memory = judge_memory(
            [(s.seconds, s.worker_rss_mib) for s in samples if s.worker_rss_mib is not None],
            bounds,
        )
        lag = judge_lag(
            [(s.seconds, float(s.lag_records)) for s in samples if s.lag_records is not None],
            bounds,
        )
        problems = []
        if achieved < 0.95 * rate:
            problems.append(
                f"the load reached only {achieved:,.0f} of {rate:,.0f} readings/s: the machine "
                "could not produce the load, so the soak says nothing about that rate"
            )
        dead = [name for name, s in self.services.items() if s.exit_code_seen]
        if dead:
            problems.append(f"{', '.join(dead)} exited during the soak")
        return SoakResult(self.config, rate, calibration, achieved, samples, memory, lag, problems)

    # -- steps ------------------------------------------------------------------------------

    def _start_services(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        register = self.workdir / "register.yaml"
        register.write_text(
            yaml.safe_dump(register_for_fleet(self.fleet).model_dump(mode="json")), "utf-8"
        )
        env = {
            **self.settings.as_env(),
            **self.extra_env,
            "EW_REGISTER_PATH": str(register),
            "EW_EVALUATOR_CLOCK": "wall",
            "EW_WORKER_METRICS_PORT": "0",
            "EW_EVALUATOR_METRICS_PORT": "0",
        }
        self.report("starting the worker and the evaluator")
        for name, command in (("worker", ["worker"]), ("evaluator", ["alerts", "evaluate"])):
            log = self.workdir / f"{name}.log"
            log.unlink(missing_ok=True)
            self.services[name] = _Watched(ServiceProcess(command, env, log).start())

    def _data_start(self, seconds: float) -> datetime:
        """Event time of the first reading, so the soak's data ends about now (its rate and
        length fixed at most by the calibration's, generously)."""
        most = (self.config.rate or 20_000) * seconds + self.config.calibration_records
        intervals = int(most / max(self.fleet.meter_count(), 1)) + 2
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        return now - INTERVAL * intervals - timedelta(minutes=now.minute % 15)

    def _calibrate(self, start: datetime) -> dict[str, Any]:
        """Send ``calibration_records`` readings at once; the worker's rate while it stores
        them, from its first stored reading to its last."""
        count = self.config.calibration_records
        self.report(f"calibrating: producing a backlog of {count:,} readings")
        producer = KafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
        )
        try:
            for record in itertools.islice(self._readings(start), count):
                producer.send(
                    self.settings.readings_topic,
                    key=unit_key(record.payload, record.key),
                    value=record.payload,
                )
            producer.flush()
        finally:
            producer.close()
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            self._check_alive()
            stored = self._stored()
            now = time.monotonic()
            if stored and first is None:
                first = (now, stored)
            self.report(f"calibrating: the worker stored {stored or 0:,} of {count:,}")
            if stored is not None and stored >= count and first is not None:
                seconds = now - first[0]
                per_second = (count - first[1]) / seconds if seconds > 0 else float(count)
                meters = self.fleet.meter_count()
                return {
                    "records": count,
                    "seconds": round(seconds, 1),
                    "sustained_per_second": round(per_second, 1),
                    "intervals": count // meters + 1,
                }
            time.sleep(0.2)
        raise TimeoutError("the worker did not store the calibration backlog in 600 s")

    def _readings(self, start: datetime) -> Iterator[SimRecord]:
        plan = SimulationPlan(EnergyModel(self.fleet), start, None, production_reports=False)
        return (r for r in Simulation(plan).records() if r.channel is Channel.READINGS)

    def _soak(self, rate: float, seconds: float, start: datetime) -> tuple[list[SoakSample], float]:
        plan = LoadPlan(
            self.settings.kafka_bootstrap,
            self.settings.readings_topic,
            self.config.units,
            rate,
            start,
        )
        self.report(f"soak: starting the load at {rate:,.0f} readings/s")
        load = BackgroundLoad(plan).start()
        samples: list[SoakSample] = []
        worker, evaluator = self.services["worker"], self.services["evaluator"]
        try:
            with OffsetProbe(
                self.settings.kafka_bootstrap,
                {self.settings.worker_app_id: [self.settings.readings_topic]},
            ) as probe:
                began = time.monotonic()
                next_at = began
                while time.monotonic() - began < seconds:
                    self._check_alive()
                    position = probe.try_position()
                    sample = SoakSample(
                        seconds=round(time.monotonic() - began, 1),
                        worker_rss_mib=_round(rss_mib(worker.process.pid)),
                        evaluator_rss_mib=_round(rss_mib(evaluator.process.pid)),
                        lag_records=position.lag if position is not None else None,
                        produced=load.counters.produced.value,
                        stored=self._stored(),
                    )
                    samples.append(sample)
                    self.report(
                        f"soak: {sample.seconds:.0f}/{seconds:.0f} s, worker "
                        f"{sample.worker_rss_mib} MiB, lag {sample.lag_records}"
                    )
                    next_at += self.config.sample_seconds
                    time.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            load.stop()
        return samples, load.achieved_rate()

    def _stored(self) -> int | None:
        try:
            with psycopg.connect(
                self.settings.database_url.get_secret_value(), autocommit=True, connect_timeout=2
            ) as conn:
                return records_made_durable(
                    conn, self.settings.readings_topic, self.settings.worker_app_id
                )
        except psycopg.Error:
            return None

    def _check_alive(self) -> None:
        for name, service in self.services.items():
            if not service.process.alive():
                service.exit_code_seen = True
                raise RuntimeError(
                    f"the {name} exited during the soak; its log ends:\n"
                    f"{service.process.log_tail(15)}"
                )


@dataclass
class _Watched:
    process: ServiceProcess
    exit_code_seen: bool = False

    def stop(self) -> None:
        self.process.stop()


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
