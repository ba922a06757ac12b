"""Small helpers the pipeline tests share: produce, read back, scrape."""

import urllib.request
from datetime import datetime

import psycopg
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from energywatch.settings import Settings


def produce_raw(settings: Settings, payloads: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for key, value in payloads:
        producer.send(settings.readings_topic, key=key, value=value)
    producer.flush()
    producer.close()


def stored_rows(settings: Settings) -> list[tuple[str, object, float]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        try:
            return conn.execute(
                "SELECT meter_id, period_start, physical_quantity FROM meter_readings"
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def stored_count(settings: Settings) -> int:
    return len(stored_rows(settings))


def dirty_marks(settings: Settings) -> dict[tuple[str, str], datetime]:
    """The units the stream marked for the alert evaluator: (code, source) -> since."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        try:
            rows = conn.execute("SELECT enterprise_code, source, since FROM alert_dirty")
            return {(code, source): since for code, source, since in rows.fetchall()}
        except psycopg.errors.UndefinedTable:
            return {}


def alert_rows(settings: Settings) -> list[tuple[str, object]]:
    """Every alert event in the history, with when it was published (None: not yet)."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        try:
            return conn.execute("SELECT event_id, published_at FROM alert_history").fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def read_topic(
    settings: Settings, topic: str, expected: int, timeout_s: float = 30
) -> list[ConsumerRecord]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    records = []
    for record in consumer:
        records.append(record)
        if len(records) >= expected:
            break
    consumer.close()
    return records


def metric_value(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's value from a running service's /metrics endpoint (0 when absent)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and (labels is None or sample.labels == labels):
                return float(sample.value)
    return 0.0


def prometheus_value(settings: Settings, query: str) -> float:
    """The first value of an instant query against the local Prometheus (0 when empty)."""
    import json
    import urllib.parse

    url = f"{settings.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    results = body["data"]["result"]
    return float(results[0]["value"][1]) if results else 0.0
