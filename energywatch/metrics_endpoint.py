"""Serves a process's Prometheus registry over HTTP and tells the local Prometheus about it.

Binds to ``settings.metrics_host`` (loopback unless configured). When the local stack's
Prometheus watches a targets folder (``EW_PROMETHEUS_TARGETS_DIR``), a target file is written
there, so Prometheus starts scraping without a restart.

Every endpoint also serves what every service shares: ``energywatch_build_info`` and the
process's own ``process_*`` series (CPU, memory, open files, start time).
"""

import atexit
import platform
from pathlib import Path

from prometheus_client import CollectorRegistry, Info, ProcessCollector, start_http_server

from energywatch import __version__
from energywatch.settings import Settings
from stack.scrape_targets import write_scrape_target


def describe_process(registry: CollectorRegistry) -> None:
    """Add the build's version and the process's resource series to ``registry``."""
    Info(
        "energywatch_build",
        "The EnergyWatch release and Python running this process (always 1)",
        registry=registry,
    ).info({"version": __version__, "python": platform.python_version()})
    ProcessCollector(registry=registry)


def serve_metrics(
    settings: Settings,
    service: str,
    port: int,
    registry: CollectorRegistry,
    component: str | None = None,
) -> int:
    """Start the metrics endpoint (port 0 picks a free one); return the port it listens on.

    The target file is named after ``service`` (the process's name: a test's worker has its
    own) and labels the series ``service=<service>`` and ``component=<component>`` (default:
    ``service``): what the process is, ``worker``, ``notifier``, ``evaluator``,
    ``alerts-api``, ``ingest-hj212``..., as in the docker-compose stack. The alerting rules
    select on ``component``."""
    describe_process(registry)
    server, _thread = start_http_server(port, addr=settings.metrics_host, registry=registry)
    actual = int(server.server_address[1])
    if settings.prometheus_targets_dir is not None:
        path = write_scrape_target(
            settings.prometheus_targets_dir,
            service,
            f"{settings.metrics_host}:{actual}",
            component=component or service,
        )
        atexit.register(_forget_target, path, path.read_text())
    return actual


def _forget_target(path: Path, written: str) -> None:
    """On a clean exit, stop Prometheus scraping an endpoint that is going away (unless another
    process of the same name has written its own target since)."""
    try:
        if path.read_text() == written:
            path.unlink()
    except OSError:
        pass
