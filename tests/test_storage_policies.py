"""Compression and retention policies: planned per edition, applied only where they exist.

This machine's TimescaleDB is the Apache edition, so the test against it can only prove the
skip path (nothing is executed, every policy says why); the statements the Timescale-licensed
edition would run are checked as data.
"""

import asyncio
from datetime import timedelta

import psycopg
import pytest

from storage.edition import TimescaleEdition, detect_edition
from storage.migrate import migrate
from storage.policies import PolicyConfig, apply_policies, describe, plan_policies

TIMESCALE = TimescaleEdition(license="timescale", version="2.19.3")
APACHE = TimescaleEdition(license="apache", version="2.19.3")


def test_the_timescale_edition_compresses_raw_tables_by_series_after_the_lateness():
    policies = plan_policies(TIMESCALE, PolicyConfig())
    assert all(p.skipped is None for p in policies)
    settings = {p.table: p.statements[0][0] for p in policies if p.kind == "compression settings"}
    assert set(settings) == {"meter_readings", "voc_samples"}
    assert "compress_segmentby = 'meter_id'" in settings["meter_readings"]
    assert "compress_orderby = 'period_start DESC'" in settings["meter_readings"]
    after = [p.statements[0][1] for p in policies if p.kind == "compression policy"]
    assert after == [("meter_readings", timedelta(days=30)), ("voc_samples", timedelta(days=30))]
    assert not [p for p in policies if p.kind == "retention policy"]  # kept unless asked


def test_raw_retention_is_planned_only_when_configured():
    config = PolicyConfig(raw_retention=timedelta(days=3 * 365))
    retention = [p for p in plan_policies(TIMESCALE, config) if p.kind == "retention policy"]
    assert [p.statements[0][1] for p in retention] == [
        ("meter_readings", timedelta(days=3 * 365)),
        ("voc_samples", timedelta(days=3 * 365)),
    ]


@pytest.mark.parametrize(
    "config",
    [
        {"compress_after": timedelta(days=7)},  # equal to the allowed lateness
        {"compress_after": timedelta(days=3)},
        {"raw_retention": timedelta(days=20)},  # before compression
    ],
)
def test_policies_that_would_compress_or_drop_rows_still_being_corrected_are_refused(config):
    with pytest.raises(ValueError, match="must be longer"):
        PolicyConfig(**config)


def test_the_apache_edition_skips_every_policy_and_says_why():
    policies = plan_policies(APACHE, PolicyConfig(raw_retention=timedelta(days=400)))
    assert len(policies) == 6
    assert all(p.skipped and "'apache' license" in p.skipped for p in policies)
    assert all("skipped" in line for line in describe(policies))


@pytest.mark.services
def test_applying_policies_on_this_machines_edition_changes_nothing_it_lacks(database_settings):
    async def scenario():
        url = database_settings.database_url.get_secret_value()
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await migrate(conn)
            edition = await detect_edition(conn)
            report = await apply_policies(conn, PolicyConfig())
            await apply_policies(conn, PolicyConfig())  # on every start: idempotent
            cur = await conn.execute(
                "SELECT hypertable_name, compression_enabled "
                "FROM timescaledb_information.hypertables "
                "WHERE hypertable_name IN ('meter_readings', 'voc_samples') ORDER BY 1"
            )
            return edition, report, await cur.fetchall()

    edition, report, compression = asyncio.run(scenario())
    if edition.has_tsl_features:  # a Timescale-licensed server: the policies are in place
        assert len(report.applied) == 4
        assert compression == [("meter_readings", True), ("voc_samples", True)]
    else:
        assert report.applied == []
        assert compression == [("meter_readings", False), ("voc_samples", False)]
