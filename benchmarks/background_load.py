"""Steady background load for the alert-latency benchmark: a simulated fleet's meter readings
produced to Kafka at a fixed rate, in a process of its own (so its work never delays the
benchmark's own clocks: the probes' producer and the webhook receiver).

The readings come from the simulators' benchmark fleet (as ``energywatch bench stream``),
15-minute intervals from ``start`` on, in emission order; a 500-unit fleet has some 2,400
meters, so 10,000 readings/s walk through event time far faster than the wall clock. The
producer sends what is due every few milliseconds; when it cannot keep up it does not burst
to catch up by more than ``MAX_BACKLOG_SECONDS``, so the rate achieved says what this
machine managed.
"""

import itertools
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Final

from kafka import KafkaProducer

from benchmarks.simulation import benchmark_fleet
from contracts.partition_keys import unit_key
from simulators.energy import EnergyModel
from simulators.fleet import build_fleet
from simulators.records import Channel, SimRecord
from simulators.runner import Simulation, SimulationPlan

MAX_BACKLOG_SECONDS: Final = 0.2
TICK_SECONDS: Final = 0.005


@dataclass(frozen=True)
class LoadPlan:
    bootstrap: str
    topic: str
    units: int
    rate: float  # readings per second
    start: datetime  # event time of the first interval


@dataclass(frozen=True)
class LoadCounters:
    produced: "Synchronized[int]"
    failed: "Synchronized[int]"
    dropped_backlog: "Synchronized[int]"  # readings the schedule gave up on (fell behind)
    started_at: "Synchronized[float]"  # wall clock when the first reading was sent
    stopped_at: "Synchronized[float]"


def produce(plan: LoadPlan, counters: LoadCounters, ready: Event, stop: Event) -> None:
    """The child process: send readings at ``plan.rate`` until ``stop`` is set."""
    fleet = build_fleet(benchmark_fleet(plan.units))
    sim = SimulationPlan(EnergyModel(fleet), plan.start, None, production_reports=False)
    readings: Iterator[SimRecord] = (
        r for r in Simulation(sim).records() if r.channel is Channel.READINGS
    )
    producer = KafkaProducer(
        bootstrap_servers=plan.bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
    )

    def failed(_exc: Exception) -> None:
        with counters.failed.get_lock():
            counters.failed.value += 1

    first = [next(readings) for _ in range(100)]  # the generator's first steps are slow
    readings = itertools.chain(first, readings)
    ready.set()
    sent, dropped = 0, 0
    started = time.perf_counter()
    counters.started_at.value = time.time()
    while not stop.is_set():
        due = int((time.perf_counter() - started) * plan.rate) - dropped
        if due - sent > plan.rate * MAX_BACKLOG_SECONDS:
            dropped += due - sent
            due = sent
        while sent < due:
            record = next(readings)
            key = unit_key(record.payload, record.key)
            producer.send(plan.topic, key=key, value=record.payload).add_errback(failed)
            sent += 1
        counters.produced.value = sent
        counters.dropped_backlog.value = dropped
        time.sleep(TICK_SECONDS)
    counters.stopped_at.value = time.time()
    producer.flush()
    producer.close()


class BackgroundLoad:
    """Runs ``produce`` in a spawned process; ``counters`` can be read while it runs."""

    def __init__(self, plan: LoadPlan) -> None:
        context = multiprocessing.get_context("spawn")
        self.plan = plan
        self.counters = LoadCounters(
            produced=context.Value("q", 0),
            failed=context.Value("q", 0),
            dropped_backlog=context.Value("q", 0),
            started_at=context.Value("d", 0.0),
            stopped_at=context.Value("d", 0.0),
        )
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=produce,
            args=(plan, self.counters, self._ready, self._stop),
            name="bench-background-load",
            daemon=True,
        )

    def start(self, timeout: float = 60.0) -> "BackgroundLoad":
        self._process.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("the background load process did not start")
        return self

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def achieved_rate(self) -> float:
        c = self.counters
        end = c.stopped_at.value or time.time()
        elapsed = end - c.started_at.value if c.started_at.value else 0.0
        return c.produced.value / elapsed if elapsed > 0 else 0.0
