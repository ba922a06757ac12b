"""A worker can run some of the streams: VOC samples consumed by a process of their own never
wait behind a readings backlog, and each stream is still stored exactly once."""

import uuid
from datetime import timedelta

import psycopg
import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaProducer

from contracts.readings import ElectricityReading, encode_reading
from contracts.voc import encode_voc_sample
from energywatch.kafka_topics import ensure_topics
from energywatch.settings import Settings
from stream.app import STREAMS, app_id, faust_group, worker_groups
from stream.readings_consumer import lane_partitions
from tests.conftest import free_port, wait_until
from tests.pipeline import stored_count
from tests.test_voc_stream import DAY, hour_of_minutes, hourly


def test_a_worker_with_every_stream_keeps_the_configured_name():
    settings = Settings(worker_app_id="ew-worker")
    assert app_id(settings) == "ew-worker"
    assert app_id(settings, ("production", "voc", "readings")) == "ew-worker"


def test_a_worker_with_some_streams_has_a_name_of_its_own_in_stream_order():
    settings = Settings(worker_app_id="ew-worker")
    assert app_id(settings, ("readings",)) == "ew-worker-readings"
    assert app_id(settings, ("production", "voc")) == "ew-worker-voc-production"
    assert len({app_id(settings, (s,)) for s in STREAMS}) == len(STREAMS)


def test_the_faust_agents_share_one_group_whether_the_worker_is_split_or_not():
    """Readings are consumed in the group the configured id names (their progress in the
    database is keyed by it too); the Faust agents (VOC, production) in a group of their own,
    the same for a worker with every stream and a ``--stream voc --stream production`` one,
    so the two kinds of deployment share those partitions rather than each reading them all."""
    settings = Settings(worker_app_id="ew-worker")
    assert faust_group(settings) == "ew-worker-voc-production"
    assert faust_group(settings, ("voc", "production")) == "ew-worker-voc-production"
    assert faust_group(settings, ("readings",)) == "ew-worker-readings"
    groups = worker_groups(settings)
    assert groups == {
        "ew-worker": [settings.readings_topic],
        "ew-worker-voc-production": [settings.voc_topic, settings.production_topic],
    }


@pytest.mark.parametrize("streams", [(), ("meters",), ("voc", "alerts")])
def test_unknown_or_no_streams_are_refused_with_the_known_ones_named(streams):
    with pytest.raises(ValueError, match="readings, voc, production"):
        app_id(Settings(), streams)


@pytest.mark.services
def test_split_workers_store_each_stream_once_and_voc_does_not_wait_for_readings(
    pipeline_settings, start_service
):
    settings = pipeline_settings.model_copy(
        update={"voc_topic": f"ew-test-{uuid.uuid4().hex[:10]}.voc"}
    )
    ensure_topics(settings)
    readings = [
        ElectricityReading(
            enterprise_code="91350100M000100Y43",
            meter_id=f"M{n % 7}",
            period_start=DAY + timedelta(minutes=15 * (n // 7)),
            consumption_kwh=10.0 + n,
        )
        for n in range(70)
    ]
    samples = hour_of_minutes(DAY)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for r in readings:
        producer.send(
            settings.readings_topic, key=r.enterprise_code.encode(), value=encode_reading(r)
        )
    for s in samples:
        producer.send(
            settings.voc_topic, key=s.enterprise_code.encode(), value=encode_voc_sample(s)
        )
    producer.flush()
    producer.close()

    voc = start_service(
        "worker --stream voc --stream production",
        settings,
        EW_WORKER_METRICS_PORT=str(free_port()),
    )

    def voc_hour_stored() -> bool:
        try:
            return bool(hourly(settings).get(DAY, (None,) * 5)[4] == 60)
        except psycopg.errors.UndefinedTable:
            return False  # the worker has not migrated its database yet

    wait_until(
        voc_hour_stored,
        30,
        what="the VOC hour stored by the VOC-only worker",
    )
    # the VOC-only worker never touches the readings topic
    assert stored_count(settings) == 0, voc.log_tail()

    start_service("worker --stream readings", settings, EW_WORKER_METRICS_PORT=str(free_port()))
    wait_until(lambda: stored_count(settings) == 70, 30, what="every reading stored")
    assert hourly(settings)[DAY][4] == 60  # and the VOC hour is as it was


def test_a_named_pipeline_has_every_topic_and_group_of_its_own():
    base = Settings()
    named = base.named_pipeline("ew-x", worker_batch_seconds=0.2)
    own = (
        "readings_topic",
        "voc_topic",
        "production_topic",
        "alerts_topic",
        "dead_letter_topic",
        "worker_app_id",
        "notifier_group_id",
    )
    assert all(getattr(named, f).startswith("ew-x") for f in own)
    assert all(getattr(named, f) != getattr(base, f) for f in own)
    assert named.worker_batch_seconds == 0.2
    assert named.database_url == base.database_url


@given(
    st.sets(st.integers(0, 63), max_size=24),
    st.integers(1, 8),
)
def test_every_assigned_partition_has_exactly_one_lane_and_lanes_differ_by_one_at_most(
    partitions, lanes
):
    assigned = {TopicPartition("readings", p) for p in partitions}
    dealt = [lane_partitions(assigned, lanes, lane) for lane in range(lanes)]
    assert sorted(tp for share in dealt for tp in share) == sorted(assigned)
    sizes = [len(share) for share in dealt]
    assert max(sizes) - min(sizes) <= 1
