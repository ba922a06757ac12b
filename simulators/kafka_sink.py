"""Sends simulator records to Kafka: one topic per channel, keyed by unit
(``contracts.partition_keys``).

The payload goes unchanged, so event time travels inside it; the record's original emit time
travels in the ``ew-emit-at`` header. The broker's own timestamp stays "now", so replaying an
old file does not hand the broker segments that time-based retention would delete at once.
"""

from collections.abc import Mapping
from types import TracebackType

from kafka import KafkaProducer

from contracts.partition_keys import unit_key
from simulators.records import Channel, SimRecord

EMIT_AT_HEADER = "ew-emit-at"


class KafkaRecordSink:
    def __init__(self, bootstrap: str, topics: Mapping[Channel, str]) -> None:
        self._topics = dict(topics)
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_in_flight_requests_per_connection=1,  # retries never reorder a meter's records
            client_id="energywatch-simulator",
        )
        self.sent = 0

    def send(self, record: SimRecord) -> None:
        topic = self._topics.get(record.channel)
        if topic is None:
            raise ValueError(f"no topic configured for channel {record.channel}")
        self._producer.send(
            topic,
            key=unit_key(record.payload, record.key),
            value=record.payload,
            headers=[(EMIT_AT_HEADER, record.emit_at.isoformat().encode())],
        )
        self.sent += 1

    def flush(self) -> None:
        """Block until the broker has acknowledged everything sent."""
        self._producer.flush()

    def __enter__(self) -> "KafkaRecordSink":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                self.flush()
        finally:
            self._producer.close()
