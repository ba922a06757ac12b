"""Where every file of the stack lives, derived from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stack.settings import StackSettings


@dataclass(frozen=True)
class StackPaths:
    """The layout of ``home`` (``.local/`` by default) and of the download cache."""

    home: Path
    cache: Path

    @classmethod
    def of(cls, settings: StackSettings) -> StackPaths:
        return cls(home=settings.home.resolve(), cache=settings.cache_dir.resolve())

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def service_dir(self, name: str) -> Path:
        return self.home / name

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def postgres_password_file(self) -> Path:
        return self.secrets / "postgres_password"

    @property
    def mqtt_gateway_password_file(self) -> Path:
        return self.secrets / "mqtt_gateway_password"

    @property
    def prometheus_targets(self) -> Path:
        return self.service_dir("prometheus") / "targets"

    @property
    def endpoints_file(self) -> Path:
        return self.home / "stack.env"

    @property
    def lock_file(self) -> Path:
        return self.home / "stack.lock"


def shown(path: Path) -> str:
    """``path`` as a person wants to read it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
