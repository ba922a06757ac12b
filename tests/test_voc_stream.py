"""The VOC stream path against the real services: samples stored idempotently, hourly and
daily averages by the 75% rule recomputed from what is stored (so redelivery changes nothing
and late data corrects), emission mass, and one path through Kafka and the worker process."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer

from contracts.dead_letters import decode_dead_letter
from contracts.voc import DataFlag, PollutantValue, VocSample, encode_voc_sample
from energywatch.kafka_topics import ensure_topics
from storage.migrate import migrate
from storage.voc import VocWriteResult, store_voc_samples
from stream.batch import RawRecord
from stream.voc_agent import STAGE, decode_voc_records
from stream.voc_averages import average
from tests.conftest import wait_until
from tests.pipeline import metric_value, read_topic

pytestmark = pytest.mark.services
CODE = "91350100M000100Y43"
NMHC, FLOW = "a24088", "a00000"
DAY = datetime(2026, 3, 1, 16, tzinfo=UTC)  # 2026-03-02 00:00 China Standard Time
HOUR = timedelta(hours=1)


def minute(
    at: datetime,
    nmhc: float,
    flag: str = "N",
    flow_m3_s: float = 10.0,
    flow_flag: str = "N",
    monitor: str = "YCVOC0001",
) -> VocSample:
    return VocSample(
        monitor_id=monitor,
        enterprise_code=CODE,
        data_time=at,
        interval_seconds=60,
        values={
            NMHC: PollutantValue(avg=nmhc, min=nmhc * 0.9, max=nmhc * 1.1, flag=DataFlag(flag)),
            FLOW: PollutantValue(avg=flow_m3_s, cou=flow_m3_s * 60, flag=DataFlag(flow_flag)),
        },
    )


def hour_of_minutes(start: datetime, valid: int = 60, other_flag: str = "M") -> list[VocSample]:
    """Sixty minutes from ``start``: the first ``valid`` N, the rest ``other_flag``; NMHC
    varies by minute so averages are not trivially equal."""
    return [
        minute(start + timedelta(minutes=m), 2.0 + m / 10, "N" if m < valid else other_flag)
        for m in range(60)
    ]


def store(settings, *batches: list[VocSample]) -> list[VocWriteResult]:
    """Write each batch in a transaction of its own, as the worker does."""

    async def scenario() -> list[VocWriteResult]:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value()
        ) as conn:
            await migrate(conn)
            results = []
            for batch in batches:
                async with conn.transaction(), conn.cursor() as cur:
                    results.append(await store_voc_samples(cur, batch))
            return results

    return asyncio.run(scenario())


def query(settings, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(statement, params).fetchall()


def hourly(settings, code: str = NMHC) -> dict[datetime, tuple[Any, ...]]:
    """period_start -> (avg, min, max, valid_count, total_count, valid, flag, emission_mass_kg)"""
    rows = query(
        settings,
        "SELECT period_start, avg, min, max, valid_count, total_count, valid, flag, "
        "emission_mass_kg FROM voc_hourly WHERE pollutant = %s",
        code,
    )
    return {row[0]: row[1:] for row in rows}


def daily(settings, code: str = NMHC) -> dict[datetime, tuple[Any, ...]]:
    """period_start -> (avg, valid_count, total_count, valid, flag, emission_mass_kg)"""
    rows = query(
        settings,
        "SELECT period_start, avg, valid_count, total_count, valid, flag, emission_mass_kg "
        "FROM voc_daily WHERE pollutant = %s",
        code,
    )
    return {row[0]: row[1:] for row in rows}


def test_samples_are_stored_as_sent_one_row_per_pollutant_and_kind(database_settings):
    samples = hour_of_minutes(DAY, valid=50, other_flag="C")
    # the monitor's own hourly data (CN 2061) for the same hour is a sample of another kind
    monitors_hour = average(samples, 3600).model_copy(update={"source": "hj212"})
    [result] = store(database_settings, [*samples, monitors_hour])
    assert result.samples_new == 61
    rows = query(
        database_settings,
        "SELECT interval_seconds, pollutant, avg, min, max, cou, flag, source FROM voc_samples "
        "WHERE monitor_id = 'YCVOC0001' AND data_time = %s ORDER BY pollutant",
        DAY + timedelta(minutes=55),
    )
    assert rows == [
        (60, FLOW, 10.0, None, None, 600.0, "N", "simulator"),
        (60, NMHC, 7.5, pytest.approx(6.75), pytest.approx(8.25), None, "C", "simulator"),
    ]
    assert query(
        database_settings,
        "SELECT interval_seconds, count(*) FROM voc_samples GROUP BY 1 ORDER BY 1",
    ) == [(60, 120), (3600, 2)]
    # the stream's hour comes from the minutes, not from what the monitor said of them
    assert hourly(database_settings)[DAY][3:5] == (50, 60)


def test_the_hourly_average_is_what_stream_voc_averages_computes(database_settings):
    samples = hour_of_minutes(DAY, valid=52, other_flag="D")
    store(database_settings, samples)
    expected = average(samples, 3600).values[NMHC]
    avg, low, high, valid_count, total_count, valid, flag, _mass = hourly(database_settings)[DAY]
    assert avg == pytest.approx(expected.avg)
    assert (low, high) == (pytest.approx(expected.min), pytest.approx(expected.max))
    assert (valid_count, total_count, valid, flag) == (52, 60, True, "N")
    # only the N minutes count: a plain mean of all sixty would be higher
    assert avg == pytest.approx(2.0 + 51 / 20)


def test_an_hour_with_fewer_than_45_valid_minutes_is_invalid_and_has_no_average(database_settings):
    store(
        database_settings,
        hour_of_minutes(DAY, valid=45) + hour_of_minutes(DAY + HOUR, valid=44),
    )
    hours = hourly(database_settings)
    assert hours[DAY][4:7] == (60, True, "N")
    assert hours[DAY][0] is not None
    avg, low, high, valid_count, total_count, valid, flag, mass = hours[DAY + HOUR]
    assert (valid_count, total_count, valid, flag) == (44, 60, False, "M")
    assert (avg, low, high, mass) == (None, None, None, None)


def test_a_redelivered_batch_changes_no_row(database_settings):
    samples = hour_of_minutes(DAY, valid=50)
    snapshot = (
        "SELECT 'h', monitor_id, period_start, pollutant, avg, flag, updated_at FROM voc_hourly "
        "UNION ALL SELECT 'd', monitor_id, period_start, pollutant, avg, flag, updated_at "
        "FROM voc_daily UNION ALL SELECT 's', monitor_id, data_time, pollutant, avg, flag, "
        "updated_at FROM voc_samples ORDER BY 1, 2, 3, 4"
    )
    [first] = store(database_settings, samples)
    before = query(database_settings, snapshot)
    again, doubled = store(database_settings, samples, samples[:10] + samples[:10])
    assert (first.samples_new, first.hourly_rows, first.daily_rows) == (60, 2, 2)
    assert again == VocWriteResult(0, 0, 60, 0, 0)
    assert doubled == VocWriteResult(0, 0, 20, 0, 0)
    assert query(database_settings, snapshot) == before

    # a new value for a minute that does not count (flag M) is stored, but moves no average
    ignored = minute(samples[55].data_time, 99.0, flag="M")
    [result] = store(database_settings, [ignored])
    assert result == VocWriteResult(0, 1, 0, 0, 0)
    after = query(database_settings, snapshot)
    assert [row for row in after if row[0] != "s"] == [row for row in before if row[0] != "s"]


def test_a_late_sample_corrects_its_hour_and_day(database_settings):
    # 18 hours of the day; hour 5 has only 44 valid minutes, so the day has 17 valid hours:
    #   00 ... 04 | 05: 44 N + 16 missing | 06 ... 17     -> day invalid (17 < 18)
    late_hour = DAY + 5 * HOUR
    samples = [s for h in range(18) for s in hour_of_minutes(DAY + h * HOUR)]
    samples = [
        s
        for s in samples
        if not (late_hour + timedelta(minutes=44) <= s.data_time < late_hour + HOUR)
    ]
    store(database_settings, samples)
    assert hourly(database_settings)[late_hour][5:7] == (False, "B")  # missing minutes: B
    assert daily(database_settings)[DAY][1:5] == (17, 18, False, "B")

    # the 45th minute arrives late: the hour becomes valid, and with it the day
    late = minute(late_hour + timedelta(minutes=44), 6.4)
    [result] = store(database_settings, [late])
    assert (result.samples_new, result.hourly_rows, result.daily_rows) == (1, 2, 2)
    hour = hourly(database_settings)[late_hour]
    assert hour[3:7] == (45, 45, True, "N")
    assert hour[0] == pytest.approx(2.0 + 4.4 / 2)  # mean of 2.0 .. 6.4
    avg, valid_count, total_count, valid, flag, mass = daily(database_settings)[DAY]
    assert (valid_count, total_count, valid, flag) == (18, 18, True, "N")
    hours = [row for start, row in hourly(database_settings).items() if start >= DAY]
    assert avg == pytest.approx(sum(row[0] for row in hours) / 18)
    # 18 of the day's 24 hours have a mass: the day's is their mean rate over 24 hours
    assert mass == pytest.approx(sum(row[7] for row in hours) / 18 * 24)

    # a corrected value for a stored minute replaces it and moves the hour's average
    corrected = minute(late_hour + timedelta(minutes=44), 51.4)
    [result] = store(database_settings, [corrected])
    assert (result.samples_new, result.samples_corrected) == (0, 1)
    assert hourly(database_settings)[late_hour][0] == pytest.approx(hour[0] + 45 / 45)
    assert daily(database_settings)[DAY][0] == pytest.approx(avg + 1 / 18)


def test_a_sample_sent_again_without_a_pollutant_loses_it_and_so_do_the_averages(
    database_settings,
):
    samples = hour_of_minutes(DAY)
    without_flow = [s.model_copy(update={"values": {NMHC: s.values[NMHC]}}) for s in samples[:59]]
    store(database_settings, samples, without_flow[:1])
    assert hourly(database_settings, FLOW)[DAY][3:5] == (59, 59)

    [result] = store(database_settings, without_flow)
    assert (result.samples_new, result.samples_corrected, result.samples_unchanged) == (0, 58, 1)
    assert hourly(database_settings, FLOW)[DAY][3:5] == (1, 1)
    assert hourly(database_settings)[DAY][7] is None  # one minute of flow: no valid volume
    last = samples[59].model_copy(update={"values": {NMHC: samples[59].values[NMHC]}})
    store(database_settings, [last])
    assert hourly(database_settings, FLOW) == {}
    assert daily(database_settings, FLOW) == {}
    assert query(
        database_settings, "SELECT count(*) FROM voc_samples WHERE pollutant = %s", FLOW
    ) == [(0,)]


def test_emission_mass_is_the_hourly_concentration_times_the_gas_volume(database_settings):
    # 10 mg/m³ at 10 m³/s for an hour: 36,000 m³ of gas carrying 0.36 kg of NMHC
    steady = [minute(DAY + timedelta(minutes=m), 10.0) for m in range(60)]
    # an hour whose flow meter faulted for 20 minutes: no valid volume, so no mass
    no_flow = [
        minute(DAY + HOUR + timedelta(minutes=m), 10.0, flow_flag="D" if m < 20 else "N")
        for m in range(60)
    ]
    # the hour before CST midnight belongs to the day before
    before_midnight = [minute(DAY - HOUR + timedelta(minutes=m), 20.0) for m in range(60)]
    store(database_settings, steady + no_flow + before_midnight)
    hours = hourly(database_settings)
    assert hours[DAY][7] == pytest.approx(0.36)
    assert hours[DAY + HOUR][5:8] == (True, "N", None)  # NMHC valid, flow not
    assert hourly(database_settings, FLOW)[DAY + HOUR][5:8] == (False, "D", None)
    assert hours[DAY - HOUR][7] == pytest.approx(0.72)
    days = daily(database_settings)
    assert set(days) == {DAY - 24 * HOUR, DAY}
    # two hours of the day, one with a mass: far from 18 valid hours, so no daily mass
    assert days[DAY][1:6] == (2, 2, False, "B", None)


def test_bad_records_become_dead_letters_with_their_reason_and_bytes():
    good = encode_voc_sample(minute(DAY, 1.0))
    records = [
        RawRecord(good, "voc", 0, 1),
        RawRecord(None, "voc", 0, 2),
        RawRecord(b"{not json", "voc", 0, 3),
        RawRecord(good.replace(b'"interval_seconds":60', b'"interval_seconds":61'), "voc", 1, 4),
    ]
    batch = decode_voc_records(records, DAY)
    assert [s.data_time for s in batch.samples] == [DAY]
    assert [(d.kind, d.source_offset, d.raw) for d in batch.dead_letters] == [
        ("empty", 2, b""),
        ("not_json", 3, b"{not json"),
        ("wrong_schema", 4, records[3].value),
    ]
    assert "interval_seconds" in batch.dead_letters[2].reason
    assert {d.stage for d in batch.dead_letters} == {STAGE}


def test_the_worker_stores_voc_hours_and_dead_letters_bad_records(pipeline_settings, start_service):
    settings = pipeline_settings.model_copy(
        update={"voc_topic": f"ew-test-{uuid.uuid4().hex[:10]}.voc"}
    )
    ensure_topics(settings)
    samples = hour_of_minutes(DAY, valid=48, other_flag="C")
    bad = b'{"schema_version": 1, "monitor_id": "YCVOC0001"}'
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for sample in samples[:30]:
        producer.send(
            settings.voc_topic, key=sample.enterprise_code.encode(), value=encode_voc_sample(sample)
        )
    producer.send(settings.voc_topic, key=b"YCVOC0001", value=bad)
    for sample in samples[30:]:
        producer.send(
            settings.voc_topic, key=sample.enterprise_code.encode(), value=encode_voc_sample(sample)
        )
    producer.flush()
    producer.close()

    worker = start_service("worker", settings)

    def stored_hour():
        try:
            hours = hourly(settings)
        except psycopg.errors.UndefinedTable:
            return None  # the worker has not migrated its database yet
        return hours.get(DAY) if hours.get(DAY, (None,) * 5)[4] == 60 else None

    avg, _low, _high, valid_count, total_count, valid, flag, mass = wait_until(
        stored_hour, 25, what="the VOC hour stored"
    )
    expected = average(samples, 3600).values[NMHC].avg
    assert expected is not None
    assert avg == pytest.approx(expected), worker.log_tail()
    assert (valid_count, total_count, valid, flag) == (48, 60, True, "N")
    assert mass == pytest.approx(expected * 36_000 / 1e6)  # 10 m³/s for an hour

    [record] = read_topic(settings, settings.dead_letter_topic, expected=1, timeout_s=10)
    letter = decode_dead_letter(record.value)
    assert (letter.stage, letter.kind, letter.source_topic) == (
        STAGE,
        "wrong_schema",
        settings.voc_topic,
    )
    assert letter.raw == bad
    assert "enterprise_code" in letter.reason or "data_time" in letter.reason
    port = settings.worker_metrics_port
    # the counters move just after the transaction commits: give them a moment
    wait_until(
        lambda: metric_value(port, "energywatch_voc_samples_stored_total") >= 60,
        5,
        what="the stored-samples counter",
    )
    assert metric_value(port, "energywatch_voc_samples_stored_total") == 60
    assert metric_value(port, "energywatch_voc_dead_letters_total", {"kind": "wrong_schema"}) == 1
