"""The energywatch command's tools against the real stack."""

import pytest
from typer.testing import CliRunner

from energywatch.cli import app
from tests.conftest import settings_env
from tests.pipeline import read_topic

pytestmark = pytest.mark.services


def test_simulate_produces_every_reading_it_promises_to_the_readings_topic(pipeline_settings):
    settings = pipeline_settings.model_copy(
        update={
            "production_topic": f"{pipeline_settings.readings_topic}.production",
            "voc_topic": f"{pipeline_settings.readings_topic}.voc",
        }
    )
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--fleet",
            "scenarios/fleets/one-of-each.yaml",
            "--duration",
            "1h",
            "--start",
            "2026-11-01T00:00:00+08:00",
        ],
        env=settings_env(settings),
    )
    assert result.exit_code == 0, result.output
    assert "57 meters" in result.output
    records = read_topic(settings, settings.readings_topic, 4 * 57, timeout_s=20)
    assert len(records) == 4 * 57
    assert {r.value.count(b'"period_start":"2026-10-31T1') for r in records} == {1}


def test_topics_create_is_idempotent(pipeline_settings):
    env = settings_env(pipeline_settings)
    first = CliRunner().invoke(app, ["topics", "create"], env=env)
    assert first.exit_code == 0, first.output
    assert first.output.count("exists") == 5  # the fixture created them already
