"""Production reports in the stream: decoded (bad ones dead-lettered), upserted on natural keys,
and judged against the energy rollups: product unit energy and daily sums vs monthly figures.

Storage tests run against a real TimescaleDB (a fresh database each) with rollup rows put in by
hand; the last test runs the real worker between real Kafka topics and the database.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from kafka import KafkaProducer

from contracts.dead_letters import decode_dead_letter
from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.production import (
    EnergyTotalReport,
    OutputValueReport,
    ProductOutputReport,
    ValueAddedReport,
    encode_production_report,
)
from contracts.readings import EnergyType
from storage.migrate import migrate
from storage.production import (
    EnergyBasis,
    ReceivedReport,
    ReportSource,
    UpsertCounts,
    daily_vs_monthly,
    product_unit_energy,
    upsert_reports,
)
from stream.batch import RawRecord
from stream.data_quality import MonthlyCheck
from stream.production_agent import decode_reports
from tests.conftest import wait_until
from tests.pipeline import metric_value, read_topic

STEELWORKS = "91350100M000100Y43"
POWER_PLANT = "91350100M000200Y4T"
CHEMICALS = "91350100M000300Y4J"
RECEIVED = datetime(2026, 3, 3, 2, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, tzinfo=CHINA_STANDARD_TIME)
APRIL = datetime(2026, 4, 1, tzinfo=CHINA_STANDARD_TIME)


def cst_day(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, tzinfo=CHINA_STANDARD_TIME)


def output(code: str, product: str, start: datetime, period: str = "day", **quantity: float):
    return ProductOutputReport(
        enterprise_code=code, product_code=product, period=period, period_start=start, **quantity
    )


def run(scenario):
    return asyncio.run(scenario)


async def connect(settings) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(settings.database_url.get_secret_value())
    await migrate(conn)
    return conn


async def upsert(conn, reports, source: ReportSource | None = None, at: datetime = RECEIVED):
    async with conn.transaction(), conn.cursor() as cur:
        return await upsert_reports(cur, [ReceivedReport(r, at, source) for r in reports])


async def add_rollup(
    conn,
    subject: str,
    window_size: str,
    start: datetime,
    *,
    energy_type: str = "all",
    tce_counted: float = 0.0,
    tce: float | None = None,
    quantity: float | None = None,
    unit: str | None = None,
    subject_kind: str = "unit",
) -> None:
    """One energy_rollups row as the readings worker would leave it."""
    end = APRIL if window_size == "1mo" else start + timedelta(days=1)
    await conn.execute(
        "INSERT INTO energy_rollups (subject_kind, subject, energy_type, window_size, "
        "period_start, period_end, physical_quantity, physical_unit, tce, tce_counted, "
        "tce_equivalent, readings, covered_seconds, flagged, stuck, jumps, resets, "
        "off_period_start, corrections) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 96, 86400, 0, 0, 0, 0, 0, 0)",
        (
            subject_kind,
            subject,
            energy_type,
            window_size,
            start,
            end,
            quantity,
            unit,
            tce if tce is not None else tce_counted,
            tce_counted,
            tce_counted,
        ),
    )
    await conn.commit()


async def stored_product(conn, code: str, product: str, start: datetime):
    cur = await conn.execute(
        "SELECT output_t, revision, received_at, revised_at FROM product_output_reports "
        "WHERE enterprise_code = %s AND product_code = %s AND period_start = %s",
        (code, product, start),
    )
    row = await cur.fetchone()
    await conn.rollback()
    return row


# --- the pure core: decoding --------------------------------------------------------------------


def test_bad_records_become_dead_letters_saying_what_was_wrong_and_good_ones_reports():
    good = output(STEELWORKS, "steel", cst_day(2), output_t=100.0)
    negative = json.dumps(
        {
            "kind": "product_output",
            "enterprise_code": STEELWORKS,
            "product_code": "steel",
            "period": "day",
            "period_start": "2026-03-02T00:00:00+08:00",
            "output_t": -5,
        }
    ).encode()
    off_boundary = encode_production_report(
        output(STEELWORKS, "steel", cst_day(2) + timedelta(hours=1), output_t=1.0)
    )
    month_mid = encode_production_report(
        OutputValueReport(
            enterprise_code=STEELWORKS, period_start=cst_day(15), output_value_cny=1.0
        )
    )
    raws = [encode_production_report(good), b"{not json", negative, None, off_boundary, month_mid]
    records = [RawRecord(raw, "production", 0, offset) for offset, raw in enumerate(raws)]

    decoded = decode_reports(records, RECEIVED)

    assert decoded.accepted == [(records[0], good)]
    letters = {letter.source_offset: letter for letter in decoded.dead_letters}
    assert {offset: letter.kind for offset, letter in letters.items()} == {
        1: "not_json",
        2: "wrong_schema",
        3: "empty",
        4: "bad_period",
        5: "bad_period",
    }
    assert "product_output.output_t" in letters[2].reason
    assert "greater than or equal to 0" in letters[2].reason
    assert "not the start of a day" in letters[4].reason
    assert "not the start of a month" in letters[5].reason
    assert letters[2].raw == negative
    assert letters[3].raw == b""
    assert all(letter.stage == "stream.production" for letter in letters.values())


# --- storage ------------------------------------------------------------------------------------


@pytest.mark.services
def test_a_resent_report_replaces_the_value_and_bumps_the_revision_a_redelivery_changes_nothing(
    database_settings,
):
    first = output(STEELWORKS, "steel", cst_day(2), output_t=100.0)
    corrected = output(STEELWORKS, "steel", cst_day(2), output_t=104.5)
    later = RECEIVED + timedelta(hours=5)

    async def scenario():
        async with await connect(database_settings) as conn:
            steps = [
                await upsert(conn, [first], ReportSource("p", 0, 10)),
                await upsert(conn, [first], ReportSource("p", 0, 11)),  # same value again
            ]
            after_resend = await stored_product(conn, STEELWORKS, "steel", cst_day(2))
            steps.append(await upsert(conn, [corrected], ReportSource("p", 0, 12), at=later))
            after_correction = await stored_product(conn, STEELWORKS, "steel", cst_day(2))
            # a crash before the ack redelivers offsets 10..12: nothing moves
            steps.append(await upsert(conn, [first], ReportSource("p", 0, 10), at=later))
            steps.append(await upsert(conn, [corrected], ReportSource("p", 0, 12), at=later))
            after_redelivery = await stored_product(conn, STEELWORKS, "steel", cst_day(2))
            # several values for one key in one batch: applied in order, each a revision
            steps.append(
                await upsert(
                    conn,
                    [
                        output(STEELWORKS, "steel", cst_day(2), output_t=101.0),
                        output(STEELWORKS, "steel", cst_day(2), output_t=102.0),
                        OutputValueReport(
                            enterprise_code=STEELWORKS, period_start=MARCH, output_value_cny=5e6
                        ),
                    ],
                )
            )
            after_batch = await stored_product(conn, STEELWORKS, "steel", cst_day(2))
            return steps, after_resend, after_correction, after_redelivery, after_batch

    steps, after_resend, after_correction, after_redelivery, after_batch = run(scenario())
    assert [s["product_output"] for s in steps] == [
        UpsertCounts(new=1),
        UpsertCounts(unchanged=1),
        UpsertCounts(revised=1),
        UpsertCounts(unchanged=1),
        UpsertCounts(unchanged=1),
        UpsertCounts(revised=2),
    ]
    assert steps[-1]["output_value"] == UpsertCounts(new=1)
    assert after_resend == (100.0, 0, RECEIVED, None)
    assert after_correction == (104.5, 1, RECEIVED, later)  # received_at kept
    assert after_redelivery == after_correction
    assert after_batch[:2] == (102.0, 3)


@pytest.mark.services
def test_every_report_kind_is_stored_under_its_natural_key(database_settings):
    reports = [
        output(POWER_PLANT, "electricity", cst_day(2), output_mwh=1000.0),
        EnergyTotalReport(
            enterprise_code=STEELWORKS,
            energy_type=EnergyType.NATURAL_GAS,
            period="month",
            period_start=MARCH,
            consumption_m3=1234.5,
        ),
        OutputValueReport(enterprise_code=STEELWORKS, period_start=MARCH, output_value_cny=8e6),
        ValueAddedReport(enterprise_code=STEELWORKS, period_start=MARCH, value_added_cny=-2e5),
    ]

    async def scenario():
        async with await connect(database_settings) as conn:
            counts = await upsert(conn, reports)
            rows = {}
            for table, columns in [
                ("product_output_reports", "enterprise_code, product_code, output_mwh"),
                ("energy_total_reports", "energy_type, period, quantity, physical_unit"),
                ("output_value_reports", "period, period_start, output_value_cny"),
                ("value_added_reports", "period, value_added_cny"),
            ]:
                cur = await conn.execute(f"SELECT {columns} FROM {table}")
                rows[table] = await cur.fetchall()
            return counts, rows

    counts, rows = run(scenario())
    assert {kind: c.new for kind, c in counts.items()} == {
        "product_output": 1,
        "energy_total": 1,
        "output_value": 1,
        "value_added": 1,
    }
    assert rows["product_output_reports"] == [(POWER_PLANT, "electricity", 1000.0)]
    assert rows["energy_total_reports"] == [("natural_gas", "month", 1234.5, "m3")]
    assert rows["output_value_reports"] == [("month", MARCH.astimezone(UTC), 8e6)]
    assert rows["value_added_reports"] == [("month", -2e5)]


@pytest.mark.services
def test_product_unit_energy_puts_the_units_counted_tce_on_its_only_product(database_settings):
    async def scenario():
        async with await connect(database_settings) as conn:
            # Steelworks, 2 March: 52.0 tce counted (60 in all: some of it excluded), 100 t steel.
            await add_rollup(conn, STEELWORKS, "1d", cst_day(2), tce_counted=52.0, tce=60.0)
            # rows that must not be used: one energy type only, and a meter of the unit
            await add_rollup(
                conn, STEELWORKS, "1d", cst_day(2), energy_type="electricity", tce_counted=9.0
            )
            await add_rollup(conn, "M1", "1d", cst_day(2), tce_counted=7.0, subject_kind="meter")
            # 3 March: two products made -> not split; a third reported with no output
            await add_rollup(conn, STEELWORKS, "1d", cst_day(3), tce_counted=50.0)
            # March: 1560.6 tce counted, 3000 t steel
            await add_rollup(conn, STEELWORKS, "1mo", MARCH, tce_counted=1560.6)
            # Power plant, 2 March: 300 tce counted, 1000 MWh
            await add_rollup(conn, POWER_PLANT, "1d", cst_day(2), tce_counted=300.0)
            await upsert(
                conn,
                [
                    output(STEELWORKS, "steel", cst_day(2), output_t=100.0),
                    output(STEELWORKS, "slag_cement", cst_day(2), output_t=0.0),
                    output(STEELWORKS, "steel", cst_day(3), output_t=90.0),
                    output(STEELWORKS, "coke", cst_day(3), output_t=40.0),
                    output(STEELWORKS, "steel", cst_day(4), output_t=95.0),  # no rollup yet
                    output(STEELWORKS, "steel", MARCH, "month", output_t=3000.0),
                    output(POWER_PLANT, "electricity", cst_day(2), output_mwh=1000.0),
                ],
            )
            days = await product_unit_energy(conn, STEELWORKS, "day", MARCH, APRIL)
            month = await product_unit_energy(conn, STEELWORKS, "month", MARCH, APRIL)
            power = await product_unit_energy(conn, POWER_PLANT, "day", MARCH, APRIL)
            return days, month, power

    days, month, power = run(scenario())
    by_key = {(e.period_start, e.product_code): e for e in days}
    steel_2 = by_key[(cst_day(2), "steel")]
    assert steel_2.kgce_per_t == pytest.approx(520.0)  # 52.0 t × 1000 / 100 t
    assert steel_2.basis is EnergyBasis.SINGLE_PRODUCT
    assert steel_2.unit_tce_counted == pytest.approx(52.0)
    assert steel_2.products_made == 1
    assert by_key[(cst_day(2), "slag_cement")].basis is EnergyBasis.NO_OUTPUT
    assert by_key[(cst_day(2), "slag_cement")].kgce_per_t is None
    for product in ("steel", "coke"):
        shared = by_key[(cst_day(3), product)]
        assert shared.basis is EnergyBasis.SEVERAL_PRODUCTS
        assert shared.kgce_per_t is None
        assert shared.products_made == 2
    assert by_key[(cst_day(4), "steel")].basis is EnergyBasis.NO_ENERGY
    assert by_key[(cst_day(4), "steel")].kgce_per_t is None
    assert len(days) == 5

    assert [(m.product_code, m.period) for m in month] == [("steel", "month")]
    assert month[0].kgce_per_t == pytest.approx(520.2)  # 1560.6 t × 1000 / 3000 t

    assert len(power) == 1
    assert power[0].gce_per_kwh == pytest.approx(300.0)  # 300 t × 10^6 g / 1,000,000 kWh
    assert power[0].kgce_per_t is None


@pytest.mark.services
def test_daily_sums_within_5_percent_of_the_monthly_figure_pass_and_beyond_fail(
    database_settings,
):
    march_days = [cst_day(d) for d in range(1, 32)]

    async def scenario():
        async with await connect(database_settings) as conn:
            for day in march_days:
                await add_rollup(
                    conn,
                    STEELWORKS,
                    "1d",
                    day,
                    energy_type="electricity",
                    quantity=100.0,
                    unit="kWh",
                )
                await add_rollup(
                    conn,
                    STEELWORKS,
                    "1d",
                    day,
                    energy_type="natural_gas",
                    quantity=10.0,
                    unit="m3",
                )
            # the days either side of March (CST) must not count
            for outside in (cst_day(28, 2), APRIL):
                await add_rollup(
                    conn,
                    STEELWORKS,
                    "1d",
                    outside,
                    energy_type="electricity",
                    quantity=5000.0,
                    unit="kWh",
                )
            # another unit's March must not count either
            await add_rollup(
                conn,
                CHEMICALS,
                "1d",
                cst_day(5),
                energy_type="electricity",
                quantity=9999.0,
                unit="kWh",
            )
            monthly = [
                (EnergyType.ELECTRICITY, {"consumption_kwh": 3000.0}),
                (EnergyType.NATURAL_GAS, {"consumption_m3": 290.0}),
            ]
            await upsert(
                conn,
                [
                    EnergyTotalReport(
                        enterprise_code=STEELWORKS,
                        energy_type=energy_type,
                        period="month",
                        period_start=MARCH,
                        **figure,
                    )
                    for energy_type, figure in monthly
                ]
                + [
                    EnergyTotalReport(
                        enterprise_code=STEELWORKS,
                        energy_type=EnergyType.ELECTRICITY,
                        period="day",
                        period_start=day,
                        consumption_kwh=95.0,
                    )
                    for day in march_days
                ],
            )
            checks = [
                await daily_vs_monthly(conn, STEELWORKS, energy_type, MARCH)
                for energy_type in (EnergyType.ELECTRICITY, EnergyType.NATURAL_GAS, EnergyType.HEAT)
            ]
            with pytest.raises(ValueError, match="does not start a 1mo window"):
                await daily_vs_monthly(conn, STEELWORKS, EnergyType.ELECTRICITY, cst_day(2))
            return checks

    electricity, gas, heat = run(scenario())
    # 31 × 100 kWh = 3100 against 3000: +3.3%
    assert electricity.days_metered == 31
    assert electricity.metered.daily_sum == pytest.approx(3100.0)
    assert electricity.metered.deviation == pytest.approx(100 / 3000)
    assert electricity.metered.result is MonthlyCheck.WITHIN
    assert electricity.physical_unit == "kWh"
    # the unit's own daily reports: 31 × 95 = 2945 against 3000, -1.8%
    assert electricity.days_reported == 31
    assert electricity.reported.daily_sum == pytest.approx(2945.0)
    assert electricity.reported.result is MonthlyCheck.WITHIN
    # 31 × 10 m3 = 310 against 290: +6.9%
    assert gas.metered.daily_sum == pytest.approx(310.0)
    assert gas.metered.result is MonthlyCheck.OUTSIDE
    assert gas.reported.result is MonthlyCheck.OUTSIDE  # no daily reports: 0 against 290
    assert heat.metered.result is MonthlyCheck.NO_MONTHLY_FIGURE
    assert heat.month_start == MARCH.astimezone(UTC)


# --- the worker ---------------------------------------------------------------------------------


def stored_reports(settings) -> dict[str, int]:
    tables = ("product_output", "energy_total", "output_value", "value_added")
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        try:
            return {
                t: conn.execute(f"SELECT count(*) FROM {t}_reports").fetchone()[0] for t in tables
            }
        except psycopg.errors.UndefinedTable:
            return {}


@pytest.mark.services
def test_the_worker_stores_reports_from_kafka_and_dead_letters_the_bad_ones(
    pipeline_settings, start_service
):
    settings = pipeline_settings  # its own production, VOC and dead-letter topics
    steel = output(STEELWORKS, "steel", cst_day(2), output_t=100.0)
    good = [
        steel,
        EnergyTotalReport(
            enterprise_code=STEELWORKS,
            energy_type=EnergyType.ELECTRICITY,
            period="day",
            period_start=cst_day(2),
            consumption_kwh=2400.0,
        ),
        OutputValueReport(enterprise_code=STEELWORKS, period_start=MARCH, output_value_cny=8e6),
        ValueAddedReport(enterprise_code=STEELWORKS, period_start=MARCH, value_added_cny=2e6),
        output(STEELWORKS, "steel", cst_day(2), output_t=98.0),  # a correction, after the first
    ]
    wrong_schema = json.dumps({"kind": "value_added", "enterprise_code": STEELWORKS}).encode()
    off_boundary = encode_production_report(
        output(STEELWORKS, "steel", cst_day(2) + timedelta(hours=3), output_t=1.0)
    )
    worker = start_service("worker", settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    key = STEELWORKS.encode()  # as the gateway keys them: one unit's reports stay in order
    for value in [
        *(encode_production_report(r) for r in good[:2]),
        b"not json at all",
        *(encode_production_report(r) for r in good[2:]),
        wrong_schema,
        off_boundary,
    ]:
        producer.send(settings.production_topic, key=key, value=value)
    producer.flush()
    producer.close()

    letters = [
        decode_dead_letter(r.value)
        for r in read_topic(settings, settings.dead_letter_topic, 3, timeout_s=30)
    ]
    assert {(letter.kind, letter.raw) for letter in letters} == {
        ("not_json", b"not json at all"),
        ("wrong_schema", wrong_schema),
        ("bad_period", off_boundary),
    }
    assert all(letter.source_topic == settings.production_topic for letter in letters)
    assert "period_start" in next(x.reason for x in letters if x.kind == "wrong_schema")

    expected = {"product_output": 1, "energy_total": 1, "output_value": 1, "value_added": 1}
    wait_until(lambda: stored_reports(settings) == expected, 30, what="the reports stored")

    def steel_revision() -> tuple[float, int] | None:
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            return conn.execute(
                "SELECT output_t, revision FROM product_output_reports WHERE product_code = 'steel'"
            ).fetchone()

    assert wait_until(lambda: steel_revision() == (98.0, 1), 10, what="the correction stored")

    def metric(name: str, **labels: str) -> float:
        return metric_value(settings.worker_metrics_port, name, labels or None)

    wait_until(
        lambda: metric("energywatch_production_reports_stored_total", kind="product_output") == 2,
        5,
        what="the stored-reports counter",
    )
    assert metric("energywatch_production_reports_consumed_total") == 8
    assert metric("energywatch_production_reports_revised_total", kind="product_output") == 1
    assert metric("energywatch_production_dead_letters_total", kind="bad_period") == 1
    assert worker.alive(), worker.log_tail()
