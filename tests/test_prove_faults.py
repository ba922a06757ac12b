"""The fault suite's kills run, reduced (``energywatch prove faults`` does 20 kills on the whole
scenario and adds Kafka and PostgreSQL outages and a rebalance on a private stack).

Real Kafka and TimescaleDB: the shared stack, since this run kills only the worker it started
itself. The webhook receiver stands in for a supervision office's endpoint, a third party's
system that cannot run here."""

import pytest

from proving_ground.faults import FaultConfig, FaultSuite

pytestmark = pytest.mark.services


@pytest.mark.timeout(300)
def test_a_worker_killed_three_times_during_a_replay_leaves_exactly_what_an_undisturbed_one_leaves(
    local_stack, tmp_path
):
    config = FaultConfig(
        runs=("kills",),
        kills=3,
        records=4500,  # about 15 h of the scenario's first day: a gap alert fires and resolves
        rate=100.0,
        keep_databases=False,
        settle_timeout_seconds=150,
    )
    reference, kills = FaultSuite(local_stack, config, tmp_path, lambda _step: None).run()

    assert reference.settled, reference.settle_note
    snapshot = reference.snapshot
    assert snapshot.rows("meter_readings") > 2500
    assert snapshot.rows("energy_rollups") > snapshot.rows("meter_readings")
    assert snapshot.rows("voc_hourly") > 0
    assert snapshot.rows("dead_letters") > 0  # the scenario's malformed packets
    assert snapshot.rows("alert_history") >= 2
    assert snapshot.rows("webhook.events") == snapshot.rows("alert_history")

    assert kills.details["kills"] == 3
    assert [p["worker_was"] for p in kills.details["kill_points"]] == ["storing"] * 3
    assert kills.difference is None, kills.verdict()
    assert kills.passed
