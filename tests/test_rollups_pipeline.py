"""Rollups through the real pipeline: simulator file -> Kafka -> worker(s) -> TimescaleDB.

One scenario (every meter fault at a known place) is replayed several ways; the rollups must
equal an independent computation from the simulator's file, equal a GROUP BY over the ledger
(what a continuous aggregate would hold), and be identical, digit for digit, whether the
worker ran undisturbed, was SIGKILLed at random points, or shared the partitions with
workers joining and leaving.
"""

import json
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType
from energywatch.cli import app
from energywatch.settings import Settings
from plans.coal_factors import kgce_per_unit
from simulators.record_file import read_records
from storage.stream_state import records_made_durable
from tests.conftest import fresh_database, isolated_pipeline, settings_env, wait_until

pytestmark = pytest.mark.services

SCENARIO = Path("scenarios/misbehaving-meters.yaml")
ROLLUP_COLUMNS = (
    "subject_kind, subject, energy_type, window_size, period_start, period_end, "
    "physical_quantity, physical_unit, tce, tce_counted, tce_equivalent, readings, "
    "covered_seconds, flagged, stuck, jumps, resets, off_period_start, corrections"
)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Path, Path, list[Any]]:
    """Two days of the misbehaving-meters scenario as a record file, and its register."""
    folder = tmp_path_factory.mktemp("scenario")
    recording, register = folder / "misbehaving.jsonl.gz", folder / "register.yaml"
    runner = CliRunner()
    made = runner.invoke(
        app, ["simulate", "--scenario", str(SCENARIO), "--duration", "2d", "--to", str(recording)]
    )
    assert made.exit_code == 0, made.output
    registered = runner.invoke(
        app, ["register", "from-simulation", str(SCENARIO), "--out", str(register)]
    )
    assert registered.exit_code == 0, registered.output
    readings = [r for r in read_records(recording) if r.channel.value == "readings"]
    assert len(readings) > 5000
    return recording, register, readings


def replay(settings: Settings, recording: Path, *options: str) -> None:
    result = CliRunner().invoke(
        app, ["replay", str(recording), "--speed", "max", *options], env=settings_env(settings)
    )
    assert result.exit_code == 0, result.output


def processed(settings: Settings) -> int:
    """How many readings-topic records the workers have made durable (offsets start at 0)."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return records_made_durable(conn, settings.readings_topic)


def query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(sql, params).fetchall()


def stored_state(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the stream computed: rollups, ledger, progress (no wall-clock columns)."""
    return {
        "rollups": query(
            settings, f"SELECT {ROLLUP_COLUMNS} FROM energy_rollups ORDER BY 1, 2, 3, 4, 5"
        ),
        "ledger": query(
            settings,
            "SELECT meter_id, period_start, consumption, tce, tce_equivalent, counted, "
            "quality_flags, aggregated, revision FROM meter_readings ORDER BY 1, 2",
        ),
        "progress": query(
            settings,
            "SELECT partition, next_offset, max_event_end, too_late FROM stream_progress "
            "WHERE topic = %s ORDER BY 1",
            settings.readings_topic,
        ),
    }


@pytest.fixture(scope="module")
def undisturbed(
    local_stack, scenario, tmp_path_factory
) -> Iterator[tuple[Settings, dict[str, list[tuple[Any, ...]]]]]:
    """The scenario through one worker that nothing disturbs: the reference run."""
    recording, register, readings = scenario
    with fresh_database(local_stack) as database, isolated_pipeline(database) as pipeline:
        settings = pipeline.model_copy(update={"register_path": register})
        from energywatch.service_process import ServiceProcess

        log = tmp_path_factory.mktemp("undisturbed") / "worker.log"
        worker = ServiceProcess(["worker"], settings_env(settings), log).start()
        try:
            replay(settings, recording)
            wait_until(
                lambda: processed(settings) >= len(readings), 180, what="the replay processed"
            )
        finally:
            worker.stop()
        yield settings, stored_state(settings)


def _cst_day(at: datetime) -> datetime:
    local = at.astimezone(CHINA_STANDARD_TIME)
    return datetime(local.year, local.month, local.day, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)


