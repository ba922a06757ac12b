"""Cumulative counters to interval consumption, with quality flags (pure: no IO).

Many meters report only a cumulative register, read at the end of each interval; the
interval's consumption is how far the register moved since the reading before. Registers and
their deliveries misbehave (DOMAIN.md §5), so ``CounterTracker.observe`` returns, with each
consumption, the ``Flag``s that say what it saw and what it decided:

* **Drops.** A register that moves backwards either wrapped at its maximum (``ROLLOVER``: the
  previous value within ``rollover_margin`` of ``register_max`` and the new one within the same
  margin of zero; consumption = new + (max − previous), exact) or restarted (``RESET``). After a
  restart the new value is the consumption since zero, so it is the interval's consumption, but
  only when it is plausible for this meter (at most ``jump_factor`` × its typical consumption
  over the span). Otherwise, or when the meter has no history yet to judge by, the
  consumption is ``None``: a replaced meter that starts at 4,000,000 must not become a
  4,000,000 spike in a daily total. The new value becomes the baseline either way.
* **Implausible jumps** (more than ``jump_factor`` × typical) are held once: that reading gets
  ``None`` and the baseline stays where it was. The next reading decides: if the register came
  back, the jump was a misread, and the next consumption, from the old baseline, covers both
  intervals exactly; if it stayed up, the jump was real and is reported then, flagged again.
  Either way nothing is lost or counted twice. The reading's own reported consumption does
  not vouch for a jump: a collector usually derives it from the same register, so a glitched
  frame carries both (the simulator's spike fault does exactly that).
* **Load steps**: a confirmed jump whose own interval (after the held one) is still implausible
  is a new level of consumption, not a one-off: the meter's history restarts from that
  interval, so a lasting step is held once, not every other interval for as long as it lasts.
  A one-off (the register stayed up but moves normally again, e.g. an offset) teaches the
  history nothing.
* **Typical** is the median rate over the last ``typical_window`` trusted intervals (not reset,
  stuck or jump intervals, but the first interval of a load step); with fewer than
  ``min_history`` of them, or a median of zero (a meter that is mostly idle), nothing is
  judged against it: no jump, no stuck.
* **Stuck**: ``stuck_intervals`` intervals on one register value while the meter's typical
  consumption is above zero. The consumption (zero) is still reported; whatever it missed comes
  back in the interval where the register moves again (its jump bound spans the stuck run).
* **Gaps**: the consumption covers every interval since the baseline (``intervals_covered``);
  nothing is spread over the missing intervals here, that is the caller's choice. When a held
  jump is resolved, ``intervals_covered`` is above one without a ``GAP``.
* **Duplicates, corrections, order**: a repeated (period, counter) is a ``DUPLICATE`` with no
  consumption; a new counter for the latest period is a ``CORRECTION``: that reading is redone
  from the state before it, so the result replaces the earlier row (storage upserts on
  ``(meter_id, period_start)``). Anything older than the latest period is ``OUT_OF_ORDER``: no
  consumption and no change of state (a late reading's consumption is already inside the
  consumption that covered its gap); the caller keeps the raw row.
* **Reported consumption**: the counter-derived value wins, since the register is what the meter
  measures, and a cumulative register keeps totals right (a missed or stuck interval comes back
  in the next). ``MISMATCH`` flags a single-interval difference beyond tolerance. The reported
  value is used where there is no derived one (the first reading) or the derived one is a
  guess (a ``RESET`` with no gap: a reported value covers its own interval only).
* **Rounding**: derived consumption is rounded to ``decimals`` (6) places, so 10.1 − 10.0 is
  0.1 and an unmoved register gives exactly 0.0. Sums of rounded values can drift from
  last − first by up to half a unit of the last place per interval.
"""

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple

from contracts.readings import Reading

SNAPSHOT_VERSION: Final = 1


