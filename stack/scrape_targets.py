"""Registering the project's metrics endpoints with Prometheus (file-based discovery)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stack.files import write_atomic
from stack.paths import StackPaths
from stack.settings import StackSettings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def register_scrape_target(settings: StackSettings, name: str, host_port: str) -> Path:
    """Have Prometheus scrape ``http://<host_port>/metrics`` as job ``energywatch``.

    Writes (or overwrites) ``<targets>/<name>.json`` atomically; Prometheus notices the
    file within seconds, no restart needed. The series carry the label ``service=<name>``.
    Returns the file written.
    """
    return write_scrape_target(StackPaths.of(settings).prometheus_targets, name, host_port)


def write_scrape_target(
    targets_dir: Path, name: str, host_port: str, *, component: str | None = None
) -> Path:
    """Write ``<targets_dir>/<name>.json`` for Prometheus's file-based discovery, atomically.

    For processes that only know the targets folder (``EW_PROMETHEUS_TARGETS_DIR``). With
    ``component`` the series also carry ``component=<component>`` (what the process is:
    ``worker``, ``notifier``..., as in the docker-compose stack), which the alerting rules
    select on whatever the process's name.
    """
    for value in (name, component or name):
        if not _NAME.match(value):
            raise ValueError(f"target name {value!r}: use letters, digits, '_', '.', '-'")
    if not _HOST_PORT.match(host_port):
        raise ValueError(f"target {host_port!r} is not host:port")
    labels = {"service": name} | ({"component": component} if component else {})
    groups = [{"targets": [host_port], "labels": labels}]
    path = targets_dir / f"{name}.json"
    write_atomic(path, json.dumps(groups, indent=2) + "\n")
    return path


def unregister_scrape_target(settings: StackSettings, name: str) -> bool:
    """Stop scraping target ``name``; return whether it was registered."""
    path = _target_file(settings, name)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return existed


def _target_file(settings: StackSettings, name: str) -> Path:
    return StackPaths.of(settings).prometheus_targets / f"{name}.json"
