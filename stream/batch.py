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


def dead_letter(stage: str, record: RawRecord, kind: str, reason: str, now: datetime) -> DeadLetter:
    """The dead letter for a record a stage could not take: why, and its exact bytes."""
    return DeadLetter(
        stage=stage,
        kind=kind,
        reason=reason[:2000],
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        raw_base64=DeadLetter.encode_raw(record.value if record.value is not None else b""),
        rejected_at=now,
    )


def process_batch(
    records: Sequence[RawRecord], threshold: StaticThreshold, now: datetime
) -> BatchOutcome:
    """Decode every record, dead-letter the bad ones with their reason, judge the good ones."""
    outcome = BatchOutcome()
    for record in records:
        try:
            if record.value is None:
                raise ReadingDecodeError("empty", "empty record: a reading needs a JSON value")
            outcome.readings.append(decode_reading(record.value))
        except ReadingDecodeError as exc:
            outcome.dead_letters.append(dead_letter(STAGE, record, exc.kind, exc.reason, now))
    outcome.alerts.extend(threshold.evaluate(outcome.readings, now))
    return outcome
