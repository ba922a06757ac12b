"""The worker is SIGKILLed mid-stream and restarted: nothing is lost and nothing doubled."""

import time
from datetime import UTC, datetime

import pytest

from simulators.electricity import electricity_readings, simulated_fleet
from simulators.kafka_runner import produce_readings
from tests.conftest import wait_until
from tests.pipeline import dirty_marks, stored_count, stored_rows

pytestmark = pytest.mark.services
START = datetime(2026, 10, 1, tzinfo=UTC)


def test_a_worker_killed_three_times_mid_stream_stores_every_reading_exactly_once(
    pipeline_settings, start_service
):
    settings = pipeline_settings.model_copy(update={"worker_batch_size": 500})
    fleet = simulated_fleet(100, seed=21)
    readings = list(electricity_readings(fleet, START, 300, seed=21, overload_probability=0.01))
    produce_readings(settings.kafka_bootstrap, settings.readings_topic, readings)
    total = len(readings)

    kills = 0
    for _ in range(3):
        worker = start_service("worker", settings)
        before = stored_count(settings)
        # kill once this incarnation has made some progress, but before it is done
        wait_until(
            lambda b=before, w=worker: stored_count(settings) > b or not w.alive(),
            90,
            what="the worker to make progress",
        )
        if stored_count(settings) >= total:
            break
        time.sleep(0.3)
        worker.kill()
        kills += 1

    assert kills >= 1, "the worker must have been killed mid-stream at least once"
    start_service("worker", settings)
    wait_until(lambda: stored_count(settings) >= total, 120, what="every reading stored")
    time.sleep(1)
    rows = stored_rows(settings)
    assert len(rows) == total
    assert sorted(rows) == sorted((r.meter_id, r.period_start, r.consumption_kwh) for r in readings)

    # the alert evaluator's doorbell survives the kills: every unit is marked from its first
    # reading (nothing claims the marks here, no evaluator runs)
    first: dict[str, datetime] = {}
    for r in readings:
        first[r.enterprise_code] = min(first.get(r.enterprise_code, r.period_start), r.period_start)
    assert dirty_marks(settings) == {(code, "readings"): at for code, at in first.items()}