def test_rollups_equal_an_independent_computation_from_the_simulators_file(scenario, undisturbed):
    _, _, records = scenario
    settings, _ = undisturbed
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:  # the file is in emit order: the last version of a key wins
        try:
            item = json.loads(record.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # malformed on purpose: dead-lettered
        if isinstance(item, dict) and "meter_id" in item and "period_start" in item:
            latest[(item["meter_id"], item["period_start"])] = item
    counter_meters = {
        m
        for (m, _), item in latest.items()
        if any(k.startswith("counter_") and v is not None for k, v in item.items())
    }
    expected: dict[tuple[str, str, datetime], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0), Decimal(0)]
    )
    for (meter_id, _), item in latest.items():
        if meter_id in counter_meters:
            continue
        energy_type = EnergyType(item["energy_type"])
        at = datetime.fromisoformat(item["period_start"]).astimezone(UTC)
        quantity = next(
            v for k, v in item.items() if k.startswith("consumption_") and v is not None
        )
        sums = expected[(item["enterprise_code"], energy_type.value, _cst_day(at))]
        sums[0] += Decimal(repr(float(quantity)))
        if energy_type is not EnergyType.WATER:
            kgce, _unit = kgce_per_unit(energy_type, at.astimezone(CHINA_STANDARD_TIME).date())
            sums[1] += Decimal(repr(round(float(quantity) * kgce / 1000, 9)))
        sums[2] += 1
    assert len(expected) > 20

    got = {
        (subject, energy_type, start): [physical, tce, Decimal(readings)]
        for subject, energy_type, start, physical, tce, readings in query(
            settings,
            "SELECT subject, energy_type, period_start, physical_quantity, tce, readings "
            "FROM energy_rollups WHERE subject_kind = 'unit' AND window_size = '1d'",
        )
    }
    for key, sums in expected.items():
        assert got[key] == sums, key

    # counter meters no fault touched: the whole run's consumption is the register's travel
    faulted = {"electricity", "natural_gas"}  # reset, rollover, stuck, spike hit these types
    by_meter: dict[str, list[tuple[str, float, float | None]]] = defaultdict(list)
    for (meter_id, period), item in latest.items():
        if meter_id in counter_meters and item["energy_type"] not in faulted:
            values = {
                k.split("_")[0]: v
                for k, v in item.items()
                if k.split("_")[0] in ("counter", "consumption")
            }
            by_meter[meter_id].append((period, values["counter"], values.get("consumption")))
    assert by_meter, "the scenario has counter meters of an unfaulted type"
    month_totals = dict(
        query(
            settings,
            "SELECT subject, physical_quantity FROM energy_rollups "
            "WHERE subject_kind = 'meter' AND window_size = '1mo'",
        )
    )
    for meter_id, series in by_meter.items():
        series.sort()
        # the first interval has no counter before it: its reported consumption stands
        expected_total = series[-1][1] - series[0][1] + (series[0][2] or 0.0)
        assert float(month_totals[meter_id]) == pytest.approx(expected_total, abs=1e-6), meter_id


def test_rollups_equal_a_group_by_over_the_ledger_at_every_level(undisturbed):
    """What a continuous aggregate over the ledger would hold, on this (Apache) edition."""
    settings, _ = undisturbed
    for window, width in (("1h", "1 hour"), ("1d", "1 day")):
        ledger = query(
            settings,
            "SELECT enterprise_code, energy_type, "
            "time_bucket(%s::interval, period_start, origin => '2000-01-03 00:00+08'), "
            "coalesce(sum(consumption::numeric), 0), coalesce(sum(tce::numeric), 0), count(*), "
            "sum(interval_seconds) FROM meter_readings WHERE aggregated GROUP BY 1, 2, 3",
            width,
        )
        rollups = query(
            settings,
            "SELECT subject, energy_type, period_start, physical_quantity, tce, readings, "
            "covered_seconds FROM energy_rollups "
            "WHERE subject_kind = 'unit' AND window_size = %s AND energy_type <> 'all'",
            window,
        )
        assert sorted(rollups) == sorted(ledger)
    # the levels add up: units -> county -> city, 'all' = every energy type but water
    levels = query(
        settings,
        "SELECT window_size, period_start, "
        "sum(tce) FILTER (WHERE subject_kind = 'unit' AND energy_type = 'all'), "
        "sum(tce) FILTER (WHERE subject_kind = 'unit' AND energy_type NOT IN ('all', 'water')), "
        "sum(tce) FILTER (WHERE subject_kind = 'county' AND energy_type = 'all'), "
        "sum(tce) FILTER (WHERE subject_kind = 'city' AND energy_type = 'all'), "
        "sum(tce) FILTER (WHERE subject_kind = 'industry' AND energy_type = 'all'), "
        "sum(tce) FILTER (WHERE subject_kind = 'meter' AND energy_type <> 'water') "
        "FROM energy_rollups GROUP BY 1, 2",
    )
    assert {window for window, *_ in levels} == {"15m", "1h", "1d", "1mo"}
    for window, start, *totals in levels:
        if window in ("15m", "1h"):  # a meter's are the ledger's rows, not stored here
            assert totals.pop() is None
        assert len(set(totals)) == 1, (window, start, totals)


