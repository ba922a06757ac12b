"""Serves a process's Prometheus registry over HTTP and tells the local Prometheus about it.

Binds to ``settings.metrics_host`` (loopback unless configured). When the local stack's
Prometheus watches a targets folder (``EW_PROMETHEUS_TARGETS_DIR``), a target file named after
the service is written there, so Prometheus starts scraping without a restart.
"""

from prometheus_client import CollectorRegistry, start_http_server

from energywatch.settings import Settings
from stack.scrape_targets import write_scrape_target


def serve_metrics(settings: Settings, service: str, port: int, registry: CollectorRegistry) -> int:
    """Start the metrics endpoint (port 0 picks a free one); return the port it listens on."""
    server, _thread = start_http_server(port, addr=settings.metrics_host, registry=registry)
    actual = int(server.server_address[1])
    if settings.prometheus_targets_dir is not None:
        write_scrape_target(
            settings.prometheus_targets_dir, service, f"{settings.metrics_host}:{actual}"
        )
    return actual
