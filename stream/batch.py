"""The pure core of the readings worker: one batch of raw records in, what to do out.

No Kafka, database or HTTP here: the Faust agent hands in raw records and writes, publishes
and acknowledges what this returns.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alerts.static_threshold import StaticThreshold
from contracts.alert_events import AlertEvent
from contracts.dead_letters import DeadLetter
from contracts.readings import Reading, ReadingDecodeError, decode_reading

STAGE = "stream.readings"


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as it arrived: where it came from and its bytes."""

    value: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class BatchOutcome:
    readings: list[Reading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)


def process_batch(
    records: Sequence[RawRecord], threshold: StaticThreshold, now: datetime
) -> BatchOutcome:
    """Decode every record, dead-letter the bad ones with their reason, judge the good ones."""
    outcome = BatchOutcome()
    for record in records:
        raw = record.value if record.value is not None else b""
        try:
            if record.value is None:
                raise ReadingDecodeError("empty", "empty record: a reading needs a JSON value")
            outcome.readings.append(decode_reading(raw))
        except ReadingDecodeError as exc:
            outcome.dead_letters.append(
                DeadLetter(
                    stage=STAGE,
                    kind=exc.kind,
                    reason=exc.reason[:2000],
                    source_topic=record.topic,
                    source_partition=record.partition,
                    source_offset=record.offset,
                    raw_base64=DeadLetter.encode_raw(raw),
                    rejected_at=now,
                )
            )
    outcome.alerts.extend(threshold.evaluate(outcome.readings, now))
    return outcome