def test_a_meters_quarter_hours_and_hours_from_the_ledger_add_up_to_its_stored_days(undisturbed):
    settings, _ = undisturbed
    import asyncio

    from storage.rollup_queries import SubjectKind, rollups
    from stream.windows import WindowSize

    days = query(
        settings,
        f"SELECT {ROLLUP_COLUMNS} FROM energy_rollups WHERE subject_kind = 'meter' "
        "AND window_size = '1d' AND energy_type <> 'water' ORDER BY subject, period_start",
    )
    assert len(days) > 20
    summed = [
        "tce",
        "tce_counted",
        "tce_equivalent",
        "readings",
        "covered_seconds",
        "flagged",
        "stuck",
        "jumps",
    ]
    summed += ["resets", "off_period_start"]
    columns = [c.strip() for c in ROLLUP_COLUMNS.split(",")]

    async def windows(meter: str, size: WindowSize, start: datetime) -> list[Any]:
        url = settings.database_url.get_secret_value()
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await rollups(
                conn,
                SubjectKind.METER,
                meter,
                size,
                start,
                start + timedelta(days=1),
                topic=settings.readings_topic,
            )

    for day in days[:: max(1, len(days) // 12)]:  # a dozen meter-days of every kind
        stored = dict(zip(columns, day, strict=True))
        for size, count in ((WindowSize.QUARTER_HOUR, 96), (WindowSize.HOUR, 24)):
            rows = asyncio.run(windows(stored["subject"], size, stored["period_start"]))
            assert 0 < len(rows) <= count
            assert {r.window_seconds for r in rows} == {86400 // count}
            for name in summed:
                assert sum(getattr(r, name) for r in rows) == stored[name], (size, name)
            quantity = sum(r.physical_quantity or 0 for r in rows)
            assert quantity == (stored["physical_quantity"] or 0)


def test_the_scenarios_faults_show_in_the_rollups_and_the_ledger(undisturbed, scenario):
    settings, _ = undisturbed
    _, register_path, _ = scenario
    from plans.register import load_register

    names = {e.code: e.name for e in load_register(register_path).enterprises}
    by_unit = {
        (names[unit], energy_type): (stuck, jumps, resets, off, corrections, covered)
        for unit, energy_type, stuck, jumps, resets, off, corrections, covered in query(
            settings,
            "SELECT subject, energy_type, sum(stuck), sum(jumps), sum(resets), "
            "sum(off_period_start), sum(corrections), sum(covered_seconds) FROM energy_rollups "
            "WHERE subject_kind = 'unit' AND window_size = '15m' GROUP BY 1, 2",
        )
    }

    def unit(name_part: str, energy_type: str) -> tuple[int, ...]:
        return next(v for (n, t), v in by_unit.items() if name_part in n and t == energy_type)

    assert unit("焦化", "electricity")[0] > 0  # hj-coking's stuck counter
    assert unit("水泥", "electricity")[1] > 0  # jx-cement's spike: an implausible jump
    assert unit("发电", "electricity")[2] > 0  # yh-power's counter reset
    assert unit("氧化铝", "natural_gas")[2] > 0  # yj-alumina's rollover
    assert unit("焦化", "steam")[3] > 0  # hj-coking's drifting clock
    assert unit("甲醇", "electricity")[4] > 0  # wx-methanol's 6 h late data corrected
    # hj-steel's two-hour gap: less covered than a full unit-day's worth
    steel = unit("钢铁", "electricity")
    assert steel[5] % 86_400 != 0 or steel[5] < unit("钢铁", "coke")[5]


def test_sigkill_at_random_points_leaves_every_aggregate_identical(
    local_stack, scenario, undisturbed, tmp_path
):
    recording, register, readings = scenario
    _, reference = undisturbed
    rng = random.Random()
    with fresh_database(local_stack) as database, isolated_pipeline(database) as pipeline:
        settings = pipeline.model_copy(update={"register_path": register, "worker_batch_size": 300})
        from energywatch.service_process import ServiceProcess

        replay(settings, recording)
        kills = 0
        for attempt in range(3):
            worker = ServiceProcess(
                ["worker"], settings_env(settings), tmp_path / f"worker-{attempt}.log"
            ).start()
            before = processed(settings)
            wait_until(
                lambda b=before, w=worker: processed(settings) > b or not w.alive(),
                90,
                what="the worker to make progress",
            )
            if processed(settings) >= len(readings):
                worker.stop()
                break
            time.sleep(rng.uniform(0.05, 0.6))
            worker.kill()
            kills += 1
        assert kills >= 1
        last = ServiceProcess(["worker"], settings_env(settings), tmp_path / "worker-last.log")
        last.start()
        try:
            wait_until(lambda: processed(settings) >= len(readings), 180, what="every record")
        finally:
            last.stop()
        state = stored_state(settings)
    assert state["ledger"] == reference["ledger"]
    assert state["progress"] == reference["progress"]
    assert state["rollups"] == reference["rollups"]


def partitions_with_records(settings: Settings, topic: str) -> set[int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return {tp.partition for tp, end in ends.items() if end > 0}


def test_workers_joining_and_leaving_share_the_load_and_lose_nothing(
    local_stack, scenario, undisturbed, tmp_path
):
    recording, register, readings = scenario
    _, reference = undisturbed
    with fresh_database(local_stack) as database, isolated_pipeline(database) as pipeline:
        settings = pipeline.model_copy(update={"register_path": register, "worker_batch_size": 200})
        from energywatch.service_process import ServiceProcess

        def worker(name: str) -> ServiceProcess:
            env = {**settings_env(settings), "EW_WORKER_METRICS_PORT": "0"}
            return ServiceProcess(["worker"], env, tmp_path / f"{name}.log").start()

        first, second = worker("first"), worker("second")
        time.sleep(3)  # let both join the group before data arrives
        replay(settings, recording, "--rate", "4000")
        wait_until(lambda: processed(settings) > len(readings) // 4, 90, what="a quarter")
        third = worker("third")
        wait_until(lambda: processed(settings) > len(readings) // 2, 90, what="half")
        second.stop()  # leaves cleanly; its partitions move
        wait_until(lambda: processed(settings) >= len(readings), 180, what="every record")
        owners = query(
            settings,
            "SELECT count(DISTINCT partition) FROM stream_progress WHERE topic = %s",
            settings.readings_topic,
        )
        fed = partitions_with_records(settings, settings.readings_topic)
        for service in (first, third):
            service.stop()
        state = stored_state(settings)
    assert owners[0][0] == len(fed) > 1  # every partition fed was processed
    assert state["rollups"] == reference["rollups"]
    assert state["ledger"] == reference["ledger"]


def test_a_late_duplicate_and_corrected_reading_each_do_the_right_thing(
    pipeline_settings, start_service
):
    """Duplicates change nothing; a correction moves the rollups by its difference; a reading
    beyond the allowed lateness is stored, counted and kept out of the rollups."""
    from kafka import KafkaProducer

    from contracts.readings import ElectricityReading, encode_reading
    from tests.pipeline import read_topic

    settings = pipeline_settings.model_copy(
        update={"allowed_lateness_seconds": 3600, "watermark_grace_seconds": 0}
    )
    code = "9114088212JX9EJR64"  # no register given: the unit counts as unregistered
    start = datetime(2026, 3, 2, tzinfo=UTC)

    def reading(meter: str, minutes: int, kwh: float) -> bytes:
        return encode_reading(
            ElectricityReading(
                enterprise_code=code,
                meter_id=meter,
                period_start=start + timedelta(minutes=minutes),
                consumption_kwh=kwh,
            )
        )

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    def send(*values: bytes) -> None:
        for value in values:
            producer.send(settings.readings_topic, key=b"one-partition", value=value)
        producer.flush()

    start_service("worker", settings)
    send(reading("m1", 0, 100.0), reading("m1", 15, 50.0), reading("m1", 15, 50.0))
    wait_until(lambda: processed(settings) >= 3, 60, what="the first readings")
    send(reading("m1", 15, 80.0))  # a correction: +30
    send(reading("m1", 600, 10.0))  # ten hours on: the watermark moves to 10:15
    send(reading("m1", 30, 7.0))  # ended 00:45, far beyond 09:15: too late
    send(reading("m1", 0, 1.0))  # a too-late correction of a stored reading
    wait_until(lambda: processed(settings) >= 7, 60, what="every reading")

    day = query(
        settings,
        "SELECT physical_quantity, readings, corrections FROM energy_rollups "
        "WHERE subject_kind = 'meter' AND window_size = '1d' AND subject = 'm1'",
    )
    assert day == [(Decimal("190.0"), 3, 0)]  # 100 + 80 + 10; the correction was not late
    ledger = query(
        settings,
        "SELECT period_start, consumption, aggregated, revision FROM meter_readings "
        "ORDER BY period_start",
    )
    assert [(c, a, r) for _, c, a, r in ledger] == [
        (100.0, True, 0),
        (80.0, True, 1),
        (7.0, False, 0),
        (10.0, True, 0),
    ]
    too_late = query(settings, "SELECT sum(too_late) FROM stream_progress")
    assert too_late == [(2,)]
    letters = read_topic(settings, settings.dead_letter_topic, 1, timeout_s=20)
    assert [json.loads(m.value)["kind"] for m in letters] == ["too_late_correction"]
    producer.close()
