"""One path through the real pipeline: simulator -> Kafka -> worker -> TimescaleDB -> alert ->
notifier -> a webhook receiver run by the test. Real Kafka, real TimescaleDB, no mocks."""

import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest

from alerts.static_threshold import StaticThreshold
from alerts.webhook_receiver import WebhookReceiver
from contracts.readings import ElectricityReading
from simulators.electricity import electricity_readings, simulated_fleet
from simulators.kafka_runner import produce_readings
from tests.conftest import wait_until
from tests.pipeline import alert_rows, metric_value, prometheus_value, stored_count, stored_rows

pytestmark = pytest.mark.services
START = datetime(2026, 11, 2, tzinfo=UTC)


def test_readings_are_stored_exactly_alerts_reach_the_webhook_and_a_replay_changes_nothing(
    pipeline_settings, start_service, capsys
):
    settings = pipeline_settings
    fleet = simulated_fleet(12, seed=11)
    readings = list(electricity_readings(fleet, START, 16, seed=11, overload_probability=0.05))
    expected_alerts = {
        a.alert_id
        for a in StaticThreshold(settings.threshold_kwh_per_interval).evaluate(readings, START)
    }
    assert expected_alerts, "the scenario must cross the threshold at least once"
    secret = secrets.token_hex(8)

    with WebhookReceiver(secret.encode()) as receiver:
        worker = start_service("worker", settings)
        start_service("notifier", settings, EW_WEBHOOK_URL=receiver.url, EW_WEBHOOK_SECRET=secret)
        produce_readings(settings.kafka_bootstrap, settings.readings_topic, readings)

        wait_until(lambda: stored_count(settings) >= len(readings), 90, what="all readings stored")
        assert sorted(stored_rows(settings)) == sorted(
            (r.meter_id, r.period_start, r.consumption_kwh) for r in readings
        )
        assert receiver.wait_for(len(expected_alerts), timeout=60), worker.log_tail()
        assert {a.alert_id for a in receiver.unique_alerts()} == expected_alerts
        assert receiver.rejected == 0  # every delivery carried a valid signature

        # The same readings again: consumed, but no new rows and no second alert.
        produce_readings(settings.kafka_bootstrap, settings.readings_topic, readings)
        wait_until(
            lambda: (
                metric_value(
                    settings.worker_metrics_port, "energywatch_stream_readings_duplicate_total"
                )
                >= len(readings)
            ),
            60,
            what="the replay to be consumed",
        )
        time.sleep(2)  # give a wrongly re-raised alert time to arrive
        assert stored_count(settings) == len(readings)
        assert len(alert_rows(settings)) == len(expected_alerts)
        assert len(receiver.received) == len(expected_alerts)

        # Latency of one fresh over-threshold reading, from produce to webhook delivery.
        hot = ElectricityReading(
            enterprise_code=fleet[0].enterprise_code,
            meter_id=fleet[0].meter_id,
            period_start=START + timedelta(days=10),  # after the replayed data, not in the future
            consumption_kwh=settings.threshold_kwh_per_interval * 2,
        )
        sent_at = time.monotonic()
        produce_readings(settings.kafka_bootstrap, settings.readings_topic, [hot])
        assert receiver.wait_for(len(expected_alerts) + 1, timeout=30)
        latency = receiver.received[-1].received_at_monotonic - sent_at
        with capsys.disabled():
            print(f"\nend-to-end latency, produce -> webhook: {latency * 1000:.0f} ms")
        assert worker.alive()

    # The local Prometheus found the worker through its target file and scraped it.
    stored_per_prometheus = wait_until(
        lambda: (
            prometheus_value(
                settings,
                f'energywatch_stream_readings_stored_total{{service="{settings.worker_app_id}"}}',
            )
            >= len(readings) + 1
        ),
        30,
        what="Prometheus to scrape the worker's stored-readings counter",
    )
    assert stored_per_prometheus
