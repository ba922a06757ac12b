"""When to send each record: as fast as possible, or at ``N``× the pace they were emitted.

Pure arithmetic plus an injectable clock and sleep, so tests run it without waiting.
"""

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from simulators.records import SimRecord

_SPEED = re.compile(r"^(\d+(?:\.\d+)?)x$")


@dataclass(frozen=True)
class Speed:
    """``factor`` simulated seconds per wall-clock second; ``None`` means as fast as possible."""

    factor: float | None

    @classmethod
    def parse(cls, text: str) -> "Speed":
        """``max``, ``realtime`` (= ``1x``) or ``<number>x`` such as ``60x``."""
        value = text.strip().lower()
        if value == "max":
            return cls(None)
        if value == "realtime":
            return cls(1.0)
        match = _SPEED.match(value)
        if match is None or float(match[1]) <= 0:
            raise ValueError(f"speed {text!r}: use max, realtime, or a factor such as 60x")
        return cls(float(match[1]))

    def __str__(self) -> str:
        return "max" if self.factor is None else f"{self.factor:g}x"


def paced(
    records: Iterable[SimRecord],
    speed: Speed,
    max_rate: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[SimRecord]:
    """Yield records no sooner than their emit time allows at ``speed``, and no faster than
    ``max_rate`` records per second (when given)."""
    started = clock()
    first: datetime | None = None
    for sent, record in enumerate(records):
        if first is None:
            first = record.emit_at
        due = 0.0
        if speed.factor is not None:
            due = (record.emit_at - first).total_seconds() / speed.factor
        if max_rate is not None:
            due = max(due, sent / max_rate)
        wait = started + due - clock()
        if wait > 0:
            sleep(wait)
        yield record
