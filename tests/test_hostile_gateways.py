"""Hostile clients (issue 8, part 3), reduced: an oversized frame and body, slow clients,
a client that never reads, and a flood of idle connections against the real HJ 212 and
HTTPS gateways (child processes, real Kafka), with short limits so it runs in a minute.
Each limit is also the regression test of the one the gateways lacked before: HJ 212's
login timeout and write timeout, HTTPS's connection cap, header and request timeouts and
body limit. ``energywatch prove hostile`` runs it with thousands of connections."""

import pytest

from proving_ground.hostile import HostileConfig, run_hostile

pytestmark = pytest.mark.services

CONFIG = HostileConfig(
    flood_connections=150,
    max_connections=100,
    slow_clients=20,
    oversized_bytes=1 << 20,
    slow_reader_frames=100_000,
    login_timeout_seconds=2,
    idle_timeout_seconds=2,
    header_timeout_seconds=2,
    request_timeout_seconds=3,
    max_body_bytes=65_536,
)


@pytest.fixture(scope="module")
def results(local_stack, tmp_path_factory):
    return run_hostile(local_stack, CONFIG, tmp_path_factory.mktemp("logs"))


def test_every_hostile_client_is_bounded_and_good_clients_are_answered(results):
    failed = [name for name, ok in results["checks"].items() if not ok]
    assert not failed, failed
    assert results["passed"]


def test_the_hj212_gateway_counts_each_connection_it_closes_by_reason(results):
    refusals = results["hj212"]["refusals"]
    flood = results["hj212"]["connection_flood"]
    assert refusals["too_long"] == 1
    assert refusals["slow_reader"] == 1
    assert refusals["too_many_connections"] == flood["refused_at_once"]
    # every slow client, and every flood connection let in, waited out the login timeout
    assert refusals["login_timeout"] == CONFIG.slow_clients + (
        CONFIG.flood_connections - flood["refused_at_once"]
    )
    assert results["hj212"]["slow_clients"]["closed_within_s"] >= CONFIG.login_timeout_seconds


def test_the_https_gateway_counts_each_refusal_and_no_cut_off_body_as_an_upload(results):
    refusals = results["http"]["refusals"]
    assert refusals["too_large"] == 1
    assert refusals["request_timeout"] == CONFIG.slow_clients
    assert (
        refusals["too_many_connections"] == results["http"]["connection_flood"]["refused_at_once"]
    )
    assert refusals["header_timeout"] >= CONFIG.slow_clients
    assert not refusals.get("not_json")  # a body cut off by the gateway is no bad upload
    slow_bodies = results["http"]["slow_bodies"]["closed_within_s"]
    assert CONFIG.request_timeout_seconds <= slow_bodies <= CONFIG.request_timeout_seconds + 2
