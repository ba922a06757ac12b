"""A stack of the proving ground's own, beside the shared one, that it may stop and restart.

Other engineers' tests use the shared local stack (``.local/``, ports 39092, 35432...), so the
fault suite never touches it: it brings up a second instance of the same services
(``stack.up``) with its own home folder (data, logs, pid files, passwords, ``stack.env``) and
every port moved by a fixed offset, and restarts Kafka or stops PostgreSQL only there
(``stack.down`` on that home). The download cache (Kafka's jars) is shared: it is only read.

Two suites must not share one private stack either (one would stop the other's services), so a
run holds an exclusive lock on the private home for as long as it uses it.
"""

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from energywatch.settings import REPO_ROOT, Settings
from stack import StackError, StackSettings, down, read_endpoints, up

DEFAULT_HOME: Final = REPO_ROOT / ".local" / "proving-ground"
#: 39092 -> 29092, 35432 -> 25432...: clear of the shared stack, of each other, and below
#: Linux's ephemeral range (32768-60999), where a client connection's local port can take a
#: listener's port while the service restarts (seen as Kafka's "Address already in use").
DEFAULT_PORT_OFFSET: Final = -10_000
_PORT_FIELDS: Final = (
    "kafka_port",
    "kafka_controller_port",
    "postgres_port",
    "prometheus_port",
    "mqtt_port",
)
Report = Callable[[str], None]


def private_settings(shared: StackSettings, home: Path, port_offset: int) -> StackSettings:
    """The shared stack's settings moved to ``home`` and every port moved by ``port_offset``.

    Raises StackError when the result could touch the shared stack: the same home, or a port
    the shared stack uses."""
    moved = {name: int(getattr(shared, name)) + port_offset for name in _PORT_FIELDS}
    private = shared.model_copy(update={"home": home, **moved})
    check_apart(shared, private)
    return private


def check_apart(shared: StackSettings, private: StackSettings) -> None:
    """Raise StackError unless ``private`` shares neither home nor any port with ``shared``."""
    if shared.home.resolve() == private.home.resolve():
        raise StackError(f"the private stack's home {private.home} is the shared stack's")
    taken = {int(getattr(shared, name)) for name in _PORT_FIELDS}
    ports = [int(getattr(private, name)) for name in _PORT_FIELDS]
    clash = sorted(taken.intersection(ports))
    if clash or len(set(ports)) != len(ports):
        raise StackError(
            f"the private stack's ports {ports} overlap the shared stack's or each other "
            f"(shared: {sorted(taken)}); choose another --port-offset"
        )
    if not all(0 < p < 65536 for p in ports):
        raise StackError(f"port offset gives ports out of range: {ports}")


class PrivateStack:
    """Start, stop and restart the services of one private stack; its endpoints as Settings."""

    def __init__(self, settings: StackSettings) -> None:
        self.stack = settings

    @classmethod
    def beside_shared(
        cls, home: Path = DEFAULT_HOME, port_offset: int = DEFAULT_PORT_OFFSET
    ) -> "PrivateStack":
        return cls(private_settings(StackSettings(), home, port_offset))

    @contextmanager
    def running(self, report: Report) -> Iterator[Settings]:
        """Hold the private home's lock, bring the stack up, yield its Settings; stop every
        service of it afterwards (its data stays, so the next run starts in seconds)."""
        with self._locked():
            try:
                self.up(report)
                yield self.service_settings()
            finally:
                report("stopping the private stack")
                down(self.stack)

    def up(self, report: Report) -> None:
        """Start whatever of the private stack is not running (idempotent)."""
        up(self.stack, progress=report)

    def stop(self, service: str) -> None:
        """Stop one service of the private stack (``kafka``, ``postgres``...)."""
        down(self.stack, only=[service])

    def service_settings(self) -> Settings:
        """Settings of EnergyWatch processes on this stack. Endpoints are given explicitly, so
        neither ``EW_*`` variables of the caller's shell nor the shared ``stack.env`` can point
        them at the shared stack."""
        endpoints = read_endpoints(self.stack)
        return Settings(
            kafka_bootstrap=endpoints.kafka_bootstrap,
            database_url=endpoints.database_url,
            prometheus_url=endpoints.prometheus_url,
            prometheus_targets_dir=endpoints.prometheus_targets_dir,
            mqtt_url=endpoints.mqtt_url,
            mqtt_username=endpoints.mqtt_username,
            mqtt_password=endpoints.mqtt_password,
        )

    def child_env(self) -> dict[str, str]:
        """What a child process needs beyond its Settings: any ``stack.env`` it falls back on
        is the private one."""
        return {"EW_STACK_HOME": str(self.stack.home)}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        home = self.stack.home
        home.mkdir(parents=True, exist_ok=True)
        with (home / "proving-ground.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise StackError(
                    f"another `energywatch prove` run (or test) is using the private stack in "
                    f"{home}; wait for it, or give this run another --stack-home and "
                    f"--port-offset"
                ) from error
            try:
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