class Flag(StrEnum):
    """What the tracker saw in a reading (several can apply)."""

    RESET = "reset"
    ROLLOVER = "rollover"
    STUCK = "stuck"
    IMPLAUSIBLE_JUMP = "implausible_jump"
    GAP = "gap"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"
    CORRECTION = "correction"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class CounterConfig:
    """How to read one kind of meter's register. Quantities are in the meter's unit."""

    #: the value at which the register wraps to zero (its modulus), when known. Giving the
    #: largest displayable value (99,999,999.9) undercounts a rollover by one digit (0.1).
    register_max: float | None = None
    #: a drop is a rollover when the previous value is within this fraction of
    #: ``register_max`` below it and the new value within the same fraction above zero
    rollover_margin: float = 0.01
    #: a consumption above this many times the typical one over its span is implausible
    jump_factor: float = 10.0
    #: this many intervals on one register value, while the meter normally consumes: stuck
    stuck_intervals: int = 4
    #: how many recent trusted intervals define the typical consumption
    typical_window: int = 96
    #: how many trusted intervals are needed before anything is judged against typical
    min_history: int = 4
    #: derived and reported consumption differ when apart by more than both of these
    mismatch_relative: float = 0.02
    mismatch_absolute: float = 0.01
    #: decimal places kept in derived consumption
    decimals: int = 6

    def __post_init__(self) -> None:
        if self.register_max is not None and not 0 < self.register_max < math.inf:
            raise ValueError("register_max must be positive and finite")
        if not 0 < self.rollover_margin < 0.5:
            raise ValueError("rollover_margin is a fraction of register_max, in (0, 0.5)")
        if not self.jump_factor > 1:
            raise ValueError("jump_factor must be above 1")
        if self.stuck_intervals < 2 or self.typical_window < 1 or self.min_history < 1:
            raise ValueError("stuck_intervals >= 2, typical_window >= 1, min_history >= 1")
        if self.mismatch_relative < 0 or self.mismatch_absolute < 0 or self.decimals < 0:
            raise ValueError("mismatch tolerances and decimals must not be negative")


class CounterResult(NamedTuple):
    """One reading's interval consumption (or None) and what was seen in it."""

    consumption: float | None
    flags: frozenset[Flag]
    #: how many intervals ``consumption`` spans, ending with this reading's (0 when None)
    intervals_covered: int


class _Undo(NamedTuple):
    """A meter's state before its latest reading, to redo that reading when it is corrected."""

    period_start: datetime
    interval_seconds: int
    counter: float
    base_counter: float
    base_end: datetime
    held: bool
    stuck_run: int
    added: float | None  # the rate the reading added to ``recent``
    evicted: float | None  # the rate that addition pushed out
    cleared: tuple[float, ...] | None = None  # ``recent`` before a load step restarted it


