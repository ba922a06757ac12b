"""Consumer lag: how many records of each partition the worker has not yet made durable.

Pure: the worker's adapter (``stream.lag_monitor``) reads the offsets from Kafka and Faust
and sets the gauge from what ``partition_lags`` returns.

For one partition, with Kafka's convention that an offset names the *next* record::

    log start        committed        acknowledged        end offset (high-water mark)
        |----------------|-------------------|-------------------|
                         ^ Kafka's view of    ^ made durable here  ^ produced
                           the group (lags by   (this process,
                           the commit interval)  after each batch)
                                             |<------ lag ------->|

The next offset to process is the furthest of what this process acknowledged and what the
group committed; a partition nobody has committed in starts at its log start (the worker
reads from the earliest offset). A partition whose end offset is not known yet has no lag to
report rather than a guess.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: (topic, partition); Faust's ``TP`` is such a tuple
TopicPartition = tuple[str, int]


def next_offset(
    acknowledged: int | None, committed: int | None, log_start: int | None
) -> int | None:
    """The next offset this consumer has to process, from what is known of a partition.

    ``acknowledged`` and ``committed`` are next-offsets (one past the last record); a
    negative committed offset is Kafka's "none"."""
    known = [o for o in (acknowledged, committed) if o is not None and o >= 0]
    if known:
        return max(known)
    return log_start if log_start is not None and log_start >= 0 else None


def partition_lags(
    assigned: Iterable[TopicPartition],
    end_offsets: Mapping[TopicPartition, int | None],
    acknowledged: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int | None],
    log_starts: Mapping[TopicPartition, int | None],
) -> dict[TopicPartition, int]:
    """Records left to process in each assigned partition whose offsets are known (never
    negative: an end offset read before a batch was acknowledged can be behind it)."""
    lags = {}
    for tp in assigned:
        end = end_offsets.get(tp)
        start = next_offset(acknowledged.get(tp), committed.get(tp), log_starts.get(tp))
        if end is None or start is None:
            continue
        lags[tp] = max(0, end - start)
    return lags


@dataclass
class AcknowledgedOffsets:
    """The next offset after the last record acknowledged, per partition (offsets only ever
    move forward: a redelivered record acknowledged again changes nothing)."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def acknowledge(self, tp: TopicPartition, offset: int) -> None:
        """Record that ``offset`` of ``tp`` is durable."""
        if offset + 1 > self.offsets.get(tp, -1):
            self.offsets[tp] = offset + 1

    def keep_only(self, assigned: Iterable[TopicPartition]) -> None:
        """Forget partitions this process no longer owns (a rebalance moved them): their
        progress is another consumer's to report."""
        keep = set(assigned)
        for tp in [tp for tp in self.offsets if tp not in keep]:
            del self.offsets[tp]
