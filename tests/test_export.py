"""``energywatch export`` against a real TimescaleDB: what it writes equals what is stored."""

import asyncio
import csv
import io
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from energywatch.cli import app
from energywatch.export_commands import COLUMNS, to_csv, to_json
from storage.rollup_queries import SubjectKind, rollups
from stream.windows import WindowSize
from tests.conftest import free_port, settings_env
from tests.test_rollup_queries import (
    DAY1,
    DAY2,
    DAY3,
    UNIT,
    connect,
    insert_reading,
    insert_rollups,
    rollup,
    set_progress,
)

services = pytest.mark.services
TOPIC = "energywatch.readings.v1"
#: the days DAY1 and DAY2 in China Standard Time
PERIOD = ["--from", "2026-03-02", "--to", "2026-03-03"]


def stored_unit(database_settings, extra=()):
    """Two days of a unit's rollups (one final), and what ``rollups`` reads back."""

    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_rollups(
                conn,
                [
                    rollup("unit", UNIT, "all", "1d", DAY1, tce=Decimal("1234.567890123")),
                    rollup(
                        "unit",
                        UNIT,
                        "electricity",
                        "1d",
                        DAY1,
                        tce=Decimal("1234.567890123"),
                        tce_equivalent=Decimal("3014.100000000"),
                        physical_quantity=Decimal("10045385.5"),
                        corrections=2,
                    ),
                    rollup("unit", UNIT, "all", "1d", DAY2, tce=Decimal("0E-9"), readings=0),
                    rollup("unit", UNIT, "all", "1d", DAY3),  # after the period
                    *extra,
                ],
            )
            await set_progress(
                conn, TOPIC, {0: DAY2 + timedelta(hours=1)}, database_settings.worker_app_id
            )
            return await rollups(
                conn,
                SubjectKind.UNIT,
                UNIT,
                WindowSize.DAY,
                DAY1,
                DAY3,
                topic=TOPIC,
                consumer=database_settings.worker_app_id,
            )

    return asyncio.run(scenario())


def invoke(database_settings, *args):
    return CliRunner().invoke(app, ["export", *args], env=settings_env(database_settings))


@services
def test_csv_export_has_a_header_and_every_stored_row_exactly(database_settings):
    stored = stored_unit(database_settings)
    result = invoke(database_settings, "--unit", UNIT, *PERIOD)
    assert result.exit_code == 0, result.output
    assert not result.stdout_bytes.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(lines[0]) == COLUMNS
    exported = [dict(zip(COLUMNS, line, strict=True)) for line in lines[1:]]
    assert len(exported) == len(stored) == 3
    for row, out in zip(stored, exported, strict=True):
        assert out["subject_kind"] == "unit"
        assert out["subject"] == UNIT
        assert out["energy_type"] == row.energy_type
        assert out["window"] == "1d"
        assert datetime.fromisoformat(out["period_start"]) == row.period_start
        assert out["period_start"].endswith("T00:00:00+08:00")
        for column in ("tce", "tce_counted", "tce_equivalent"):
            assert Decimal(out[column]) == getattr(row, column)
        assert out["readings"] == str(row.readings)
        assert out["corrections"] == str(row.corrections)
        assert out["final"] == ("true" if row.final else "false")
    assert exported[0]["energy_type"] == "all"
    assert exported[0]["physical_quantity"] == exported[0]["physical_unit"] == ""
    assert exported[1]["tce"] == "1234.567890123"
    assert exported[1]["physical_quantity"] == "10045385.5"
    assert exported[1]["physical_unit"] == "kWh"
    assert exported[2]["tce"] == "0.000000000"  # never 0E-9
    assert [r["final"] for r in exported] == ["true", "true", "false"]
    assert "1 not final yet" in result.stderr


