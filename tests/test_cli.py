"""The energywatch command's tools against the real stack."""

import pytest
from typer.testing import CliRunner

from energywatch.cli import app
from tests.conftest import settings_env
from tests.pipeline import read_topic

pytestmark = pytest.mark.services


def test_simulate_produces_every_reading_it_promises_to_the_readings_topic(pipeline_settings):
    result = CliRunner().invoke(
        app,
        ["simulate", "--units", "3", "--intervals", "4", "--start", "2026-11-01T00:00:00"],
        env=settings_env(pipeline_settings),
    )
    assert result.exit_code == 0, result.output
    assert "produced 12 readings" in result.output
    records = read_topic(pipeline_settings, pipeline_settings.readings_topic, 12, timeout_s=20)
    assert len(records) == 12
    assert {r.value.count(b'"period_start":"2026-11-01T') for r in records} == {1}


def test_topics_create_is_idempotent(pipeline_settings):
    env = settings_env(pipeline_settings)
    first = CliRunner().invoke(app, ["topics", "create"], env=env)
    assert first.exit_code == 0, first.output
    assert first.output.count("exists") == 5  # the fixture created them already
