"""Storage against a real TimescaleDB: migrations, hypertable, idempotent batched writes."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from contracts.readings import ElectricityReading
from storage.edition import detect_edition
from storage.migrate import available_migrations, migrate
from storage.readings import insert_readings

pytestmark = pytest.mark.services
CODE = "91350100M000100Y43"


def readings(n: int) -> list[ElectricityReading]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        ElectricityReading(
            enterprise_code=CODE,
            meter_id=f"M{i % 5}",
            period_start=start + timedelta(minutes=15 * i),
            consumption_kwh=float(i),
        )
        for i in range(n)
    ]


async def _connect(settings):
    return await psycopg.AsyncConnection.connect(settings.database_url.get_secret_value())


def test_migrations_apply_once_in_order_and_create_a_hypertable(database_settings):
    async def scenario():
        async with await _connect(database_settings) as conn:
            first = await migrate(conn)
            second = await migrate(conn)
            cur = await conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            )
            return first, second, [r[0] for r in await cur.fetchall()]

    first, second, hypertables = asyncio.run(scenario())
    assert first == [m.version for m in available_migrations()]
    assert second == []
    assert "meter_readings" in hypertables


def test_the_same_batch_written_twice_adds_nothing_the_second_time(database_settings):
    batch = readings(50)

    async def scenario():
        async with await _connect(database_settings) as conn:
            await migrate(conn)
            counts = []
            for attempt in (batch, batch, batch[:10] + batch[:10]):
                async with conn.transaction(), conn.cursor() as cur:
                    counts.append(await insert_readings(cur, attempt))
            cur = await conn.execute("SELECT count(*) FROM meter_readings")
            return counts, (await cur.fetchone())[0]

    counts, total = asyncio.run(scenario())
    assert counts == [50, 0, 0]
    assert total == 50


def test_the_timescaledb_edition_is_detected(database_settings):
    async def scenario():
        async with await _connect(database_settings) as conn:
            await migrate(conn)
            return await detect_edition(conn)

    edition = asyncio.run(scenario())
    assert edition.license in {"apache", "timescale"}
    assert edition.has_tsl_features == (edition.license == "timescale")
    assert edition.version[0].isdigit()


def test_counter_states_saved_in_one_statement_load_back_and_the_latest_wins(database_settings):
    """A batch's meter states go in as one upsert of arrays; a later batch replaces them."""
    from storage.stream_state import load_counter_states, save_counter_states

    first = {"M-2": {"counter": 2.5, "recent": [1, 2]}, "M-1": {"counter": 1.0, "undo": None}}
    later = {"M-2": {"counter": 3.5, "recent": [2, 3]}}

    async def scenario():
        conn = await _connect(database_settings)
        async with conn:
            await migrate(conn)
            async with conn.transaction(), conn.cursor() as cur:
                await save_counter_states(cur, first)
            async with conn.transaction(), conn.cursor() as cur:
                await save_counter_states(cur, later)
                await save_counter_states(cur, {})
            async with conn.cursor() as cur:
                return await load_counter_states(cur, ["M-1", "M-2", "M-3"])

    assert asyncio.run(scenario()) == {"M-1": first["M-1"], "M-2": later["M-2"]}


def test_rollups_summed_in_steps_equal_every_subject_and_window_summed_from_the_batch(
    database_settings,
):
    """The upsert aggregates a batch by unit and energy type, fans that out to the subjects,
    and sums quarter hours into hours, days and months; that must equal grouping every
    contribution directly by subject and window, including a CST month end, water (no 'all'),
    negative corrections and two batches adding to the same rows."""
    import random
    from collections import defaultdict
    from decimal import Decimal

    from storage.rollups import add_contributions
    from stream.accounting import Contribution, Dimensions, windows_of

    rng = random.Random(20261121)
    units = {
        "U1": Dimensions("140802", "yuncheng", "cement"),
        "U2": Dimensions("140802", "yuncheng", "steel"),
        "U3": Dimensions("140821", "yuncheng", "cement"),
    }
    kinds = [("electricity", "kWh"), ("natural_gas", "m3"), ("water", "t")]
    month_end = datetime(2026, 1, 31, 15, tzinfo=UTC)  # 23:00 CST on 31 January

    def contribution() -> Contribution:
        unit = rng.choice(sorted(units))
        energy, physical_unit = rng.choice(kinds)
        at = month_end + timedelta(minutes=15 * rng.randrange(-6, 10))
        sign = rng.choice([1, 1, 1, -1])
        return Contribution(
            meter_id=f"{unit}-{energy}-{rng.randrange(2)}",
            enterprise_code=unit,
            dims=units[unit],
            energy_type=energy,
            physical_unit=physical_unit,
            windows=windows_of(at),
            closed=tuple(rng.random() < 0.2 for _ in range(4)),
            physical=sign * round(rng.uniform(0, 100), 3),
            tce=sign * round(rng.uniform(0, 1), 6),
            tce_counted=sign * round(rng.uniform(0, 1), 6),
            tce_equivalent=sign * round(rng.uniform(0, 1), 6),
            readings=sign,
            covered_seconds=sign * 900,
            flagged=rng.randrange(2),
            stuck=rng.randrange(2),
            jumps=0,
            resets=rng.randrange(2),
            off_period_start=0,
        )

    batches = [[contribution() for _ in range(300)] for _ in range(2)]
    expected: dict[tuple[object, ...], list[Any]] = defaultdict(lambda: [Decimal(0)] * 4 + [0] * 8)
    for c in (c for batch in batches for c in batch):
        subjects = [("meter", c.meter_id, c.energy_type)]
        for kind, subject in (
            ("unit", c.enterprise_code),
            ("county", c.dims.county),
            ("city", c.dims.city),
            ("industry", c.dims.industry),
        ):
            subjects.append((kind, subject, c.energy_type))
            if c.in_all:
                subjects.append((kind, subject, "all"))
        for kind, subject, energy in subjects:
            for size, (start, _), closed in zip(
                ("15m", "1h", "1d", "1mo"), c.windows, c.closed, strict=True
            ):
                if kind == "meter" and size in ("15m", "1h"):
                    continue
                sums = expected[(kind, subject, energy, size, start)]
                for i, value in enumerate((c.physical, c.tce, c.tce_counted, c.tce_equivalent)):
                    sums[i] += Decimal(repr(value))
                for i, value in enumerate(
                    (
                        c.readings,
                        c.covered_seconds,
                        c.flagged,
                        c.stuck,
                        c.jumps,
                        c.resets,
                        c.off_period_start,
                        int(closed),
                    ),
                    start=4,
                ):
                    sums[i] += value

    async def scenario():
        async with await _connect(database_settings) as conn:
            await migrate(conn)
            for batch in batches:
                async with conn.transaction(), conn.cursor() as cur:
                    await add_contributions(cur, batch)
            cur = await conn.execute(
                "SELECT subject_kind, subject, energy_type, window_size, period_start, "
                "physical_quantity, tce, tce_counted, tce_equivalent, readings, covered_seconds, "
                "flagged, stuck, jumps, resets, off_period_start, corrections FROM energy_rollups"
            )
            return await cur.fetchall()

    stored = {tuple(row[:5]): list(row[5:]) for row in asyncio.run(scenario())}
    assert stored.keys() == expected.keys()
    for key, sums in expected.items():
        if key[2] == "all":
            sums[0] = None  # a physical sum over energy types means nothing
        assert stored[key] == sums, key
    assert {key[3] for key in stored} == {"15m", "1h", "1d", "1mo"}
    assert len({key[4] for key in stored if key[3] == "1mo"}) == 2  # both sides of the month end
