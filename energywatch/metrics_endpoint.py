"""Serves a process's Prometheus registry over HTTP and tells the local Prometheus about it.

Binds to ``settings.metrics_host`` (loopback unless configured). When the local stack's
Prometheus watches a targets folder (``EW_PROMETHEUS_TARGETS_DIR``), a target file named after
the service is written there, so Prometheus starts scraping without a restart.
"""

import json
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from energywatch.settings import Settings


def serve_metrics(settings: Settings, service: str, port: int, registry: CollectorRegistry) -> int:
    """Start the metrics endpoint (port 0 picks a free one); return the port it listens on."""
    server, _thread = start_http_server(port, addr=settings.metrics_host, registry=registry)
    actual = int(server.server_address[1])
    if settings.prometheus_targets_dir is not None:
        register_target(
            settings.prometheus_targets_dir, service, f"{settings.metrics_host}:{actual}"
        )
    return actual


def register_target(targets_dir: Path, service: str, host_port: str) -> Path:
    """Write (atomically) the file_sd target file for one service."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{service}.json"
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([{"targets": [host_port], "labels": {"service": service}}]))
    tmp.replace(path)
    return path
