"""A private stack runs beside the shared one, and the fault suite restarts its services only.

Real services: a second Kafka, PostgreSQL + TimescaleDB, Prometheus and Mosquitto under a home
of this test's own (``.local/proving-ground-test``: PostgreSQL's user must be able to reach
it, which a pytest temporary folder does not allow) on ports 11000 above the shared stack's,
apart from the CLI's private stack too. Its data is kept between runs, so only the first run
initialises it.
"""

import psycopg
import pytest
from kafka import KafkaAdminClient

from energywatch.settings import REPO_ROOT
from proving_ground.private_stack import PrivateStack, private_settings
from stack import StackError, status

pytestmark = pytest.mark.services
HOME = REPO_ROOT / ".local" / "proving-ground-test"


def pids(statuses) -> dict[str, str]:
    """Each healthy service's pid as ``status`` reports it (``pid 123, ...``)."""
    return {s.name: s.detail.split(",")[0] for s in statuses if s.healthy}


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.mark.timeout(300)
def test_a_private_stack_restarts_kafka_and_stops_postgres_while_the_shared_one_runs_on(
    local_stack, stack_settings
):
    shared_before = pids(status(stack_settings))
    assert set(shared_before) == {"postgres", "kafka", "prometheus", "mosquitto"}
    stack = PrivateStack(private_settings(stack_settings, HOME, -11_000))

    with stack.running(lambda _step: None) as settings:
        assert settings.kafka_bootstrap == "127.0.0.1:28092"
        private_url = settings.database_url.get_secret_value()
        assert ":24432/" in private_url
        assert settings.prometheus_targets_dir == HOME / "prometheus" / "targets"
        assert stack.child_env() == {"EW_STACK_HOME": str(HOME)}

        # one private stack, one user: a second run is refused while this one holds it
        second = stack.running(lambda _step: None)
        with pytest.raises(StackError, match="another `energywatch prove` run"):
            second.__enter__()

        kafka_pid = pids(status(stack.stack))["kafka"]
        stack.stop("kafka")
        assert "kafka" not in pids(status(stack.stack))
        stack.up(lambda _step: None)
        assert pids(status(stack.stack))["kafka"] != kafka_pid
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        admin.close()

        stack.stop("postgres")
        assert not answers(private_url)
        assert answers(local_stack.database_url.get_secret_value())
        stack.up(lambda _step: None)
        assert answers(private_url)

    assert pids(status(stack.stack)) == {}, "every private service is stopped afterwards"
    assert pids(status(stack_settings)) == shared_before, "the shared stack was not touched"