@dataclass(slots=True)
class MeterCounterState:
    """One meter's state: its latest reading and the baseline consumption is derived from."""

    period_start: datetime  # the latest accepted reading's
    interval_seconds: int
    counter: float
    base_counter: float  # = counter, unless a jump is held
    base_end: datetime  # end of the interval that base_counter closed
    held: bool
    stuck_run: int  # intervals the register has shown base_counter
    recent: deque[float]  # rates (per second) of trusted intervals, oldest first
    undo: _Undo | None  # None: the latest reading was the meter's first
    ranked: list[float]  # ``recent``, sorted (derived: not snapshotted)

    def to_json(self) -> dict[str, Any]:
        undo = None
        if self.undo is not None:
            u = self.undo
            undo = [
                u.period_start.isoformat(),
                u.interval_seconds,
                u.counter,
                u.base_counter,
                u.base_end.isoformat(),
                u.held,
                u.stuck_run,
                u.added,
                u.evicted,
                None if u.cleared is None else list(u.cleared),
            ]
        return {
            "period_start": self.period_start.isoformat(),
            "interval_seconds": self.interval_seconds,
            "counter": self.counter,
            "base_counter": self.base_counter,
            "base_end": self.base_end.isoformat(),
            "held": self.held,
            "stuck_run": self.stuck_run,
            "recent": list(self.recent),
            "undo": undo,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], window: int) -> "MeterCounterState":
        recent = deque((float(r) for r in data["recent"]), maxlen=window)
        raw = data["undo"]
        undo = None
        if raw is not None:
            undo = _Undo(
                datetime.fromisoformat(raw[0]),
                int(raw[1]),
                float(raw[2]),
                float(raw[3]),
                datetime.fromisoformat(raw[4]),
                bool(raw[5]),
                int(raw[6]),
                None if raw[7] is None else float(raw[7]),
                None if raw[8] is None else float(raw[8]),
                # snapshots from before load steps had no tenth field
                None if len(raw) < 10 or raw[9] is None else tuple(float(r) for r in raw[9]),
            )
        return cls(
            period_start=datetime.fromisoformat(data["period_start"]),
            interval_seconds=int(data["interval_seconds"]),
            counter=float(data["counter"]),
            base_counter=float(data["base_counter"]),
            base_end=datetime.fromisoformat(data["base_end"]),
            held=bool(data["held"]),
            stuck_run=int(data["stuck_run"]),
            recent=recent,
            undo=undo,
            ranked=sorted(recent),
        )


_NO_FLAGS: Final[frozenset[Flag]] = frozenset()
_OUT_OF_ORDER: Final = CounterResult(None, frozenset({Flag.OUT_OF_ORDER}), 0)
_DUPLICATE: Final = CounterResult(None, frozenset({Flag.DUPLICATE}), 0)


