"""Storage against a real TimescaleDB: migrations, hypertable, idempotent batched writes."""

import asyncio
from datetime import UTC, datetime, timedelta

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