@services
def test_json_export_keeps_every_digit_as_a_string_and_counts_as_integers(database_settings):
    stored = stored_unit(database_settings)
    result = invoke(database_settings, "--unit", UNIT, *PERIOD, "--format", "json")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert [tuple(r) for r in exported] == [COLUMNS] * 3
    for row, out in zip(stored, exported, strict=True):
        assert isinstance(out["tce"], str)
        assert Decimal(out["tce"]) == row.tce
        assert Decimal(out["tce_equivalent"]) == row.tce_equivalent
        assert out["readings"] == row.readings
        assert out["final"] is row.final
        assert datetime.fromisoformat(out["period_start"]) == row.period_start
    assert exported[0]["physical_quantity"] is None
    assert exported[1]["physical_quantity"] == "10045385.5"


@services
def test_one_energy_type_and_hourly_windows_can_be_asked_for(database_settings):
    hours = [rollup("unit", UNIT, "electricity", "1h", DAY1 + timedelta(hours=h)) for h in (0, 1)]
    stored_unit(database_settings, extra=hours)
    result = invoke(
        database_settings, "--unit", UNIT, *PERIOD, "--window", "1h", "--energy-type", "electricity"
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["window"], r["energy_type"], r["period_start"]) for r in rows] == [
        ("1h", "electricity", "2026-03-02T00:00:00+08:00"),
        ("1h", "electricity", "2026-03-02T01:00:00+08:00"),
    ]


@services
def test_completeness_is_the_share_of_the_expected_meters_time_cut_to_four_decimals(
    database_settings,
):
    async def scenario():
        async with await connect(database_settings) as conn:
            for meter in ("E1", "E2"):
                await insert_reading(conn, meter, DAY1 - timedelta(days=1), UNIT)
            await insert_reading(conn, "W1", DAY1, UNIT, "water")
            await insert_rollups(
                conn,
                [
                    # 2 electricity meters: 155519 / 172800 = 0.899994... -> 0.8999, not 0.9000
                    rollup("unit", UNIT, "electricity", "1d", DAY1, covered_seconds=155_519),
                    rollup("unit", UNIT, "electricity", "1d", DAY2, covered_seconds=155_520),
                    # 'all' leaves the water meter out: 2 meters
                    rollup("unit", UNIT, "all", "1d", DAY1, covered_seconds=172_800),
                    rollup("meter", "E1", "electricity", "1d", DAY1, covered_seconds=43_200),
                    rollup("county", "140802", "all", "1d", DAY1, covered_seconds=999_999),
                ],
            )

    asyncio.run(scenario())
    unit = invoke(database_settings, "--unit", UNIT, *PERIOD)
    meter = invoke(database_settings, "--meter", "E1", *PERIOD)
    county = invoke(database_settings, "--county", "140802", *PERIOD)
    assert unit.exit_code == meter.exit_code == county.exit_code == 0, unit.output
    by_row = {
        (r["period_start"][:10], r["energy_type"]): r["completeness"]
        for r in csv.DictReader(io.StringIO(unit.stdout))
    }
    assert by_row == {
        ("2026-03-02", "all"): "1.0000",
        ("2026-03-02", "electricity"): "0.8999",
        ("2026-03-03", "electricity"): "0.9000",
    }
    assert [r["completeness"] for r in csv.DictReader(io.StringIO(meter.stdout))] == ["0.5000"]
    assert [r["completeness"] for r in csv.DictReader(io.StringIO(county.stdout))] == [""]


