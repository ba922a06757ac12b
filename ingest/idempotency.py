"""Remembers the answers to recent batches by their idempotency key, so a batch re-sent after a
lost response is answered again without publishing its records twice.

Pure and bounded: at most ``capacity`` answers, each kept ``ttl``. Storage is idempotent on
natural keys anyway; this spares Kafka and the workers the duplicates.
"""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class IdempotencyCache(Generic[T]):
    clock: Callable[[], datetime]
    capacity: int = 10_000
    ttl: timedelta = timedelta(hours=24)
    _entries: OrderedDict[tuple[str, str], tuple[datetime, T]] = field(default_factory=OrderedDict)

    def get(self, owner: str, key: str) -> T | None:
        entry = self._entries.get((owner, key))
        if entry is None:
            return None
        stored_at, answer = entry
        if self.clock() - stored_at > self.ttl:
            del self._entries[(owner, key)]
            return None
        return answer

    def put(self, owner: str, key: str, answer: T) -> None:
        self._entries[(owner, key)] = (self.clock(), answer)
        self._entries.move_to_end((owner, key))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
