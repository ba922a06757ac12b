"""Faults on demand: misbehaving meters and devices, by schedule or by probability.

Two layers, applied in this order by the simulator runner:

* value faults bend a meter's sample before it is encoded: ``stuck`` (the last good value
  repeats, a counter freezes), ``spike`` (one interval ×factor), ``counter_reset`` (the counter
  restarts from zero), ``counter_rollover`` (the register wraps at ``modulus``), and
  ``clock_drift`` (the device's timestamps slide off the period start);
* delivery faults bend a record on its way out: ``gap`` (never sent), ``duplicate`` (sent
  twice), ``late`` (sent ``delay_seconds`` late), ``out_of_order`` (random extra delay, so
  later intervals overtake earlier ones) and ``malformed`` (the bytes are corrupted).

Every fault that fires is logged as a ``FaultEvent``, so tests and scenarios can check that each
shows up exactly where it was scheduled. Random choices come from a ``random.Random`` seeded
by (seed, fault index): the same seed gives the same faults.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.identifiers import UtcDatetime
from simulators.records import MeterSample, SimRecord


class FaultType(StrEnum):
    GAP = "gap"
    STUCK = "stuck"
    SPIKE = "spike"
    COUNTER_RESET = "counter_reset"
    COUNTER_ROLLOVER = "counter_rollover"
    DUPLICATE = "duplicate"
    LATE = "late"
    OUT_OF_ORDER = "out_of_order"
    CLOCK_DRIFT = "clock_drift"
    MALFORMED = "malformed"


VALUE_FAULTS = frozenset(
    {
        FaultType.STUCK,
        FaultType.SPIKE,
        FaultType.COUNTER_RESET,
        FaultType.COUNTER_ROLLOVER,
        FaultType.CLOCK_DRIFT,
    }
)
#: Faults that happen once, at ``start``, and change everything after it.
POINT_FAULTS = frozenset({FaultType.COUNTER_RESET, FaultType.COUNTER_ROLLOVER})


class FaultSpec(BaseModel):
    """One fault for one meter or device (``target``), scheduled, random, or both.

    ``start``/``end`` bound the affected intervals (``end`` exclusive; without ``end`` the
    fault lasts to the end of the run). With ``probability`` each interval in the window is
    affected with that chance; without it, every interval in the window is.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: FaultType
    target: str = Field(min_length=1, description="a meter id or device id")
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    probability: float | None = Field(default=None, gt=0, le=1)
    factor: float = Field(default=8.0, gt=1, description="spike: how many times the value")
    delay_seconds: float = Field(default=3600.0, gt=0, description="late, duplicate")
    max_jitter_seconds: float = Field(default=3600.0, gt=0, description="out_of_order")
    drift_seconds_per_day: float = Field(default=20.0, description="clock_drift, signed")
    modulus: float = Field(default=1e8, gt=0, description="counter_rollover: register size")

    @model_validator(mode="after")
    def _schedule_is_coherent(self) -> Self:
        if self.start is None and self.probability is None:
            raise ValueError(
                f"{self.type} fault on {self.target}: give a start, a probability, or both"
            )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"{self.type} fault on {self.target}: end must be after start")
        if self.type in POINT_FAULTS and (self.start is None or self.probability is not None):
            raise ValueError(f"{self.type} happens once: give a start and no probability")
        return self

    def window_contains(self, at: datetime) -> bool:
        if self.start is not None and at < self.start:
            return False
        return self.end is None or at < self.end


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault that fired: which, on what, for which interval."""

    type: FaultType
    target: str
    period_start: datetime


#: Looks up a meter's true counter at the end of the interval before ``at`` (for rollovers).
CounterLookup = Callable[[str, datetime], float]


@dataclass
class _MeterState:
    last_good: MeterSample | None = None
    counter_offset: float = 0.0
    modulus: float | None = None


@dataclass
class FaultInjector:
    specs: Sequence[FaultSpec]
    seed: int
    counter_lookup: CounterLookup | None = None
    events: list[FaultEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rngs = [random.Random(f"{self.seed}:fault:{i}") for i in range(len(self.specs))]
        self._by_target: dict[str, list[int]] = {}
        for index, spec in enumerate(self.specs):
            self._by_target.setdefault(spec.target, []).append(index)
        self._states: dict[str, _MeterState] = {}

    def targets(self) -> frozenset[str]:
        return frozenset(self._by_target)

    def _fires(self, index: int, at: datetime) -> bool:
        spec = self.specs[index]
        if not spec.window_contains(at):
            return False
        if spec.type in POINT_FAULTS:
            return at >= spec.start  # type: ignore[operator]  # validated: start is set
        return spec.probability is None or self._rngs[index].random() < spec.probability

    def _log(self, spec: FaultSpec, at: datetime) -> None:
        self.events.append(FaultEvent(spec.type, spec.target, at))

    def apply_value_faults(self, sample: MeterSample) -> MeterSample:
        """The sample as the misbehaving meter reports it."""
        indices = self._by_target.get(sample.meter_id)
        if not indices:
            return sample
        state = self._states.setdefault(sample.meter_id, _MeterState())
        reported = sample
        stuck = False
        for index in indices:
            spec = self.specs[index]
            if spec.type is FaultType.COUNTER_ROLLOVER:
                if state.modulus is None:  # from the first sample on: the register is near full
                    self._arm_rollover(spec, sample, state)
                continue
            if spec.type not in VALUE_FAULTS or not self._fires(index, sample.period_start):
                continue
            if spec.type is FaultType.STUCK and state.last_good is not None:
                reported = reported.with_values(
                    state.last_good.consumption, state.last_good.counter
                )
                stuck = True
                self._log(spec, sample.period_start)
            elif spec.type is FaultType.SPIKE and reported.consumption is not None:
                extra = reported.consumption * (spec.factor - 1)
                counter = None if reported.counter is None else reported.counter + extra
                reported = reported.with_values(reported.consumption * spec.factor, counter)
                self._log(spec, sample.period_start)
            elif spec.type is FaultType.COUNTER_RESET and sample.period_start == spec.start:
                if sample.counter is not None:
                    # the register restarts at zero: it reads just this interval's consumption
                    state.counter_offset = -(sample.counter - (sample.consumption or 0.0))
                    self._log(spec, sample.period_start)
            elif spec.type is FaultType.CLOCK_DRIFT:
                days = (sample.period_start - (spec.start or sample.period_start)).total_seconds()
                shift = timedelta(seconds=spec.drift_seconds_per_day * days / 86_400)
                reported = reported._replace(period_start=reported.period_start + shift)
                self._log(spec, sample.period_start)
        if reported.counter is not None and (state.counter_offset or state.modulus):
            counter = reported.counter + state.counter_offset
            if state.modulus is not None:
                counter %= state.modulus
            reported = reported.with_values(reported.consumption, counter)
        if not stuck:
            state.last_good = sample
        return reported

    def _arm_rollover(self, spec: FaultSpec, sample: MeterSample, state: _MeterState) -> None:
        """Shift the counter so that it wraps exactly in the interval at ``spec.start``.

        With C the true counter at the end of the interval before ``start``, the register
        reads ``modulus - 1 - (C - counter)``: one unit below its maximum just before the
        start, then wrapping to ``counter - C - 1``.
        """
        if sample.counter is None or spec.start is None:
            return
        if self.counter_lookup is None:
            raise ValueError("a counter_rollover fault needs a counter lookup from the generator")
        before = self.counter_lookup(sample.meter_id, spec.start)
        state.modulus = spec.modulus
        state.counter_offset = spec.modulus - 1 - before
        self.events.append(FaultEvent(spec.type, spec.target, spec.start))

    def apply_delivery_faults(self, record: SimRecord, period_start: datetime) -> list[SimRecord]:
        """The records that actually leave the device for this one (none, one, or two)."""
        indices = self._by_target.get(record.key)
        if not indices:
            return [record]
        out = [record]
        for index in indices:
            spec = self.specs[index]
            if spec.type in VALUE_FAULTS or not self._fires(index, period_start):
                continue
            self._log(spec, period_start)
            if spec.type is FaultType.GAP:
                return []
            if spec.type is FaultType.DUPLICATE:
                later = record.emit_at + timedelta(seconds=spec.delay_seconds)
                out.append(record._replace(emit_at=later))
            elif spec.type is FaultType.LATE:
                out[0] = out[0]._replace(
                    emit_at=out[0].emit_at + timedelta(seconds=spec.delay_seconds)
                )
            elif spec.type is FaultType.OUT_OF_ORDER:
                jitter = self._rngs[index].uniform(0, spec.max_jitter_seconds)
                out[0] = out[0]._replace(emit_at=out[0].emit_at + timedelta(seconds=jitter))
            elif spec.type is FaultType.MALFORMED:
                out = [
                    r._replace(payload=_corrupt(r.payload, self._rngs[index]), malformed=True)
                    for r in out
                ]
        return out


def _corrupt(payload: bytes, rng: random.Random) -> bytes:
    """Damage the bytes the way field devices do: cut short, a bad byte, or garbage."""
    how = rng.randrange(3)
    if how == 0 and len(payload) > 2:
        return payload[: rng.randrange(1, len(payload) - 1)]
    if how == 1 and payload:
        position = rng.randrange(len(payload))
        return payload[:position] + b"\xff" + payload[position + 1 :]
    return b"\x00GARBAGE" + bytes(rng.randrange(256) for _ in range(8))
