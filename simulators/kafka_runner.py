"""Sends simulated readings to the readings topic, keyed by unit (``contracts.partition_keys``)
so a unit's readings, and so each meter's, stay in order on one partition."""

from collections.abc import Callable, Iterable

from kafka import KafkaProducer

from contracts.readings import Reading, encode_reading


def produce_readings(
    bootstrap: str,
    topic: str,
    readings: Iterable[Reading],
    on_sent: Callable[[int], None] = lambda n: None,
) -> int:
    """Produce every reading and wait until the broker has acknowledged them all."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        compression_type=None,
        client_id="energywatch-simulator",
    )
    sent = 0
    try:
        for reading in readings:
            producer.send(
                topic, key=reading.enterprise_code.encode(), value=encode_reading(reading)
            )
            sent += 1
            if sent % 1000 == 0:
                on_sent(sent)
        producer.flush()
        on_sent(sent)
    finally:
        producer.close()
    return sent
