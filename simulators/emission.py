"""Puts records in the order devices would send them.

Generators walk event time; faults delay some records (late, out of order, duplicates). The
queue releases records in ``emit_at`` order once the generator's clock has passed them: no
record generated later can be emitted earlier, because a record is never emitted before the
end of the interval it describes.
"""

import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime

from simulators.records import SimRecord


class EmissionQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, SimRecord]] = []
        self._sequence = 0  # ties keep generation order, so output is deterministic

    def push(self, records: Iterable[SimRecord]) -> None:
        for record in records:
            heapq.heappush(self._heap, (record.emit_at, self._sequence, record))
            self._sequence += 1

    def release_until(self, watermark: datetime) -> Iterator[SimRecord]:
        """Every queued record due at or before ``watermark``, in emission order."""
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            yield heapq.heappop(heap)[2]

    def drain(self) -> Iterator[SimRecord]:
        while self._heap:
            yield heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)