@services
def test_excel_output_to_a_file_starts_with_a_bom_and_keeps_chinese_names(
    database_settings, tmp_path
):
    stored_unit(database_settings, extra=[rollup("city", "运城市", "all", "1d", DAY1)])
    out = tmp_path / "reports" / "运城.csv"
    result = invoke(database_settings, "--city", "运城市", *PERIOD, "--excel", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    (row,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert (row["subject_kind"], row["subject"]) == ("city", "运城市")
    assert b"\r\n" in data  # RFC 4180 line ends, as spreadsheets expect
    assert list(tmp_path.joinpath("reports").iterdir()) == [out]  # no partial file left


@services
def test_no_rows_says_which_subject_and_period_and_what_to_check(database_settings):
    stored_unit(database_settings)
    result = invoke(database_settings, "--unit", "91140800MA0K99999X", *PERIOD)
    assert result.exit_code == 1
    assert "91140800MA0K99999X" in result.stderr
    assert "2026-03-02 to 2026-03-03" in result.stderr
    assert "energywatch stack status" in result.stderr
    assert result.stdout == ""
    monthly = invoke(database_settings, "--unit", UNIT, *PERIOD, "--window", "1mo")
    assert monthly.exit_code == 1
    assert "give --from as a 1st" in monthly.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--unit", UNIT, "--city", "运城市", *PERIOD], "exactly one of"),
        ([*PERIOD], "exactly one of"),
        (["--unit", UNIT, "--from", "2026-3-2", "--to", "2026-03-03"], "YYYY-MM-DD"),
        (["--unit", UNIT, "--from", "2026-03-03", "--to", "2026-03-02"], "before it starts"),
        (["--unit", UNIT, *PERIOD, "--energy-type", "coal"], "raw_coal"),
        (["--unit", UNIT, *PERIOD, "--window", "1w"], "1mo"),
        (["--unit", UNIT, "--from", "2026-03-02"], "--to"),
    ],
)
def test_bad_arguments_are_refused_before_touching_the_database(args, complaint):
    result = CliRunner().invoke(
        app, ["export", *args], env={"EW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    )
    assert result.exit_code == 2
    assert complaint in result.stderr


def test_an_unreachable_database_says_how_to_start_it():
    url = f"postgresql://energywatch@127.0.0.1:{free_port()}/energywatch"
    result = CliRunner().invoke(
        app, ["export", "--unit", UNIT, *PERIOD], env={"EW_DATABASE_URL": url}
    )
    assert result.exit_code == 1
    assert "cannot read the database" in result.stderr
    assert "energywatch stack up" in result.stderr


# -- the formats alone ------------------------------------------------------------------------

exact_numbers = st.decimals(allow_nan=False, allow_infinity=False, places=9).map(
    lambda d: d.normalize() if d.is_zero() else d
)
records = st.lists(
    st.fixed_dictionaries(
        {
            "subject_kind": st.sampled_from([k.value for k in SubjectKind]),
            "subject": st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s),
            "energy_type": st.sampled_from(["all", "electricity", "water"]),
            "window": st.sampled_from([w.value for w in WindowSize]),
            "period_start": st.just("2026-03-02T00:00:00+08:00"),
            "tce": exact_numbers.map(lambda d: format(d, "f")),
            "tce_counted": exact_numbers.map(lambda d: format(d, "f")),
            "tce_equivalent": exact_numbers.map(lambda d: format(d, "f")),
            "physical_quantity": st.none() | exact_numbers.map(lambda d: format(d, "f")),
            "physical_unit": st.none() | st.sampled_from(["kWh", "m3", "GJ"]),
            "readings": st.integers(min_value=0, max_value=2**62),
            "completeness": st.none() | st.just("0.9000"),
            "corrections": st.integers(min_value=0, max_value=10**6),
            "final": st.booleans(),
        }
    ),
    max_size=5,
)


@settings(max_examples=50)
@given(records)
def test_csv_and_json_read_back_to_the_same_records(exported):
    from_json = json.loads(to_json(exported))
    assert from_json == exported
    from_csv = list(csv.DictReader(io.StringIO(to_csv(exported), newline="")))
    assert len(from_csv) == len(exported)
    for text, record in zip(from_csv, exported, strict=True):
        for column in COLUMNS:
            value = record[column]
            if value is None:
                assert text[column] == ""
            elif isinstance(value, bool):
                assert text[column] == str(value).lower()
            elif column in ("tce", "tce_counted", "tce_equivalent", "physical_quantity"):
                assert Decimal(text[column]) == Decimal(value)
            else:
                assert text[column] == str(value)


@services
def test_a_database_the_worker_never_migrated_says_to_start_the_worker(database_settings):
    result = invoke(database_settings, "--unit", UNIT, *PERIOD)  # a fresh, empty database
    assert result.exit_code == 1
    assert "no rollup tables yet" in result.stderr
    assert "energywatch worker" in result.stderr
