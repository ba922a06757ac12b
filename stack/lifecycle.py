"""``up``, ``down`` and ``status`` of the whole local stack."""

from __future__ import annotations

from collections.abc import Collection

from stack.apt import Apt
from stack.endpoints import endpoints_for, write_endpoints
from stack.errors import StackError
from stack.kafka import Kafka
from stack.lock import exclusive
from stack.mosquitto import Mosquitto
from stack.password import mqtt_gateway_password, postgres_password
from stack.paths import StackPaths
from stack.postgres import Postgres
from stack.progress import Progress, silent
from stack.prometheus import Prometheus
from stack.service import DetachedService
from stack.service_status import ServiceStatus
from stack.settings import StackSettings


def up(settings: StackSettings, progress: Progress | None = None) -> list[ServiceStatus]:
    """Install what is missing, start what is not running, and write ``stack.env``.

    Idempotent: with everything running and healthy it only probes each service.
    Raises StackError, saying what to do next, when a service cannot be made healthy.
    """
    report = progress or silent
    paths = _prepare(settings)
    with exclusive(paths.lock_file, report):
        services = _services(settings, paths, Apt(paths.log("install"), report))
        for service in services:
            service.install(report)
        statuses = [service.ensure_running(report) for service in services]
        password = postgres_password(settings, paths, create=False)
        broker_password = mqtt_gateway_password(settings, paths, create=False)
        # Postgres.after_ready and Mosquitto.after_ready create them; a broken invariant.
        if password is None or broker_password is None:
            raise StackError("a generated password vanished during `up`; run it again")
        write_endpoints(settings, endpoints_for(settings, password, broker_password))
    return statuses


def down(settings: StackSettings, only: Collection[str] = ()) -> list[ServiceStatus]:
    """Stop the services named in ``only`` (default: all) and report them.

    Each gets SIGTERM (PostgreSQL: SIGINT, its fast shutdown), then SIGKILL on its
    process group when it has not exited within its timeout.
    """
    paths = _prepare(settings)
    with exclusive(paths.lock_file, silent):
        services = _services(settings, paths, Apt(paths.log("install"), silent))
        unknown = set(only) - {s.name for s in services}
        if unknown:
            names = ", ".join(s.name for s in services)
            raise StackError(
                f"no service named {', '.join(sorted(unknown))}; the stack has {names}"
            )
        chosen = [s for s in services if not only or s.name in only]
        stopped = {service.name: service.stop() for service in reversed(chosen)}
    return [stopped[service.name] for service in chosen]


def status(settings: StackSettings) -> list[ServiceStatus]:
    """The health of every service, with the exact reason for each unhealthy one."""
    paths = StackPaths.of(settings)
    return [s.status() for s in _services(settings, paths, Apt(paths.log("install"), silent))]


def _services(settings: StackSettings, paths: StackPaths, apt: Apt) -> list[DetachedService]:
    return [
        Postgres(settings, paths, apt),
        Kafka(settings, paths, apt),
        Prometheus(settings, paths, apt),
        Mosquitto(settings, paths, apt),
    ]


def _prepare(settings: StackSettings) -> StackPaths:
    paths = StackPaths.of(settings)
    paths.home.mkdir(parents=True, exist_ok=True)
    # Services that run as another user (PostgreSQL) must be able to enter home.
    paths.home.chmod(0o755)
    paths.logs.mkdir(exist_ok=True)
    paths.cache.mkdir(parents=True, exist_ok=True)
    return paths
