"""What ``status`` reports about one service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceStatus:
    """Health of one local service.

    ``detail`` carries the exact reason when the service is not healthy, and a short
    description (pid, version) when it is.
    """

    name: str
    healthy: bool
    detail: str
    endpoint: str
