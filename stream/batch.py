"""What every agent's batch is made of: raw Kafka records, and dead letters for the ones a
stage cannot take (pure: no Kafka, database or HTTP here)."""

from dataclasses import dataclass
from datetime import datetime

from contracts.dead_letters import DeadLetter

STAGE = "stream.readings"


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as it arrived: where it came from and its bytes."""

    value: bytes | None
    topic: str
    partition: int
    offset: int


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
