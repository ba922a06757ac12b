"""Fixtures for tests against the real local services.

The session brings the stack up once (``energywatch stack up`` is idempotent: instant when it
is already running). Every pipeline test gets its own topics, consumer groups and a fresh
database, so tests and concurrent runs never see each other's data.
"""

import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from energywatch.kafka_topics import delete_topics, ensure_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from storage.scratch_databases import scratch_database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stack_settings():
    from stack import StackSettings

    return StackSettings()


@pytest.fixture(scope="session")
def local_stack(stack_settings) -> Settings:
    """The running local stack; the settings every service test starts from."""
    from stack import up

    up(stack_settings)
    return Settings.load()


@contextmanager
def fresh_database(local_stack: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh database of its own, dropped afterwards."""
    admin_url = local_stack.database_url.get_secret_value()
    with scratch_database(admin_url, "ew_test") as url:
        yield local_stack.model_copy(update={"database_url": SecretStr(url)})


@contextmanager
def isolated_pipeline(database_settings: Settings) -> Iterator[Settings]:
    """Settings of an isolated pipeline: own topics, consumer groups, metrics ports."""
    run = uuid.uuid4().hex[:10]
    settings = database_settings.named_pipeline(
        f"ew-test-{run}",
        worker_metrics_port=free_port(),
        notifier_metrics_port=free_port(),
        evaluator_metrics_port=free_port(),
        worker_batch_seconds=0.2,
    )
    ensure_topics(settings)
    try:
        yield settings
    finally:
        if settings.prometheus_targets_dir is not None:
            for service in (settings.worker_app_id, settings.notifier_group_id):
                (settings.prometheus_targets_dir / f"{service}.json").unlink(missing_ok=True)
        delete_topics(settings)  # a broker holding thousands of topics starts slowly


@pytest.fixture
def database_settings(local_stack: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh database of this test's own, dropped afterwards."""
    with fresh_database(local_stack) as settings:
        yield settings


@pytest.fixture
def pipeline_settings(database_settings: Settings) -> Iterator[Settings]:
    """Settings of an isolated pipeline: own topics, consumer groups, metrics ports, database."""
    with isolated_pipeline(database_settings) as settings:
        yield settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    return settings.as_env()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``energywatch <command>`` as a child with given settings; stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(command: str, settings: Settings, **extra_env: str) -> ServiceProcess:
        """``command`` as typed after ``energywatch``: ``worker``, ``alerts evaluate``."""
        log = tmp_path / f"{command.replace(' ', '-')}-{len(started)}.log"
        env = {**settings_env(settings), **extra_env}
        process = ServiceProcess(command.split(), env, log).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_until(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