class CounterTracker:
    """Turns each meter's cumulative counter readings into interval consumption."""

    def __init__(self, config: CounterConfig) -> None:
        self.config = config
        self._meters: dict[str, MeterCounterState] = {}
        self._decimals = config.decimals
        self._wrap = config.register_max
        margin = (config.register_max or 0.0) * config.rollover_margin
        self._wrap_high = (config.register_max or 0.0) - margin
        self._wrap_low = margin

    def meter_state(self, meter_id: str) -> MeterCounterState | None:
        """The meter's state, to read (not to change); None for a meter never seen."""
        return self._meters.get(meter_id)

    def observe(
        self,
        meter_id: str,
        period_start: datetime,
        counter: float,
        consumption_reported: float | None = None,
        interval_seconds: int = 900,
    ) -> CounterResult:
        """The consumption of the interval starting at ``period_start`` whose register read
        ``counter`` at its end (see the module docstring for every case)."""
        if period_start.tzinfo is None:
            raise ValueError("period_start must be timezone-aware")
        if not 0.0 <= counter < math.inf:
            raise ValueError(f"a counter must be finite and not negative, not {counter!r}")
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        reported = consumption_reported
        if reported is not None and not 0.0 <= reported < math.inf:
            raise ValueError(f"a consumption must be finite and not negative, not {reported!r}")
        state = self._meters.get(meter_id)
        if state is None:
            return self._first(meter_id, period_start, interval_seconds, counter, reported)
        if period_start < state.period_start:
            return _OUT_OF_ORDER
        if period_start == state.period_start:
            if counter == state.counter:
                return _DUPLICATE
            return self._correct(meter_id, state, period_start, interval_seconds, counter, reported)
        return self._advance(state, period_start, interval_seconds, counter, reported)

    def observe_reading(self, reading: Reading) -> CounterResult | None:
        """``observe`` for a contract reading; None when it carries no counter."""
        counter = reading.physical_counter
        if counter is None:
            return None
        return self.observe(
            reading.meter_id,
            reading.period_start,
            counter,
            reading.physical_quantity,
            reading.interval_seconds,
        )

    def snapshot(self) -> dict[str, Any]:
        """Every meter's state as plain JSON-serialisable data."""
        meters = {meter_id: state.to_json() for meter_id, state in self._meters.items()}
        return {"version": SNAPSHOT_VERSION, "meters": meters}

    @classmethod
    def restore(cls, config: CounterConfig, snapshot: dict[str, Any]) -> "CounterTracker":
        """A tracker that resumes exactly where the one that took ``snapshot`` stopped."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown counter snapshot version {snapshot.get('version')!r}")
        tracker = cls(config)
        for meter_id, data in snapshot["meters"].items():
            tracker._meters[meter_id] = MeterCounterState.from_json(data, config.typical_window)
        return tracker

    def export_meters(self, meter_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """These meters' states (the ones seen) as JSON-ready data, for storing per meter."""
        meters = self._meters
        return {m: meters[m].to_json() for m in meter_ids if m in meters}

    def import_meters(self, states: dict[str, dict[str, Any]]) -> None:
        """Take these meters' states (from ``export_meters``), replacing any held."""
        window = self.config.typical_window
        for meter_id, data in states.items():
            self._meters[meter_id] = MeterCounterState.from_json(data, window)

    def forget(self, meter_ids: Iterable[str] | None = None) -> None:
        """Drop these meters' states (all when None): another worker may have moved them on."""
        if meter_ids is None:
            self._meters.clear()
        else:
            for meter_id in meter_ids:
                self._meters.pop(meter_id, None)

    def _first(
        self,
        meter_id: str,
        period_start: datetime,
        interval_seconds: int,
        counter: float,
        reported: float | None,
    ) -> CounterResult:
        end = period_start + timedelta(seconds=interval_seconds)
        self._meters[meter_id] = MeterCounterState(
            period_start=period_start,
            interval_seconds=interval_seconds,
            counter=counter,
            base_counter=counter,
            base_end=end,
            held=False,
            stuck_run=1,
            recent=deque(maxlen=self.config.typical_window),
            undo=None,
            ranked=[],
        )
        return CounterResult(reported, _NO_FLAGS, 0 if reported is None else 1)

    def _correct(
        self,
        meter_id: str,
        state: MeterCounterState,
        period_start: datetime,
        interval_seconds: int,
        counter: float,
        reported: float | None,
    ) -> CounterResult:
        """Redo the latest reading with its corrected counter, from the state before it."""
        undo = state.undo
        if undo is None:
            del self._meters[meter_id]
            result = self._first(meter_id, period_start, interval_seconds, counter, reported)
        else:
            _rewind(state, undo)
            result = self._advance(state, period_start, interval_seconds, counter, reported)
        return result._replace(flags=result.flags | {Flag.CORRECTION})

    def _typical(self, state: MeterCounterState) -> float | None:
        """The median rate (per second) of recent trusted intervals; None if too few."""
        ranked = state.ranked
        n = len(ranked)
        if n < self.config.min_history:
            return None
        return (ranked[(n - 1) // 2] + ranked[n // 2]) / 2

    def _advance(
        self,
        state: MeterCounterState,
        period_start: datetime,
        interval_seconds: int,
        counter: float,
        reported: float | None,
    ) -> CounterResult:
        """A reading for a period after the latest one."""
        config = self.config
        end = period_start + timedelta(seconds=interval_seconds)
        last_end = state.period_start + timedelta(seconds=state.interval_seconds)
        gap = round((end - last_end).total_seconds() / interval_seconds) > 1
        covered = max(1, round((end - state.base_end).total_seconds() / interval_seconds))
        span_seconds = covered * interval_seconds
        base = state.base_counter
        flags: list[Flag] = [Flag.GAP] if gap else []
        typical = self._typical(state)
        bound = None  # nothing to judge by: too little history, or a mostly idle meter (0)
        if typical:  # a register moving again after a stuck run may carry the whole run
            bound = config.jump_factor * typical * (span_seconds + _stuck_seconds(state))
        undo = (
            state.period_start,
            state.interval_seconds,
            state.counter,
            base,
            state.base_end,
            state.held,
            state.stuck_run,
        )
        previous = state.counter
        state.period_start = period_start
        state.interval_seconds = interval_seconds
        state.counter = counter

        delta = round(counter - base, self._decimals)
        consumption: float | None
        if delta >= 0:
            derived = delta
        elif self._wrap is not None and base >= self._wrap_high and counter <= self._wrap_low:
            flags.append(Flag.ROLLOVER)
            derived = round(counter + (self._wrap - base), self._decimals)
        else:
            # the register restarted from zero: it reads what was used since then
            flags.append(Flag.RESET)
            if reported is not None and covered == 1:
                consumption = reported
            elif counter == 0.0 or (bound is not None and counter <= bound):
                consumption = counter
            else:
                consumption = None
                if bound is not None:
                    flags.append(Flag.IMPLAUSIBLE_JUMP)
            state.base_counter = counter
            state.base_end = end
            state.held = False
            state.stuck_run = 1
            state.undo = _Undo(*undo, None, None)
            return _result(consumption, flags, covered)

        implausible = bound is not None and derived > bound
        step = None  # the rate of a new level of consumption, when this is a load step
        if implausible:
            flags.append(Flag.IMPLAUSIBLE_JUMP)
            if not state.held:  # hold it: the next reading says whether it was a misread
                state.held = True
                state.undo = _Undo(*undo, None, None)
                return _result(None, flags, 0)
            own = counter - previous  # this reading's own interval (the held one's is before)
            if typical and own > config.jump_factor * typical * interval_seconds:
                step = own / interval_seconds
        consumption = derived
        if reported is not None and covered == 1:
            tolerance = max(
                config.mismatch_absolute, config.mismatch_relative * max(derived, reported)
            )
            if abs(derived - reported) > tolerance:
                flags.append(Flag.MISMATCH)
        if delta == 0.0:
            state.stuck_run += covered
            if typical and state.stuck_run >= config.stuck_intervals:
                flags.append(Flag.STUCK)
        else:
            state.stuck_run = 1
        state.base_counter = counter
        state.base_end = end
        state.held = False
        added = evicted = None
        cleared = None
        recent = state.recent
        if step is not None:  # a new level: judge what follows by it, not by the old one
            cleared = tuple(recent)
            recent.clear()
            state.ranked.clear()
            added = step
            recent.append(added)
            state.ranked.append(added)
        elif not implausible and Flag.STUCK not in flags:
            added = derived / span_seconds
            if len(recent) == recent.maxlen:
                evicted = recent[0]
                del state.ranked[bisect_left(state.ranked, evicted)]
            recent.append(added)
            insort(state.ranked, added)
        state.undo = _Undo(*undo, added, evicted, cleared)
        return _result(consumption, flags, covered)


def _result(consumption: float | None, flags: list[Flag], covered: int) -> CounterResult:
    return CounterResult(
        consumption,
        frozenset(flags) if flags else _NO_FLAGS,
        0 if consumption is None else covered,
    )


def _stuck_seconds(state: MeterCounterState) -> int:
    """Roughly how long the register had shown its baseline before this reading."""
    return (state.stuck_run - 1) * state.interval_seconds


def _rewind(state: MeterCounterState, undo: _Undo) -> None:
    """Put the meter back as it was before its latest reading."""
    state.period_start = undo.period_start
    state.interval_seconds = undo.interval_seconds
    state.counter = undo.counter
    state.base_counter = undo.base_counter
    state.base_end = undo.base_end
    state.held = undo.held
    state.stuck_run = undo.stuck_run
    if undo.cleared is not None:
        state.recent.clear()
        state.recent.extend(undo.cleared)
        state.ranked[:] = sorted(undo.cleared)
    elif undo.added is not None:
        state.recent.pop()
        del state.ranked[bisect_left(state.ranked, undo.added)]
        if undo.evicted is not None:
            state.recent.appendleft(undo.evicted)
            insort(state.ranked, undo.evicted)
