"""The stream's doorbell for the alert evaluator, against a real PostgreSQL: marks keep the
earliest time, the NOTIFY arrives only when the batch commits, claims take marks once."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from storage import alert_dirty
from storage.migrate import migrate

pytestmark = pytest.mark.services
A = "91350100M000100Y43"
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def test_earliest_by_unit_keeps_each_units_first_time():
    changes = [(A, T0 + timedelta(hours=2)), ("B", T0), (A, T0), (A, T0 + timedelta(days=1))]
    assert alert_dirty.earliest_by_unit(changes) == {A: T0, "B": T0}


def test_marks_keep_the_earliest_time_notify_on_commit_only_and_are_claimed_once(
    database_settings,
):
    url = database_settings.database_url.get_secret_value()

    async def scenario():
        async with (
            await psycopg.AsyncConnection.connect(url) as writer,
            await psycopg.AsyncConnection.connect(url, autocommit=True) as listener,
        ):
            await migrate(writer)
            await listener.execute(f"LISTEN {alert_dirty.CHANNEL}")
            notifications = listener.notifies(timeout=1.0)

            async with writer.transaction(), writer.cursor() as cur:  # rolled back: no doorbell
                await alert_dirty.mark_dirty(cur, "readings", {A: T0})
                raise psycopg.Rollback()
            assert [n async for n in notifications] == []

            async with writer.transaction(), writer.cursor() as cur:
                await alert_dirty.mark_dirty(cur, "readings", {A: T0 + timedelta(hours=1)})
            async with writer.transaction(), writer.cursor() as cur:
                await alert_dirty.mark_dirty(cur, "readings", {A: T0, "B": T0})
                await alert_dirty.mark_dirty(cur, "voc", {A: T0 + timedelta(days=3)})
            rung = [n.channel async for n in listener.notifies(timeout=1.0)]
            assert rung, "a committed mark rings the doorbell"
            assert set(rung) == {alert_dirty.CHANNEL}

            async with writer.transaction(), writer.cursor() as cur:
                claimed = await alert_dirty.claim_dirty(cur)
            assert {(d.enterprise_code, d.source, d.since) for d in claimed} == {
                (A, "readings", T0),
                ("B", "readings", T0),
                (A, "voc", T0 + timedelta(days=3)),
            }
            async with writer.transaction(), writer.cursor() as cur:
                assert await alert_dirty.claim_dirty(cur) == []

    asyncio.run(scenario())
