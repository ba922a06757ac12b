"""Consumer lag, the pure core (``stream.consumer_lag``): what the worker's lag gauge says for
each partition, from end, acknowledged, committed and log-start offsets."""

import urllib.error
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from stream.consumer_lag import AcknowledgedOffsets, next_offset, partition_lags
from tests.conftest import isolated_pipeline, wait_until
from tests.pipeline import metric_value, produce_raw

BACKLOG = 30

READINGS_0 = ("readings", 0)
READINGS_1 = ("readings", 1)
VOC_0 = ("voc", 0)


def test_lag_is_the_end_offset_minus_the_next_offset_to_process():
    #   0 ........ 40 ............ 100
    #              ^ acknowledged   ^ end       lag = 60
    lags = partition_lags([READINGS_0], {READINGS_0: 100}, {READINGS_0: 40}, {}, {})
    assert lags == {READINGS_0: 60}


def test_acknowledged_offsets_count_before_kafka_has_the_commit():
    # committed 30 (the commit interval has not passed), acknowledged 90: 10 left, not 70
    lags = partition_lags([READINGS_0], {READINGS_0: 100}, {READINGS_0: 90}, {READINGS_0: 30}, {})
    assert lags == {READINGS_0: 10}


def test_a_partition_with_nothing_acknowledged_here_is_judged_by_the_group_s_commit():
    # a worker whose batches keep failing acknowledges nothing: everything past the commit
    lags = partition_lags([READINGS_0], {READINGS_0: 500}, {}, {READINGS_0: 200}, {})
    assert lags == {READINGS_0: 300}


def test_a_partition_nobody_committed_in_counts_from_its_log_start():
    # retention deleted offsets 0..149: the worker starts at 150, the earliest it can read
    lags = partition_lags([READINGS_0], {READINGS_0: 400}, {}, {}, {READINGS_0: 150})
    assert lags == {READINGS_0: 250}


def test_kafka_s_minus_one_means_no_committed_offset():
    lags = partition_lags([READINGS_0], {READINGS_0: 400}, {}, {READINGS_0: -1}, {READINGS_0: 0})
    assert lags == {READINGS_0: 400}


def test_a_caught_up_partition_has_zero_lag():
    assert partition_lags([VOC_0], {VOC_0: 7}, {VOC_0: 7}, {}, {}) == {VOC_0: 0}


def test_an_end_offset_read_before_the_last_acknowledgement_never_gives_negative_lag():
    assert partition_lags([VOC_0], {VOC_0: 7}, {VOC_0: 9}, {}, {}) == {VOC_0: 0}


def test_partitions_without_a_known_end_or_start_are_left_out_not_guessed():
    lags = partition_lags(
        [READINGS_0, READINGS_1, VOC_0],
        {READINGS_0: 10, READINGS_1: None},
        {READINGS_1: 3, VOC_0: 3},
        {},
        {READINGS_0: None},
    )
    assert lags == {}


def test_only_assigned_partitions_are_reported():
    lags = partition_lags([READINGS_1], {READINGS_0: 10, READINGS_1: 5}, {}, {}, {READINGS_1: 0})
    assert lags == {READINGS_1: 5}


def test_next_offset_prefers_the_furthest_known_progress():
    assert next_offset(acknowledged=12, committed=40, log_start=0) == 40
    assert next_offset(acknowledged=None, committed=None, log_start=3) == 3
    assert next_offset(acknowledged=None, committed=-1, log_start=None) is None


def test_acknowledged_offsets_only_move_forward():
    offsets = AcknowledgedOffsets()
    offsets.acknowledge(READINGS_0, 41)
    offsets.acknowledge(READINGS_0, 7)  # a redelivered record acknowledged again
    assert offsets.offsets == {READINGS_0: 42}


def test_acknowledged_offsets_forget_partitions_a_rebalance_took_away():
    offsets = AcknowledgedOffsets()
    offsets.acknowledge(READINGS_0, 1)
    offsets.acknowledge(READINGS_1, 1)
    offsets.keep_only([READINGS_1])
    assert offsets.offsets == {READINGS_1: 2}


offsets = st.integers(min_value=0, max_value=10**12)
maybe_offsets = st.none() | st.integers(min_value=-1, max_value=10**12)


@given(
    end=offsets,
    acknowledged=st.none() | offsets,
    committed=maybe_offsets,
    log_start=maybe_offsets,
)
def test_lag_is_never_negative_and_never_more_than_the_end_offset(
    end, acknowledged, committed, log_start
):
    acked = {} if acknowledged is None else {READINGS_0: acknowledged}
    lags = partition_lags(
        [READINGS_0], {READINGS_0: end}, acked, {READINGS_0: committed}, {READINGS_0: log_start}
    )
    assert set(lags) <= {READINGS_0}
    if READINGS_0 in lags:
        assert 0 <= lags[READINGS_0] <= end


@given(end=offsets, first=offsets, later=offsets)
def test_acknowledging_more_never_increases_lag(end, first, later):
    progress = AcknowledgedOffsets()
    progress.acknowledge(READINGS_0, first)
    before = partition_lags([READINGS_0], {READINGS_0: end}, progress.offsets, {}, {})
    progress.acknowledge(READINGS_0, later)
    after = partition_lags([READINGS_0], {READINGS_0: end}, progress.offsets, {}, {})
    assert after[READINGS_0] <= before[READINGS_0]


# --- the adapter, against a real worker ----------------------------------------------------


def metric_samples(port: int, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``name`` a running service serves: (labels, value); none while the
    service is still starting."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    except urllib.error.URLError:
        return []
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    ]


@pytest.mark.services
def test_a_worker_that_cannot_store_reports_its_whole_backlog_as_lag(local_stack, start_service):
    """The worker's database does not exist: every batch fails and is retried, nothing is
    acknowledged, and the lag gauge shows every record produced (counted from the log start:
    the group never committed)."""
    url = local_stack.database_url.get_secret_value().rsplit("/", 1)[0] + "/ew_no_such_db"
    with isolated_pipeline(local_stack.model_copy(update={"database_url": SecretStr(url)})) as s:
        produce_raw(s, [(f"M{i}".encode(), b"{}") for i in range(BACKLOG)])
        start_service("worker", s)

        def lag_by_partition() -> dict[str, float] | None:
            lags = metric_samples(s.worker_metrics_port, "energywatch_stream_consumer_lag_records")
            readings = {
                labels["partition"]: value
                for labels, value in lags
                if labels["topic"] == s.readings_topic and labels["consumer"] == s.worker_app_id
            }
            return readings if sum(readings.values()) == BACKLOG else None

        readings = wait_until(lag_by_partition, 45, interval=0.5, what="the backlog as lag")
        assert set(readings) == {str(p) for p in range(s.topic_partitions)}
        assert metric_value(s.worker_metrics_port, "energywatch_stream_db_write_errors_total") > 0
