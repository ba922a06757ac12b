"""Settings of the local service stack (``EW_STACK_*`` environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root: the folder that holds the ``stack`` package.
REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_home() -> Path:
    return REPO_ROOT / ".local"


def _default_cache_dir() -> Path:
    # The cache outlives a clone: a fresh checkout on the same machine reuses the
    # downloaded Kafka jars and TimescaleDB sources.
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "energywatch"


class StackSettings(BaseSettings):
    """Where the stack lives and which loopback ports its services use."""

    model_config = SettingsConfigDict(env_prefix="EW_STACK_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home)
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    host: str = "127.0.0.1"
    kafka_port: int = 39092
    kafka_controller_port: int = 39093
    postgres_port: int = 35432
    prometheus_port: int = 39090
    mqtt_port: int = 31883
    kafka_version: str = "3.9.2"
    postgres_password: SecretStr | None = None
    mqtt_gateway_password: SecretStr | None = None
