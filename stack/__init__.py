"""EnergyWatch's local services (Kafka, PostgreSQL + TimescaleDB, Prometheus, Mosquitto) without
Docker.

Everything binds to 127.0.0.1 and keeps its state under ``.local/`` (``EW_STACK_HOME``);
downloads are cached in ``~/.cache/energywatch`` (``EW_STACK_CACHE_DIR``).
"""

from stack.endpoints import Endpoints, read_endpoints
from stack.errors import StackError
from stack.lifecycle import down, status, up
from stack.progress import Progress
from stack.scrape_targets import register_scrape_target, unregister_scrape_target
from stack.service_status import ServiceStatus
from stack.settings import StackSettings

__all__ = [
    "Endpoints",
    "Progress",
    "ServiceStatus",
    "StackError",
    "StackSettings",
    "down",
    "read_endpoints",
    "register_scrape_target",
    "status",
    "unregister_scrape_target",
    "up",
]
