"""How fast the simulators generate data, and how fast a recording replays into Kafka.

1. generation to a file: a generated fleet (``units`` key units in the five seed cities, all
   industries) for ``days`` of 15-minute readings, plain JSON lines and gzip, on one core
   (this process);
2. replay of that file into the local Kafka at max speed (records acknowledged by the broker).
"""

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from simulators.energy import EnergyModel
from simulators.fleet import FleetConfig, GeneratedGroup, build_fleet
from simulators.industries import IndustryCatalogue
from simulators.record_file import read_records, write_records
from simulators.regions import load_regions
from simulators.runner import Simulation, SimulationPlan

START = datetime(2026, 3, 1, 16, tzinfo=UTC)  # 2026-03-02 00:00 China time, a Monday


def benchmark_fleet(units: int, seed: int = 1) -> FleetConfig:
    """``units`` enterprises spread evenly over the seed cities and the industries."""
    cities = [c.code for c in load_regions().cities]
    industries = IndustryCatalogue.load().codes
    counts: dict[tuple[str, str], int] = {}
    for n in range(units):
        key = (cities[n % len(cities)], industries[n % len(industries)])
        counts[key] = counts.get(key, 0) + 1
    groups = tuple(
        GeneratedGroup(city=city, industry=industry, count=count)
        for (city, industry), count in sorted(counts.items())
    )
    return FleetConfig(name=f"benchmark-{units}", seed=seed, generate=groups)


def _pin_to_one_cpu() -> int | None:
    """Run on one core (the last one allowed), so the number is "per core" and steadier."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _generate(path: Path, plan: SimulationPlan) -> int:
    return write_records(path, Simulation(plan).records())


def _timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def run(
    units: int,
    days: float,
    kafka_settings: Any | None,
    report: Callable[[str], None],
    repeat: int = 3,
) -> dict[str, Any]:
    cpu = _pin_to_one_cpu()
    fleet = build_fleet(benchmark_fleet(units))
    results: dict[str, Any] = {
        "fleet": {"units": units, "meters": fleet.meter_count(), "days": days},
        "pinned_to_cpu": cpu,
    }

    def plan() -> SimulationPlan:
        return SimulationPlan(EnergyModel(fleet), START, START + timedelta(days=days))

    with TemporaryDirectory() as folder:
        # one core is noisy when the other runs services: the plain file is timed `repeat`
        # times and the median reported beside every run
        for name, runs in (("records.jsonl", repeat), ("records.jsonl.gz", 1)):
            path = Path(folder) / name
            timings = []
            for attempt in range(runs):
                report(f"generating {name} ({attempt + 1}/{runs})")
                count, seconds = _timed(partial(_generate, path, plan()))
                timings.append(seconds)
            median = statistics.median(timings)
            results[f"generate_to_{name.replace('.', '_')}"] = {
                "records": count,
                "seconds_each_run": [round(t, 3) for t in timings],
                "records_per_second_median": round(count / median),
                "records_per_second_best": round(count / min(timings)),
                "bytes": path.stat().st_size,
            }
        if kafka_settings is not None:
            from energywatch.kafka_topics import ensure_topics
            from simulators.kafka_sink import KafkaRecordSink
            from simulators.records import Channel

            ensure_topics(kafka_settings)
            topics = {
                Channel.READINGS: kafka_settings.readings_topic,
                Channel.PRODUCTION: kafka_settings.production_topic,
                Channel.VOC: kafka_settings.voc_topic,
            }
            report("replaying records.jsonl into Kafka at max speed")

            def replay() -> int:
                with KafkaRecordSink(kafka_settings.kafka_bootstrap, topics) as sink:
                    for record in read_records(Path(folder) / "records.jsonl"):
                        sink.send(record)
                    return sink.sent

            count, seconds = _timed(replay)
            results["replay_into_kafka"] = {
                "records": count,
                "seconds": round(seconds, 3),
                "records_per_second": round(count / seconds),
                "topic_prefix": kafka_settings.readings_topic,
            }
    return results
