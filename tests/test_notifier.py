"""The notifier against real Kafka and TimescaleDB, with webhook receivers run by the test."""

import secrets
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer

from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_events import AlertEvent, AlertSeverity, encode_alert
from contracts.dead_letters import decode_dead_letter
from tests.conftest import wait_until
from tests.pipeline import metric_value, read_topic

pytestmark = pytest.mark.services
CODE = "91350100M000100Y43"


def alert(n: int) -> AlertEvent:
    return AlertEvent(
        alert_id=f"{n:032x}",
        rule_id="electricity-interval-kwh",
        severity=AlertSeverity.WARNING,
        enterprise_code=CODE,
        subject=f"M{n}",
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        window_seconds=900,
        observed_value=7000,
        threshold_value=6000,
        value_unit="kWh/900s",
        message="over the limit",
        raised_at=datetime(2026, 11, 1, 0, 20, tzinfo=UTC),
    )


def send_alerts(settings, payloads: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for payload in payloads:
        producer.send(settings.alerts_topic, value=payload)
    producer.flush()
    producer.close()


def test_each_alert_is_delivered_once_even_when_the_topic_repeats_it(
    pipeline_settings, start_service
):
    settings = pipeline_settings
    secret = secrets.token_hex(8)
    with WebhookReceiver(secret.encode()) as receiver:
        start_service("notifier", settings, EW_WEBHOOK_URL=receiver.url, EW_WEBHOOK_SECRET=secret)
        send_alerts(settings, [encode_alert(alert(1)), encode_alert(alert(2))])
        assert receiver.wait_for(2, timeout=30)
        send_alerts(settings, [encode_alert(alert(1))])  # redelivered by Kafka, say
        wait_until(
            lambda: (
                metric_value(
                    settings.notifier_metrics_port,
                    "energywatch_alerts_notifications_skipped_total",
                    {"channel": "webhook"},
                )
                == 1
            ),
            30,
            what="the repeated alert to be skipped",
        )
        assert len(receiver.received) == 2


def test_an_undeliverable_or_undecodable_alert_goes_to_the_dead_letter_topic_with_the_reason(
    pipeline_settings, start_service
):
    settings = pipeline_settings
    with WebhookReceiver(b"the receiver's key") as receiver:
        notifier = start_service(
            "notifier",
            settings,
            EW_WEBHOOK_URL=receiver.url,
            EW_WEBHOOK_SECRET="a different key",  # every signature fails: HTTP 401
        )
        send_alerts(settings, [encode_alert(alert(3)), b"{not an alert"])
        letters = [
            decode_dead_letter(r.value)
            for r in read_topic(settings, settings.dead_letter_topic, 2, timeout_s=60)
        ]
    by_kind = {letter.kind: letter for letter in letters}
    assert set(by_kind) == {"delivery_failed", "wrong_schema"}
    assert "HTTP 401" in by_kind["delivery_failed"].reason
    assert by_kind["wrong_schema"].raw == b"{not an alert"
    assert receiver.rejected == 1  # a 4xx is final: no pointless retries
    assert notifier.alive()
